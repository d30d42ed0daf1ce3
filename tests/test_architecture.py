"""The import order of docs/architecture.md holds: no module imports a layer above its own, no import cycles."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "yolov9"


def documented_layers() -> list[list[str]]:
    """The fenced block after '<!-- layers -->' in docs/architecture.md: one layer per line, bottom first."""
    text = (REPO / "docs" / "architecture.md").read_text()
    block = re.search(r"<!-- layers -->\s*```text\n(.*?)```", text, re.S)
    assert block, "docs/architecture.md has no '<!-- layers -->' block"
    return [line.split("#")[0].split() for line in block.group(1).splitlines() if line.split("#")[0].strip()]


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every yolov9 module imported anywhere in the file (top level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "yolov9"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "yolov9":
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names
                      if (PACKAGE.parent / f"{node.module}.{a.name}".replace(".", "/")).with_suffix(".py").exists()}
    return found


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}
GRAPH = {name: {m for m in imports(path) if m in MODULES and m != name} for name, path in MODULES.items()}


def unit(module: str) -> str:
    """The layer unit of a module: its sub-package, or the top-level module itself (yolov9.api -> 'api')."""
    return module.split(".")[1] if module.count(".") else ""


def test_every_unit_has_a_documented_layer():
    layers = {u for layer in documented_layers() for u in layer}
    units = {unit(m) for m in MODULES} - {""}
    assert units <= layers, f"not in docs/architecture.md: {sorted(units - layers)}"
    assert layers <= units, f"documented but absent: {sorted(layers - units)}"


def test_no_module_imports_a_layer_above_its_own():
    level = {u: i for i, layer in enumerate(documented_layers()) for u in layer}
    upward = [f"{m} -> {t}" for m, targets in GRAPH.items() if m != "yolov9" for t in targets
              if t == "yolov9" or level[unit(t)] > level[unit(m)]]
    assert not upward, "imports that run back up:\n" + "\n".join(sorted(upward))


def test_same_layer_units_do_not_import_each_other():
    level = {u: i for i, layer in enumerate(documented_layers()) for u in layer}
    sideways = [f"{m} -> {t}" for m, targets in GRAPH.items() if m != "yolov9" for t in targets
                if unit(t) != unit(m) and level[unit(t)] == level[unit(m)]]
    assert not sideways, "\n".join(sorted(sideways))


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_cycle_through(module):
    """Depth-first from each module: it never reaches itself again."""
    stack, seen = [(module, (module,))], set()
    while stack:
        current, path = stack.pop()
        for target in GRAPH[current]:
            assert target != module, "import cycle: " + " -> ".join(path + (target,))
            if target not in seen:
                seen.add(target)
                stack.append((target, path + (target,)))
