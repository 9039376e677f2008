"""Memory a run gives back to the system as soon as it is done with it."""

from __future__ import annotations

import atexit
import gc
import sys

_M_MMAP_THRESHOLD = -3  # glibc's malloc.h
LARGE = 128 * 1024  # glibc's own starting threshold


def give_back_large_blocks() -> None:
    """On glibc, let every block of LARGE bytes or more be mapped on its own, so that freeing it unmaps it.

    glibc raises that threshold each time such a block is freed, up to 32 MB, and keeps the blocks
    after it in its heap, where a freed one between others stays in the process. A run's project pages
    (up to 7 MB each, sixteen read at once) stayed so after they were parsed. With the threshold kept
    at LARGE, peak RSS of a cold three-target run (bench.scale's measurement) went from 114 to 96 MB
    for 50 projects (one run each), and from 140 to 105-116 MB for 200 (two runs).
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes  # here: an interpreter built without ctypes still runs every task

        mallopt = ctypes.CDLL(None).mallopt
    except (ImportError, OSError, AttributeError):  # nor has a C library without mallopt anything to tune
        return
    mallopt(_M_MMAP_THRESHOLD, LARGE)


def collect_only_the_run() -> None:
    """Keep the collector to the objects the run makes: not the modules loaded before it, nor all at the end.

    Called once the tasks are loaded. Their modules, classes and functions live as long as the process,
    but each full collection walked them again: on a no-op `inv download` the collections after the page
    reads took 25 ms of its last 60 (medians of ten runs each). gc.freeze() puts everything made so far
    beyond the collector's reach; what the run makes later is collected as before.

    At exit, the last collection only frees memory that leaving the process frees anyway, and it was most
    of an exit's cost: a process that imports the online tasks and exits took 272 ms, 226 ms with it
    skipped (221 ms leaving by os._exit). gc.freeze(), called at exit, puts every object beyond its reach.
    Objects are still released as the interpreter clears its modules, and every atexit callback runs as
    before (none needs a collection); only garbage cycles are left for the system to take back.
    """
    gc.freeze()
    atexit.register(gc.freeze)
