"""Run `pip install --dry-run` once for each argument list, importing pip once for all of them.

Run as a program by the python of the venv under test, never imported:

    VENV/bin/python pip_dry_runs.py PIP_SOURCES LOG_DIR < argument lists as JSON

It imports exactly the pip under PIP_SOURCES (the directory that holds the
package), as pip's own __pip-runner__.py does for `pip --python`, and only then
reads its lists, so that it may be started before they are known. Each list
then runs in a child forked from this process, as pip would run started anew,
with its output in LOG_DIR/N.log; the children run side by side, one per core.
The exit codes are printed as JSON.
Importing pip is most of a small dry run (0.57 of 0.77 s): the sample's four
sets paid it four times.

Where there is no fork (Windows), each list runs in this process, one after
the other, as several `pip` commands would: the caller passes one list at a
time there.
"""

import json
import os
import sys
import traceback
from importlib.machinery import PathFinder


def _only_this_pip(sources):
    class OnlyThisPip:
        @classmethod
        def find_spec(cls, fullname, path=None, target=None):
            return PathFinder.find_spec(fullname, [sources], target) if fullname == "pip" else None

    sys.meta_path.insert(0, OnlyThisPip)


def _run(main, arguments, log_path):
    """pip's exit code for one list, its output written to log_path."""
    sys.stdout.flush()
    sys.stderr.flush()
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    saved = os.dup(1), os.dup(2)
    os.dup2(log, 1)
    os.dup2(log, 2)
    try:
        return main(["install", "--dry-run", *arguments])
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(log)


def _forked(main, lists, log_dir):
    """Each list in a child of its own, as many side by side as this process has cores, started in the order given.

    One after the other, the sample's three small sets waited for its largest, and in a three-target
    run they then ran on alone for 0.2-0.8 s after the real install beside them had ended.
    """
    at_once = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    waiting = list(enumerate(lists))[::-1]
    running = {}
    codes = [1] * len(lists)
    while waiting or running:
        while waiting and len(running) < at_once:
            n, arguments = waiting.pop()
            child = os.fork()
            if child == 0:
                os._exit(_run(main, arguments, os.path.join(log_dir, f"{n}.log")))
            running[child] = n
        child, status = os.wait()
        codes[running.pop(child)] = os.waitstatus_to_exitcode(status)
    return codes


def _warm():
    """Work every child would otherwise repeat, done once here while the caller still downloads.

    Each pip session builds its user agent, which runs `rustc --version`, `lsb_release -a` and
    `uname -rs`; pip caches it for the process, so a child forked after this finds it made. The
    resolver's modules are imported on a run's first use. The sample's four native dry runs took
    0.83 CPU-s with this, against 1.0 without. A pip laid out otherwise just runs without it.
    """
    try:
        from pip._internal.network.session import user_agent
        from pip._internal.resolution.resolvelib import resolver  # noqa: F401

        user_agent()
    except Exception:
        pass


def main():
    sources, log_dir = sys.argv[1], sys.argv[2]
    _only_this_pip(sources)
    try:
        from pip._internal.cli.main import main as pip_main  # what pip's own __main__ runs
        from pip._internal.commands import install  # noqa: F401  (imported once here, not in each child)
    except Exception as exc:  # an interpreter this pip does not support, most likely
        sys.exit("pip from %s cannot run in python %d.%d: %s" % (sources, *sys.version_info[:2], exc))
    _warm()
    lists = json.load(sys.stdin)  # read once pip is in: the caller may start this program before it knows them

    if hasattr(os, "fork"):
        codes = _forked(pip_main, lists, log_dir)
    else:
        codes = [_run(pip_main, arguments, os.path.join(log_dir, f"{n}.log")) for n, arguments in enumerate(lists)]
    print(json.dumps(codes))


if __name__ == "__main__":
    main()
