"""The layout's rules, read from the source (ast, nothing imported): imports only go down the
layers of docs/ARCHITECTURE.md, no module imports itself back through others, the core never
imports Streamlit, and no module of the app is over 400 lines (issue 12, "Done when")."""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app"
MAX_LINES = 400

# Rank of each layer, low to high (docs/ARCHITECTURE.md, "The layers"). A module may import
# its own rank or lower, never higher; the cycle test keeps imports within a rank one-way.
# The first matching prefix wins, so the more specific prefixes come first.
RANKS: tuple[tuple[str, int], ...] = (
    ("marginlab.params", 0),
    ("marginlab.safe_files", 0),  # atomic file writes: data, training and experiments use it
    ("marginlab.text_fit", 0),  # text sizes for plot labels: figures and ui/live_plot use it
    ("marginlab.losses", 1),
    ("marginlab.data", 1),
    ("marginlab.geometry", 2),
    ("marginlab.figures", 3),
    ("marginlab.training", 3),
    ("marginlab.lab_state", 4),  # the URL state: lesson presets are lab states
    ("marginlab.experiments", 5),
    ("marginlab.lessons", 5),
    ("marginlab.cli", 6),  # cli, cli_args, cli_results, cli_sweeps
    ("marginlab.__main__", 6),
    ("ui", 7),
    ("views", 8),
    ("main", 8),
)


def _rank(module: str) -> int:
    if module == "marginlab":  # the package's __init__: a docstring and a version
        return 0
    for prefix, rank in RANKS:
        if module == prefix or module.startswith(prefix + ".") or module.startswith(prefix + "_"):
            return rank
    raise AssertionError(f"{module} has no layer: give it one in RANKS and docs/ARCHITECTURE.md")


def _modules() -> dict[str, tuple[Path, bool]]:
    """Dotted name -> (file, is a package's __init__) for every module under app/."""
    found = {}
    for path in sorted(APP.rglob("*.py")):
        parts = list(path.relative_to(APP).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        found[".".join(parts)] = (path, is_package)
    return found


MODULES = _modules()


def _imported(name: str) -> set[str]:
    """Every name a module imports, anywhere in it (a function-level import is a dependency too),
    relative imports resolved."""
    path, is_package = MODULES[name]
    package = name if is_package else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    # `if TYPE_CHECKING:` imports only name a type for the checker: they never run, so they
    # are no dependency (a worker's back-reference to its service is typed that way).
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
            node.body = []
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                kept = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*kept, *([node.module] if node.module else [])])
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _edges() -> dict[str, set[str]]:
    """Module -> the modules of this app it imports (third-party names dropped)."""
    return {name: {n for n in _imported(name) if n in MODULES and n != name} for name in MODULES}


EDGES = _edges()


def test_every_module_has_a_layer_and_imports_go_down():
    upward = [
        f"{name} (rank {_rank(name)}) imports {target} (rank {_rank(target)})"
        for name, targets in EDGES.items()
        for target in sorted(targets)
        if _rank(target) > _rank(name)
    ]
    assert not upward, "imports that go up a layer:\n" + "\n".join(upward)


def test_ui_state_never_imports_ui_controls():
    # docs/ARCHITECTURE.md: controls write the lab state through ui.state, never the reverse
    assert "ui.controls" not in EDGES["ui.state"]


def _cycle() -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None (depth-first search)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        path.append(name)
        for target in sorted(EDGES[name]):
            if state.get(target) == 1:
                return path[path.index(target) :] + [target]
            if target not in state and (found := visit(target)):
                return found
        path.pop()
        state[name] = 2
        return None

    for name in sorted(EDGES):
        if name not in state and (found := visit(name)):
            return found
    return None


def test_no_import_cycle():
    cycle = _cycle()
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_search_finds_a_cycle():
    # The search itself must be able to fail: plant a two-module cycle and look again.
    planted = ("marginlab.params", "marginlab.safe_files")
    EDGES[planted[0]].add(planted[1])
    EDGES[planted[1]].add(planted[0])
    try:
        cycle = _cycle()
    finally:
        EDGES[planted[0]].discard(planted[1])
        EDGES[planted[1]].discard(planted[0])
    assert cycle is not None and set(planted) <= set(cycle)


def test_the_core_never_imports_streamlit():
    offenders = [
        name
        for name in MODULES
        if (name == "marginlab" or name.startswith("marginlab."))
        and any(n == "streamlit" or n.startswith("streamlit.") for n in _imported(name))
    ]
    assert not offenders, f"core modules importing streamlit: {offenders}"


def test_no_module_is_over_400_lines():
    long = {
        str(path.relative_to(APP)): n
        for path, _ in MODULES.values()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"
