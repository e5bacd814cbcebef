"""The architecture rules of ``src/whisper_tune``, checked from source text alone.

Why: the layer order (what may import what), the absence of import cycles, the module size
limit and the module docstrings are house rules that reviews keep missing, mostly through
imports hidden inside functions. This checker parses every module with :mod:`ast` (it imports
none of them, so it stays fast and needs no torch) and lists every breach as ``file:line``
with the rule it breaks; ``test_architecture.py`` runs it on ``src/`` and on small synthetic
trees. ``LAYERS`` is the one rank table; docs/architecture.md mirrors it, and a test keeps
the two equal.

What counts as an import: ``import``/``from`` statements anywhere (module level, inside
functions and methods, under ``if TYPE_CHECKING:``), relative ones resolved, and
``importlib.import_module``/``__import__`` calls (and ``resources.files("whisper_tune...")``,
which imports the package) whose argument is a string literal, a name bound to literals (a
module-level constant, or the loop variable over a module-level tuple of names, as ``cli.py``
does), or an f-string ``f"whisper_tune.pkg.{...}"``: the modules of ``pkg`` named by strings in
the module's top-level statements (a lazy ``__init__``'s ``_WHERE`` table), else all of them.

Layer rule: a module may import its own package and anything of a lower rank. Rank 0 is one
layer of single foundation modules that may import each other; otherwise two packages of the
same rank may not import each other, except ``cli`` -> ``demo`` (the one entry point registers
the demo's subcommand). Importing the root package ``whisper_tune`` itself (for ``__file__``)
is allowed everywhere: every ``import whisper_tune.x`` runs it anyway.

Cycle rule: the graph of executable imports (module-level, function-level, dynamic) has no
cycle. Two kinds of edge are left out of it (the layer rule still applies to both):
``TYPE_CHECKING`` imports, which never run; and a function-level or dynamic import of the
module's own ancestor package (``serve/app.py`` reading ``resources.files("whisper_tune.serve")``,
a module importing its package's ``__init__`` inside a function). Python imports a package
before any module in it, so such an import loads nothing; counting it would make every package
whose ``__init__`` re-exports its modules lazily (PEP 562 ``__getattr__``) a cycle with them. A
module-level ``from pkg import name`` of its own package stays in: it can read a
half-initialized package.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"
PACKAGE = "whisper_tune"
MAX_LINES = 450

# THE rank table (docs/architecture.md mirrors it). Keys are the first component below
# ``whisper_tune``: a top-level module (``config``) or a package (``data`` covers data.synth.*).
LAYERS: dict[int, tuple[str, ...]] = {
    0: ("errors", "config", "net", "paths", "storage", "localray", "console"),
    1: ("data", "scoring"),
    2: ("models",),
    3: ("runs",),
    4: ("inference",),
    5: ("train",),
    6: ("evaluate",),
    7: ("cluster",),
    8: ("serve",),
    9: ("demo", "cli"),
    10: ("__init__", "__main__"),
}
FOUNDATION_RANK = 0
SAME_RANK_ALLOWED = frozenset({("cli", "demo")})
RANK = {unit: rank for rank, units in LAYERS.items() for unit in units}


@dataclass(frozen=True)
class Import:
    target: str
    lineno: int
    kind: str  # "module-level" | "function-level" | "TYPE_CHECKING" | "dynamic"


@dataclass
class Module:
    name: str
    path: Path
    lines: int
    has_docstring: bool
    imports: list[Import] = field(default_factory=list)


def unit_of(module: str) -> str:
    """``whisper_tune.data.synth.text`` -> ``data``; the root package -> ``__init__``.

    Every area's command module (``whisper_tune.<area>/.../cli``) belongs to the ``cli`` layer:
    commands are the entry layer and may use any stage (``data check --model`` loads a model's
    processor), while no stage may import a command module.
    """
    parts = module.split(".")
    if len(parts) > 2 and parts[-1] in ("cli", "__main__"):
        return "cli"
    return parts[1] if len(parts) > 1 else "__init__"


def _module_name(src: Path, path: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _str_consts(node: ast.expr) -> list[str] | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        values = [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
        return values if len(values) == len(node.elts) else None
    return None


class _Collector(ast.NodeVisitor):
    def __init__(self, name: str, is_package: bool, known: set[str], tree: ast.Module) -> None:
        self.name, self.known = name, known
        self.package = name if is_package else name.rpartition(".")[0]
        self.found: list[Import] = []
        self.depth = 0
        self.type_only = 0
        self.consts: dict[str, list[str]] = {}  # module-level NAME = "..." or ("...", ...)
        for stmt in tree.body:
            if isinstance(stmt, ast.Assign | ast.AnnAssign) and stmt.value is not None:
                values = _str_consts(stmt.value)
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                for t in targets:
                    if values is not None and isinstance(t, ast.Name):
                        self.consts[t.id] = values
        self.literals = {  # every string a module-level statement holds (a lazy table's values)
            n.value for stmt in tree.body for n in ast.walk(stmt) if isinstance(n, ast.Constant)
        }
        self.loops: dict[str, str] = {
            n.target.id: n.iter.id
            for n in ast.walk(tree)
            if isinstance(n, ast.For) and isinstance(n.target, ast.Name) and isinstance(n.iter, ast.Name)
        }

    def _kind(self) -> str:
        return "TYPE_CHECKING" if self.type_only else "function-level" if self.depth else "module-level"

    def _add(self, target: str, lineno: int, kind: str | None = None) -> None:
        if target == PACKAGE or target.startswith(PACKAGE + "."):
            self.found.append(Import(target, lineno, kind or self._kind()))

    def _resolve(self, dotted: str) -> str:
        """The longest known module prefix of ``dotted`` (an attribute path stops there)."""
        parts = dotted.split(".")
        for end in range(len(parts), 1, -1):
            if ".".join(parts[:end]) in self.known:
                return ".".join(parts[:end])
        return ".".join(parts[:2])  # an unknown module still has a unit (and a rank)

    def _in_function(self, node: ast.AST) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _in_function

    def visit_If(self, node: ast.If) -> None:
        if not _is_type_checking(node.test):
            self.generic_visit(node)
            return
        self.visit(node.test)
        self.type_only += 1
        for stmt in node.body:
            self.visit(stmt)
        self.type_only -= 1
        for stmt in node.orelse:
            self.visit(stmt)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(self._resolve(alias.name), node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base_parts = self.package.split(".")
            base_parts = base_parts[: len(base_parts) - (node.level - 1)]
            base = ".".join(base_parts + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            is_unit = base == PACKAGE and alias.name in RANK
            self._add(sub if sub in self.known or is_unit else self._resolve(base), node.lineno)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        fname = (
            func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        )
        if fname in ("import_module", "__import__", "files") and node.args:
            for target in self._dynamic_targets(node.args[0]):
                if fname != "files" or target.startswith(PACKAGE):
                    self._add(self._resolve(target), node.lineno, "dynamic")
        self.generic_visit(node)

    def _dynamic_targets(self, arg: ast.expr) -> list[str]:
        if isinstance(arg, ast.JoinedStr):  # f"whisper_tune.models.{_WHERE[name]}"
            head = arg.values[0] if arg.values else None
            prefix = head.value if isinstance(head, ast.Constant) and isinstance(head.value, str) else ""
            if not prefix.endswith(".") or prefix[:-1] not in self.known:
                return []
            children = sorted(m for m in self.known if m.rpartition(".")[0] == prefix[:-1])
            named = [m for m in children if m.rpartition(".")[2] in self.literals]
            return named or children  # the modules its module-level tables name, else all of them
        if isinstance(arg, ast.Name):
            return self.consts.get(arg.id) or self.consts.get(self.loops.get(arg.id, ""), [])
        return _str_consts(arg) or []


def scan(src: Path = SRC) -> dict[str, Module]:
    """Every module under ``src/whisper_tune`` with the imports it makes (nothing is imported)."""
    paths = sorted((src / PACKAGE).rglob("*.py"))
    known = {_module_name(src, p) for p in paths}
    modules: dict[str, Module] = {}
    for path in paths:
        name = _module_name(src, path)
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text, filename=str(path))
        collector = _Collector(name, path.name == "__init__.py", known, tree)
        collector.visit(tree)
        doc = ast.get_docstring(tree)
        modules[name] = Module(name, path, len(text.splitlines()), bool(doc and doc.strip()))
        modules[name].imports = list(dict.fromkeys(i for i in collector.found if i.target != name))
    return modules


def _where(mod: Module, lineno: int | None = None) -> str:
    try:
        rel = mod.path.relative_to(REPO)
    except ValueError:
        rel = mod.path
    return f"{rel}:{lineno}" if lineno else str(rel)


def layer_violations(modules: dict[str, Module]) -> list[str]:
    """Every import that breaks the layer rule, and every module the rank table does not place."""
    out: list[str] = []
    for mod in modules.values():
        src_unit = unit_of(mod.name)
        if src_unit not in RANK:
            out.append(f"{_where(mod)}: {mod.name} is in no layer: add '{src_unit}' to LAYERS")
            continue
        for imp in mod.imports:
            dst_unit = unit_of(imp.target)
            if dst_unit in (src_unit, "__init__"):
                continue
            head = f"{_where(mod, imp.lineno)}: {mod.name} -> {imp.target} ({imp.kind})"
            if dst_unit not in RANK:
                out.append(f"{head}: '{dst_unit}' is in no layer")
                continue
            r_src, r_dst = RANK[src_unit], RANK[dst_unit]
            if r_dst > r_src:
                out.append(f"{head}: rank {r_src} ({src_unit}) may not import rank {r_dst} ({dst_unit})")
            elif (
                r_dst == r_src and r_src != FOUNDATION_RANK and (src_unit, dst_unit) not in SAME_RANK_ALLOWED
            ):
                out.append(
                    f"{head}: {src_unit} and {dst_unit} share rank {r_src} and may not import each other"
                )
    return out


def import_cycles(modules: dict[str, Module]) -> list[str]:
    """One cycle per strongly connected component of the executable import graph, edge by edge."""
    graph: dict[str, dict[str, Import]] = {name: {} for name in modules}
    for mod in modules.values():
        for imp in mod.imports:
            if imp.target not in modules or imp.kind == "TYPE_CHECKING":
                continue
            if mod.name.startswith(imp.target + ".") and imp.kind != "module-level":
                continue  # an own ancestor package, lazily: see the module docstring
            graph[mod.name].setdefault(imp.target, imp)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    sccs: list[list[str]] = []

    def strongconnect(v: str) -> None:  # Tarjan; the graph is small, recursion is fine
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp: list[str] = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    out: list[str] = []
    for comp in sorted(sccs):
        members, start = set(comp), comp[0]
        prev: dict[str, str] = {}
        frontier = [start]
        while frontier and start not in prev:  # BFS for the shortest way back to start
            nxt: list[str] = []
            for v in frontier:
                for w in sorted(graph[v]):
                    if w in members and w not in prev:
                        prev[w] = v
                        nxt.append(w)
            frontier = nxt
        path, node = [start], prev[start]
        while node != start:
            path.append(node)
            node = prev[node]
        path.append(start)
        path.reverse()
        on_path = list(zip(path, path[1:], strict=False))
        rest = sorted((a, b) for a in comp for b in graph[a] if b in members and (a, b) not in on_path)

        def hop(a: str, b: str) -> str:
            return f"  {_where(modules[a], graph[a][b].lineno)}: {a} -> {b} ({graph[a][b].kind})"

        text = f"cycle among {len(comp)} modules: {' -> '.join(path)}\n" + "\n".join(hop(*e) for e in on_path)
        if rest:
            text += "\n  other imports among these modules (each lies on a cycle too):\n"
            text += "\n".join(hop(*e) for e in rest)
        out.append(text)
    return out


def size_and_docstring_problems(modules: dict[str, Module]) -> list[str]:
    out = [
        f"{_where(m)}: {m.lines} lines (limit {MAX_LINES})" for m in modules.values() if m.lines > MAX_LINES
    ]
    out += [
        f"{_where(m)}: no module docstring (say why it exists)"
        for m in modules.values()
        if not m.has_docstring
    ]
    return out
