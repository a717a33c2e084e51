"""Import direction (STYLE.md §2): the translation layer stays pure, apps import downward only."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = {"proxyhub", "accounts", "credentials", "gateway", "tests"}


def imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", ["gateway/formats", "gateway/translate"])
def test_translation_layer_imports_only_stdlib_and_itself(package):
    for path in modules(package):
        for name in imports(path):
            top = name.split(".")[0]
            allowed = top in sys.stdlib_module_names or name.startswith(("gateway.formats", "gateway.translate"))
            assert allowed, f"{path.relative_to(ROOT)} imports {name}"


@pytest.mark.parametrize("package, forbidden", [
    ("credentials", ("accounts", "gateway")),
    ("accounts", ("gateway",)),
])
def test_apps_import_downward_only(package, forbidden):
    for path in modules(package):
        for name in imports(path):
            assert name.split(".")[0] not in forbidden, f"{path.relative_to(ROOT)} imports {name}"
