"""Import direction (STYLE.md §2): the translation layer stays pure, apps import downward only."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = {"proxyhub", "accounts", "credentials", "gateway", "tests"}


def parse(path: Path) -> ast.Module:
    """``path``'s syntax tree. CPython 3.11 sometimes fails ast.parse with "SystemError: AST constructor
    recursion depth mismatch" once earlier tests in the process ran deep recursion (seen in CI); then the
    file is parsed in a fresh interpreter and its tree rebuilt from ast.dump(), which is plain constructor
    calls."""
    try:
        return ast.parse(path.read_text())
    except SystemError:
        child = "import ast, sys; print(ast.dump(ast.parse(open(sys.argv[1]).read())))"
        dump = subprocess.run([sys.executable, "-c", child, str(path)], capture_output=True, text=True,
                              check=True).stdout
        tree: ast.Module = eval(dump, vars(ast))  # noqa: S307 (our own ast.dump of our own file)
        return tree


def imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(parse(path)):
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


V1_PATH = ("gateway.app", "gateway.relay", "gateway.pool", "gateway.upstream", "gateway.translate", "gateway.formats",
           "gateway.keycache", "gateway.catalog", "gateway.limits", "gateway.http", "gateway.routes", "gateway.probe",
           "gateway.admission", "gateway.refusals", "gateway.websocket")


def test_usage_never_imports_the_v1_path():
    for path in modules("gateway/usage"):
        for name in imports(path):
            assert not name.startswith(V1_PATH), f"{path.relative_to(ROOT)} imports {name}"


def imported_names(path: Path) -> set[str]:
    """imports(), plus ``a.b.c`` for each ``from a.b import c`` (c may be a module)."""
    names = imports(path)
    for node in ast.walk(parse(path)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Project module -> the project modules it imports (at any depth, function-level imports too)."""
    paths = [p for package in PROJECT - {"tests"} for p in modules(package) if "migrations" not in p.parts]
    names = {_module_name(p): p for p in paths}
    graph: dict[str, set[str]] = {}
    for name, path in names.items():
        edges = set()
        for imported in imported_names(path):
            # "from a.b import c" may name module a.b.c or attribute c of a.b: take the longest module.
            while imported and imported not in names:
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                edges.add(imported)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle_anywhere():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_check_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_parse_falls_back_to_a_fresh_interpreter_on_cpythons_systemerror(monkeypatch):
    path = ROOT / "gateway" / "relay.py"
    expected = ast.dump(ast.parse(path.read_text()))

    def broken(*args, **kwargs):
        raise SystemError("AST constructor recursion depth mismatch (before=129, after=86)")

    monkeypatch.setattr(ast, "parse", broken)  # only this process's; the child parses for real
    assert ast.dump(parse(path)) == expected
