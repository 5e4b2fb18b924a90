"""The shape of zoo_core (issue: a core that knows no network family): no import circles, no import from a
lower layer to a higher one, and no family's name in the core. Read from the source with `ast`, lazy imports
inside functions included (they are arrows too); ``if TYPE_CHECKING:`` blocks are not imports."""

from __future__ import annotations

import ast
import re
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "zoo_core"

# bottom to top: a module may import its own layer and the ones below, never one above
LAYERS = [
    {"zoo_core", "errors", "files", "native", "hashing", "provenance", "builtin", "home", "locks", "devices",
     "threads", "allocator", "pcm", "metrics", "chunking", "stems", "memory", "hookspecs"},
    {"framing", "builders", "blocks", "architectures", "model", "audio", "musdb", "inference", "reproduce"},
    {"plugins", "registry", "weights"},
    {"separation", "manifest", "stream", "evaluate", "export", "hosts", "loading", "describe", "train", "demo",
     "ensemble"},
    {"cli", "serve"},
]
# what the core may still say of the built-in families: the name under which releases before 0.2 stored the
# network (their checkpoints keep loading)
ALLOWED = ('LEGACY_NETWORK_NAME = "unet"',)
FAMILY_NAME = re.compile(r"\b(tdc|tfc|tdf|unet)[-_a-z0-9]*|\bv3\b", re.IGNORECASE)


def _modules() -> dict[str, Path]:
    found = {}
    for path in CORE.rglob("*.py"):
        parts = path.relative_to(CORE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    hidden = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
              and getattr(block.test, "id", "") == "TYPE_CHECKING" for node in ast.walk(block)}
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    targets = set()
    for node in ast.walk(tree):
        if id(node) in hidden:
            continue
        if isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1] + [node.module or ""]).strip(".") \
                if node.level else node.module
            candidates = [f"{base}.{alias.name}" for alias in node.names] + [base]
        elif isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            continue
        for candidate in candidates:
            while candidate not in modules and "." in candidate:
                candidate = candidate.rsplit(".", 1)[0]
            if candidate in modules and candidate != name:
                targets.add(candidate)
    return targets


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else "zoo_core"
    found = [index for index, layer in enumerate(LAYERS) if top in layer]
    assert found, f"{module}: not in the layer map of tests/test_layering.py"
    return found[0]


def test_every_module_has_a_layer_and_no_arrow_points_up():
    graph = _graph()
    upward = [f"{source} -> {target}" for source, targets in graph.items() for target in targets
              if _layer(target) > _layer(source)]
    assert upward == []


def test_no_import_circles():
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    assert circles == []


def test_the_core_names_no_network_family():
    found = []
    for path in sorted(CORE.rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if FAMILY_NAME.search(line) and not line.strip().startswith(ALLOWED):
                found.append(f"{path.relative_to(CORE.parent)}:{number}: {line.strip()}")
    assert found == []


def test_the_layer_check_sees_an_upward_arrow(tmp_path, monkeypatch):
    """The checks are live: a foundation module that imported the registry would be reported."""
    modules = _modules()
    planted = tmp_path / "errors.py"
    planted.write_text("from .registry import get_entry\n")
    assert _layer("zoo_core.registry") > _layer("zoo_core.errors")
    assert "zoo_core.registry" in _imports("zoo_core.errors", planted, modules)
