"""The code an artifact was computed by, as part of its identity, and the package's import graph.

An artifact's identity holds a hash of the source of every module of this package its stage can
run: the stage's module, the implementations its settings pick (a feature set, a backbone) and
every package module those import, anywhere in their source (imports deferred into functions
included). Editing any of them, even one function body, gives the artifact a new identity, so
the next run builds it again instead of reusing features computed by code that no longer exists.
The hash covers the code, not its text: docstrings, comments and formatting do not enter it
(each module is hashed as its syntax tree without docstrings).

The same import graph is checked for cycles by the test suite.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
from pathlib import Path

PACKAGE = __name__.split(".")[0]
ROOT = Path(__file__).resolve().parent


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """``dotted module name -> source file`` for every module of the package (``__init__`` = the package)."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = [PACKAGE, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    base = module.split(".") if is_package else module.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, *([target] if target else [])])


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Package modules that ``module`` imports anywhere in its source (``TYPE_CHECKING`` blocks included)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in _package_scan(path)[0]:
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            base = _resolve(module, is_package, node.level, node.module) if node.level else (node.module or "")
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        found.update(name for name in names if name in modules and name != module)
    return found


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """``module -> the package modules it imports``."""
    modules = module_files(root)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def closure(modules, graph: dict[str, set[str]]) -> list[str]:
    """``modules`` and every package module they import, directly or not, sorted."""
    seen: set[str] = set()
    todo = list(modules)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(graph.get(name, ()))
    return sorted(seen)


def _scan(path: Path) -> tuple[list[ast.stmt], str]:
    """One parse of a module: its import statements, anywhere in it, and the SHA-256 of its code (its
    syntax tree without docstrings: comments and layout never count)."""
    tree = ast.parse(Path(path).read_text(), str(path))
    imports = []
    for node in ast.walk(tree):  # a node's children are queued before it is seen: dropping its docstring is safe
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            imports.append(node)
        elif isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                node.body = node.body[1:] or [ast.Pass()]
    return imports, hashlib.sha256(ast.dump(tree).encode()).hexdigest()


def source_digest(path: Path) -> str:
    """SHA-256 of a module's code: its syntax tree without docstrings (comments and layout never count)."""
    return _scan(path)[1]


@functools.cache
def _package_scan(path: Path) -> tuple[list[ast.stmt], str]:
    """:func:`_scan` of a package module, once per process (the import graph and every stage's identity
    share them; the code that runs is the code imported when the process started)."""
    return _scan(path)


@functools.cache
def _package_state() -> tuple[dict[str, Path], dict[str, set[str]]]:
    return module_files(), import_graph()


def code_hash(modules) -> str:
    """One hash of the code of ``modules`` (dotted names) and of every package module they import.

    A module outside this package (a user's plug-in) counts by its own source file only.
    """
    files, graph = _package_state()
    inside = [m for m in modules if m in files]
    digests = {name: _package_scan(files[name])[1] for name in closure(inside, graph)}
    for name in sorted(set(modules) - set(inside)):
        spec = importlib.util.find_spec(name)
        origin = spec.origin if spec is not None else None
        digests[name] = source_digest(Path(origin)) if origin and origin.endswith(".py") else "unknown"
    return hashlib.sha256("\n".join(f"{k} {v}" for k, v in sorted(digests.items())).encode()).hexdigest()[:16]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found
