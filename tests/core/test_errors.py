"""The one exit-code table: every error carries a code from it, and no two kinds share a number."""

from __future__ import annotations

import importlib
import pkgutil

import devpi_airgap
from devpi_airgap.core.errors import AirgapError, ExitCode


def all_error_classes() -> set[type]:
    for module in pkgutil.walk_packages(devpi_airgap.__path__, "devpi_airgap."):
        importlib.import_module(module.name)
    found, todo = set(), [AirgapError]
    while todo:
        cls = todo.pop()
        found.add(cls)
        todo += cls.__subclasses__()
    return found


def test_every_error_exits_with_a_code_from_the_table():
    for cls in all_error_classes():
        assert isinstance(cls.exit_code, ExitCode), f"{cls.__module__}.{cls.__name__} has exit code {cls.exit_code!r}"


def test_codes_are_distinct_and_documented_once_in_the_readme():
    assert len({code.value for code in ExitCode}) == len(ExitCode)
    from testing.tasks import REPO

    readme = (REPO / "README.md").read_text()
    for code in ExitCode:
        assert readme.count(f"| {code.value} | `{code.name}` |") == 1, f"README's exit-code table lacks {code.name}"
