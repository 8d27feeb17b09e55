"""The package layers: what may import what.

The client and the store share only `multiraft.protocol` and
`multiraft.security` (and the public errors); the Raft core imports
nothing of the store; the store's modules import each other without a
circle, not even under TYPE_CHECKING.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import multiraft

ROOT = Path(multiraft.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(("multiraft", *parts)).removesuffix(".__init__")


def imports_of(path: Path) -> set[str]:
    """Every multiraft module `path` imports, resolved to absolute names."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            name = f"{base}.{node.module}" if node.level and node.module else node.module or base
            found.add(name)
            found.update(f"{name}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {n for n in found if n.startswith("multiraft")}


def modules_under(package: str) -> dict[str, set[str]]:
    folder = ROOT.joinpath(*package.split(".")[1:])
    return {module_name(path): imports_of(path) for path in folder.rglob("*.py")}


def reaches(imports: set[str], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(i for i in imports if i.startswith(forbidden))


def test_the_client_imports_no_server_code() -> None:
    server = ("multiraft.store", "multiraft.storage", "multiraft.transport", "multiraft.raft")
    for module, imports in modules_under("multiraft.client").items():
        assert reaches(imports, server) == [], module
    for package in ("multiraft.protocol", "multiraft.security"):
        for module, imports in modules_under(package).items():
            assert reaches(imports, (*server, "multiraft.client")) == [], module


def test_the_server_imports_no_client_code() -> None:
    for package in ("multiraft.store", "multiraft.storage", "multiraft.transport"):
        for module, imports in modules_under(package).items():
            assert reaches(imports, ("multiraft.client",)) == [], module


def test_the_raft_core_imports_nothing_of_the_store() -> None:
    for module, imports in modules_under("multiraft.raft").items():
        assert all(i.startswith("multiraft.raft") for i in imports), module


def test_importing_the_client_loads_neither_lmdb_nor_the_raft_core() -> None:
    probe = (
        "import sys, multiraft.client;"
        "print(sorted(m for m in sys.modules if m == 'lmdb' or m.startswith("
        "('multiraft.raft', 'multiraft.storage', 'multiraft.store', 'multiraft.transport'))))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_store_modules_import_each_other_without_a_circle() -> None:
    graph = {
        module: {i for i in imports if i in modules}
        for modules in [modules_under("multiraft.store")]
        for module, imports in modules.items()
    }
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        assert module not in path, " -> ".join([*path, module])
        if module in done:
            return
        for dep in graph[module]:
            visit(dep, [*path, module])
        done.add(module)

    for module in graph:
        visit(module, [])
