"""The package's layout: layers with no upward import, small modules, and docs that match the code.

Run as a script (``python tests/test_layout.py``) to print the import graph, one line per module.
"""
import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "eoslab"
README = PACKAGE.parent / "README.md"

#: The layers of eoslab/__init__.py's docstring, bottom first; a module imports from its own layer or below.
LAYERS = [
    ["_validation"],
    ["data", "models", "architectures", "thresholds", "trends"],
    ["problems", "curvature"],
    ["methods", "optim", "flows"],
    ["history", "batches", "checkpoints", "recorder", "runs", "sweep"],
    ["stability", "self_stabilization", "manifold", "stochastic"],  # the chapters' own models
    ["analysis", "exercises", "plotting"],
    ["widgets"],
]
TOPICS = set(LAYERS[5])
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}
MAX_LINES = 400


def _modules():
    """``{dotted name: path}`` of every module of the package except its ``__init__``."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts == ("eoslab", "__init__"):
            continue
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(name, path):
    """The eoslab modules ``name`` imports, anywhere in the file (lazy imports included)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            candidates = [target] + [f"{target}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            candidates = [a.name for a in node.names]
        else:
            continue
        found.update(c for c in candidates if c.startswith("eoslab."))
    return found


def _top(dotted):
    """The top-level part of an eoslab module name (``eoslab.flows.edge`` -> ``flows``)."""
    return dotted.split(".")[1]


def graph():
    """``{module: sorted eoslab modules it imports (top-level names, other than its own)}``."""
    return {name: sorted({_top(t) for t in _imports(name, path)} - {_top(name)})
            for name, path in _modules().items()}


def test_every_module_has_a_layer():
    missing = sorted({_top(name) for name in _modules()} - set(LAYER))
    assert not missing, f"modules with no layer in tests/test_layout.py and eoslab/__init__.py: {missing}"


def test_no_module_imports_from_a_layer_above_it():
    upward = [f"{name} -> {target}" for name, targets in graph().items() for target in targets
              if LAYER[target] > LAYER[_top(name)]]
    assert not upward, "upward imports: " + ", ".join(upward)


def test_chapter_modules_and_presentation_import_no_chapter_module():
    crossing = [f"{name} -> {target}" for name, targets in graph().items() for target in targets
                if target in TOPICS and LAYER[_top(name)] >= LAYER["stability"]]
    assert not crossing, "imports of a chapter's module: " + ", ".join(crossing)


def test_the_import_graph_has_no_cycle():
    edges = graph()
    nodes = {_top(n) for n in edges}
    deps = {n: set() for n in nodes}
    for name, targets in edges.items():
        deps[_top(name)].update(targets)
    done, stack = set(), set()

    def visit(n, path):
        assert n not in stack, "import cycle: " + " -> ".join(path + [n])
        if n in done:
            return
        stack.add(n)
        for m in deps.get(n, ()):
            visit(m, path + [n])
        stack.discard(n)
        done.add(n)

    for n in sorted(nodes):
        visit(n, [])


@pytest.mark.parametrize("name", sorted(_modules()))
def test_modules_are_small(name):
    lines = len(_modules()[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines: split it by idea (at most {MAX_LINES})"


def test_the_readme_names_every_top_level_module():
    table = re.findall(r"^\| `eoslab\.(\w+)` \|", README.read_text(), flags=re.M)
    modules = {_top(name) for name in _modules()} - {"_validation"}
    assert set(table) == modules, (f"README table lists {sorted(set(table) - modules)} that do not exist and misses "
                                   f"{sorted(modules - set(table))}")


def test_the_package_docstring_names_every_top_level_module():
    import eoslab

    named = set(re.findall(r":mod:`eoslab\.(\w+)`", eoslab.__doc__))
    modules = {_top(name) for name in _modules()} - {"_validation"}
    assert named == modules, f"docstring: extra {sorted(named - modules)}, missing {sorted(modules - named)}"
    for i, names in enumerate(LAYERS[1:], start=1):  # the docstring lists the layers in this order
        assert all(LAYER[n] == i for n in names)


if __name__ == "__main__":
    for name, targets in graph().items():
        print(f"{name:<36} L{LAYER[_top(name)]} -> {', '.join(targets) or '-'}")
