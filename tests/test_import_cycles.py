"""No import cycles among the addon's modules, and the bpy-free core never imports the Blender
layer: a static graph of every import statement in addon/ (module level, inside functions and
under TYPE_CHECKING alike: a lazy import is still a dependency), built with `ast`."""
from __future__ import annotations

import ast
from pathlib import Path

ADDON = Path(__file__).resolve().parents[1] / "addon"
PACKAGE = "uplift"


def module_names() -> dict[str, tuple[Path, bool]]:
    """'uplift.core.ply' -> (its file, whether it is a package's __init__)."""
    names = {}
    for path in ADDON.rglob("*.py"):
        parts = list(path.relative_to(ADDON).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        names[".".join([PACKAGE, *(parts[:-1] if is_package else parts)])] = (path, is_package)
    return names


def import_graph() -> dict[str, set[str]]:
    """Each module -> the addon modules it imports (a name imported from a package counts as that
    package, unless it is one of its submodules)."""
    modules = module_names()
    graph: dict[str, set[str]] = {}
    for name, (path, is_package) in modules.items():
        here = name.split(".") if is_package else name.split(".")[:-1]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here[: len(here) - (node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                for alias in node.names:
                    submodule = f"{source}.{alias.name}"
                    targets.add(submodule if submodule in modules else source)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    for start in sorted(graph):
        if start in state:
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph[nxt])))
    return None


def test_the_graph_sees_relative_lazy_and_package_imports():
    graph = import_graph()
    assert "uplift.core.gaussians" in graph["uplift.core.ply"]                     # from .gaussians import ...
    assert "uplift.core.splat_io" in graph["uplift.cli.deform"]                    # lazy, inside run()
    assert "uplift.blender.splat_draw" in graph["uplift.blender"]                  # from . import splat_draw
    assert "uplift.core.render" in graph["uplift.blender.state"]                   # from ..core.render import render
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles_among_addon_modules():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_core_never_imports_the_blender_layer():
    graph = import_graph()
    offending = sorted(f"{module} imports {target}" for module, targets in graph.items()
                       if module.startswith(f"{PACKAGE}.core") for target in targets
                       if target.startswith(f"{PACKAGE}.blender"))
    assert not offending, "; ".join(offending)
