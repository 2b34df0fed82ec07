"""The package's layering, checked: no import cycles, small modules, layers kept apart."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "xdeepbedmap"
#: Largest module, in lines (the architecture page's rule of thumb is ~300).
MAX_MODULE_LINES = 320


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def top_level_imports(path: Path) -> set[str]:
    """Modules of the package imported at module level (not inside functions)."""
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("xdeepbedmap"))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("xdeepbedmap"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if _exists(candidate) else node.module)
    return found


def _exists(name: str) -> bool:
    relative = Path(*name.split(".")[1:])
    return (PACKAGE / relative).with_suffix(".py").exists() or (PACKAGE / relative).is_dir()


def import_graph() -> dict[str, set[str]]:
    return {module_name(p): top_level_imports(p) for p in PACKAGE.rglob("*.py")}


def test_no_import_cycles():
    graph = import_graph()
    done: set[str] = set()

    def visit(node: str, stack: list[str]) -> None:
        if node in stack:
            cycle = stack[stack.index(node) :] + [node]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        if node in done:
            return
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, [*stack, node])
        done.add(node)

    for start in sorted(graph):
        visit(start, [])


def test_a_cycle_would_be_found():
    graph = import_graph()
    assert "xdeepbedmap.inference" in graph["xdeepbedmap.accessor"]
    # the option checks and graph building moved to run_plan (shared with ensembles)
    assert "xdeepbedmap.run_plan" in graph["xdeepbedmap.inference"]
    assert "xdeepbedmap.chunking" in graph["xdeepbedmap.run_plan"]


def test_modules_stay_small():
    sizes = {module_name(p): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    large = {name: n for name, n in sizes.items() if n > MAX_MODULE_LINES}
    assert not large, f"modules over {MAX_MODULE_LINES} lines: {large}"


def test_library_layers_do_not_reach_up():
    """Inference, grids and io never import the CLI or the training package."""
    graph = import_graph()
    lower = [m for m in graph if m.split(".")[1:2] and m.split(".")[1] not in {"cli", "training"}]
    for module in lower:
        if module.startswith("xdeepbedmap.survey") or module == "xdeepbedmap":
            continue
        upward = {
            m for m in graph[module] if m.startswith(("xdeepbedmap.cli", "xdeepbedmap.training"))
        }
        assert not upward, f"{module} imports {sorted(upward)}"
