"""The wings' import rules: no cycles, and no wing imports from a later stage of the flow."""

from __future__ import annotations

import ast
from pathlib import Path

from testing.tasks import REPO

# What each wing may import: the flow runs core -> online -> transfer -> offline; cli shows them all.
ALLOWED = {
    "core": {"core"},
    "online": {"core", "online", "transfer"},  # refresh writes the bundle a good run ends with
    "transfer": {"core", "transfer"},
    "offline": {"core", "transfer", "offline"},
    "cli": {"core", "online", "transfer", "offline", "cli"},
}
PACKAGE = REPO / "devpi_airgap"


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("devpi_airgap"):
                found |= {f"{node.module}.{a.name}" for a in node.names} | {node.module}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("devpi_airgap")}
        modules = {m for m in found if (REPO / (m.replace(".", "/") + ".py")).exists()}
        graph[module_name(path)] = modules
    return graph


def test_no_wing_imports_a_later_stage():
    wrong = []
    for module, targets in imports().items():
        wing = module.split(".")[1] if module.count(".") else None
        if wing not in ALLOWED:
            continue
        wrong += [f"{module} -> {t}" for t in targets if t.count(".") > 1 and t.split(".")[1] not in ALLOWED[wing]]
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles():
    graph = imports()
    seen: dict[str, str] = {}  # module -> "visiting" | "done"

    def visit(module: str, path: list[str]) -> None:
        if seen.get(module) == "done":
            return
        assert seen.get(module) != "visiting", "cycle: " + " -> ".join([*path, module])
        seen[module] = "visiting"
        for target in sorted(graph.get(module, ())):
            visit(target, [*path, module])
        seen[module] = "done"

    for module in sorted(graph):
        visit(module, [])
