"""The determinism scan: find code that could make two runs of the same inputs differ.

A run must be a pure function of (SSOT, dataset, seed): time comes from the bar clock and
randomness from ``ctx.rng``. This module reads Python source with :mod:`ast` (not grep, so
``from time import time as now`` and ``import numpy as np`` are followed, and strings and comments
never match) and reports each suspicious construct as ``path:line:col: CODE message``:

=======  =====================================================================================
TD101    wall clock: ``time.time()``, ``datetime.now()``, ``date.today()``, ``time.monotonic()``...
TD201    global or OS randomness: ``random.*``, legacy ``numpy.random.*``, an unseeded
         ``default_rng()``/``RandomState()``/``SeedSequence()``, ``uuid1/uuid4``, ``os.urandom``,
         ``secrets``
TD301    iterating a set or frozenset (its order follows str hashes, which PYTHONHASHSEED changes)
TD401    ``hash()``: salted per process for str and bytes
TD402    ordering by ``id()`` (memory addresses)
TD501    a directory listing (``os.listdir``, ``glob``, ``Path.iterdir/glob/rglob``, ``os.walk``)
         not sorted: its order is the file system's
TD900    an allow comment without a reason
TD000    the file cannot be parsed
=======  =====================================================================================

Justified cases carry ``# treasure: allow-nondeterminism <reason>`` on a line of the flagged
expression (durations that go to a volatile field, a progress display). The reason is mandatory.
Dict order is insertion order in Python 3.7+ and is never flagged.
"""

from __future__ import annotations

import ast
import hashlib
import io
import re
import tokenize
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Iterator

__all__ = ["ALLOW_MARKER", "RULES", "Finding", "ScanResult", "default_targets", "package_dir", "python_files",
           "scan_paths", "scan_source", "strategy_file"]

ALLOW_MARKER = "treasure: allow-nondeterminism"
_ALLOW = re.compile(r"#\s*treasure:\s*allow-nondeterminism\b(?P<reason>.*)$")

RULES: dict[str, str] = {
    "TD000": "file cannot be parsed",
    "TD101": "wall clock",
    "TD201": "global or OS randomness",
    "TD301": "iteration over a set",
    "TD401": "hash() of str/bytes is salted per process",
    "TD402": "ordering by id()",
    "TD501": "unsorted directory listing",
    "TD900": "allow comment without a reason",
}

# --------------------------------------------------------------------------------------------
# what is flagged, by fully qualified name
# --------------------------------------------------------------------------------------------
_WALL_CLOCK = frozenset({
    "time.time", "time.time_ns", "time.monotonic", "time.monotonic_ns", "time.perf_counter",
    "time.perf_counter_ns", "time.process_time", "time.process_time_ns", "time.thread_time",
    "time.thread_time_ns", "time.clock_gettime", "time.clock_gettime_ns",
    "datetime.datetime.now", "datetime.datetime.utcnow", "datetime.datetime.today", "datetime.date.today",
})
#: Read the clock only when called without a time argument.
_CLOCK_WITHOUT_ARGS = frozenset({"time.localtime", "time.gmtime", "time.ctime", "time.asctime", "time.strftime"})
_OS_RANDOM = frozenset({"uuid.uuid1", "uuid.uuid4", "os.urandom", "os.getrandom", "random.SystemRandom",
                        "numpy.random.SystemRandom"})
#: Deterministic when given a seed (first argument or the keyword), OS entropy without one.
_SEEDABLE = {
    "random.Random": ("x",),
    "numpy.random.default_rng": ("seed",),
    "numpy.random.RandomState": ("seed",),
    "numpy.random.SeedSequence": ("entropy",),
    "numpy.random.PCG64": ("seed",),
    "numpy.random.PCG64DXSM": ("seed",),
    "numpy.random.Philox": ("seed",),
    "numpy.random.SFC64": ("seed",),
    "numpy.random.MT19937": ("seed",),
}
#: numpy.random names that are types or seeded constructors, not the legacy global generator.
_NUMPY_RANDOM_OK = frozenset({"Generator", "BitGenerator"}) | {n.rsplit(".", 1)[1] for n in _SEEDABLE
                                                                if n.startswith("numpy.random.")}
_LISTINGS = frozenset({"os.listdir", "os.scandir", "os.walk", "glob.glob", "glob.iglob"})
_LISTING_METHODS = frozenset({"iterdir", "glob", "rglob"})
#: Consumers whose result does not depend on the order they are fed.
_ORDER_FREE = frozenset({"sorted", "set", "frozenset", "len", "any", "all", "min", "max", "bool"})
#: Consumers that turn an iteration order into an observable sequence.
_ORDER_MAKING = frozenset({"list", "tuple", "enumerate", "iter", "next", "zip", "map", "filter", "reversed",
                           "sum", "dict", "collections.OrderedDict", "numpy.array", "numpy.asarray",
                           "numpy.fromiter", "itertools.chain", "itertools.islice"})
_SET_TYPES = frozenset({"set", "frozenset", "Set", "FrozenSet", "AbstractSet", "typing.Set", "typing.FrozenSet",
                        "typing.AbstractSet", "collections.abc.Set"})


@dataclass(frozen=True, order=True)
class Finding:
    """One suspicious construct: where, which rule, and what to do instead."""

    path: str
    line: int
    col: int
    code: str
    message: str

    def render(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.code} {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ScanResult:
    """Findings of a scan (sorted by file, line, column) and the files scanned."""

    findings: list[Finding] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    allowed: int = 0

    @property
    def clean(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        return {"clean": self.clean, "files": len(self.files), "allowed": self.allowed,
                "findings": [f.to_dict() for f in self.findings]}


# --------------------------------------------------------------------------------------------
# scanning
# --------------------------------------------------------------------------------------------
def scan_source(source: str, path: str = "<string>") -> tuple[list[Finding], int]:
    """Findings in one module's source, and how many were allowed by a justified comment."""
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as exc:
        return [Finding(path, exc.lineno or 1, (exc.offset or 1) - 1, "TD000",
                        f"cannot parse: {exc.msg} (a module that does not parse cannot be checked)")], 0
    visitor = _Visitor(path, _Imports.of(tree))
    visitor.visit(tree)
    allows, problems = _allow_comments(source, path)
    kept: list[Finding] = []
    allowed = 0
    for finding, (first, last) in visitor.found:
        lines = [n for n in range(first, last + 1) if n in allows]
        if lines:
            allowed += 1
        else:
            kept.append(finding)
    return sorted(set(kept + problems)), allowed


def python_files(paths: Iterable[str | Path]) -> list[Path]:
    """The ``.py`` files under ``paths`` (files taken as given), sorted, skipping caches, virtual
    environments, hidden folders and Treasure's packaged data (``_bundle``)."""
    skip = {"__pycache__", ".venv", "venv", "node_modules", "_bundle", "build", "dist"}
    found: set[Path] = set()
    for entry in map(Path, paths):
        if entry.is_file():
            found.add(entry)
        elif entry.is_dir():
            for candidate in sorted(entry.rglob("*.py")):
                parts = candidate.relative_to(entry).parts[:-1]
                if not any(part in skip or part.startswith(".") for part in parts):
                    found.add(candidate)
    return sorted(found)


def scan_paths(paths: Iterable[str | Path], *, relative_to: Path | Iterable[Path] | None = None) -> ScanResult:
    """Scan every Python file under ``paths``; paths in findings are shown relative to the first
    of ``relative_to`` that holds them. A file that cannot be read or parsed is itself a finding."""
    bases = [relative_to] if isinstance(relative_to, Path) else list(relative_to or ())
    result = ScanResult()
    for path in python_files(paths):
        shown = _shown(path, bases)
        result.files.append(shown)
        try:
            data = path.read_bytes()
            key = hashlib.sha256(data).digest()
            if key not in _SCANNED:
                encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)  # honours PEP 263
                _SCANNED[key] = scan_source(data.decode(encoding), _PLACEHOLDER)
        except (OSError, SyntaxError, UnicodeDecodeError, LookupError) as exc:
            result.findings.append(Finding(shown, 1, 0, "TD000", f"cannot read: {exc}"))
            continue
        findings, allowed = _SCANNED[key]
        result.findings.extend(replace(finding, path=shown) for finding in findings)
        result.allowed += allowed
    result.findings.sort()
    return result


#: Scans by source digest: a file's findings depend on its bytes only, and the gate and its tests
#: scan the same package again and again in one process.
_SCANNED: dict[bytes, tuple[list[Finding], int]] = {}
_PLACEHOLDER = "<source>"


def package_dir() -> Path:
    """The installed ``treasure`` package: the engine code every run executes."""
    return Path(__file__).resolve().parent


def strategy_file(ref: str, workspace_root: Path) -> Path | None:
    """The source file of a strategy reference (``file.py:Class`` relative to the workspace, or
    ``module:Class``); None for a built-in name (part of the package) or what cannot be found.
    A module is located without being imported (only its parent packages are)."""
    import importlib.util

    if not isinstance(ref, str) or ":" not in ref:
        return None
    target = ref.rpartition(":")[0]
    if target.endswith(".py"):
        path = Path(target)
        path = path if path.is_absolute() else workspace_root / path
        return path if path.is_file() else None
    try:
        spec = importlib.util.find_spec(target)
    except (ImportError, ValueError):
        return None
    origin = getattr(spec, "origin", None)
    return Path(origin) if origin and origin.endswith(".py") else None


def default_targets(workspace_root: Path, ssot: Any = None) -> list[Path]:
    """What the determinism gate scans: the treasure package and the SSOT's strategy when it is
    user code. ``ssot`` is the SSOT document (read from spec/ssot.json when not given)."""
    import json

    targets = [package_dir()]
    if ssot is None:
        try:
            ssot = json.loads((workspace_root / "spec" / "ssot.json").read_bytes())
        except (OSError, ValueError):
            ssot = {}
    strategy = ssot.get("strategy") if isinstance(ssot, dict) else None
    ref = strategy.get("name") if isinstance(strategy, dict) else None
    found = strategy_file(ref, workspace_root) if isinstance(ref, str) else None
    if found is not None and package_dir() not in found.resolve().parents:
        targets.append(found)
    return targets


def _shown(path: Path, bases: list[Path]) -> str:
    for base in bases:
        try:
            return path.resolve().relative_to(Path(base).resolve()).as_posix()
        except ValueError:
            continue
    return path.as_posix()


def _allow_comments(source: str, path: str) -> tuple[dict[int, str], list[Finding]]:
    """Line -> reason of each allow comment; a comment without a reason is itself a finding."""
    allows: dict[int, str] = {}
    problems: list[Finding] = []
    if "allow-nondeterminism" not in source:  # tokenizing is the slow part: skip it when pointless
        return allows, problems
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):  # pragma: no cover - ast.parse accepted the source
        return allows, problems
    for token in tokens:
        if token.type != tokenize.COMMENT:
            continue
        match = _ALLOW.search(token.string)
        if match is None:
            continue
        reason = match.group("reason").strip(" :-\t")
        line, col = token.start
        if reason:
            allows[line] = reason
        else:
            problems.append(Finding(path, line, col, "TD900", f"'# {ALLOW_MARKER}' needs a reason after it, "
                                    "e.g. '# treasure: allow-nondeterminism duration goes to a volatile field'"))
    return allows, problems


# --------------------------------------------------------------------------------------------
# name resolution
# --------------------------------------------------------------------------------------------
class _Imports:
    """Local names bound by imports anywhere in a module -> the fully qualified names."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names

    @classmethod
    def of(cls, tree: ast.AST) -> "_Imports":
        names: dict[str, str] = {}
        for node in _statements(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        names[alias.asname] = alias.name
                    else:
                        top = alias.name.split(".")[0]
                        names[top] = top
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    if alias.name != "*":
                        names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        return cls(names)

    def qualify(self, node: ast.AST) -> str | None:
        """``np.random.rand`` -> ``numpy.random.rand`` when its base name is an import."""
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name) or node.id not in self.names:
            return None
        return ".".join([self.names[node.id], *reversed(parts)])


def _builtin(node: ast.AST, name: str, imports: _Imports) -> bool:
    return isinstance(node, ast.Name) and node.id == name and name not in imports.names


# --------------------------------------------------------------------------------------------
# the visitor
# --------------------------------------------------------------------------------------------
class _Visitor(ast.NodeVisitor):
    def __init__(self, path: str, imports: _Imports) -> None:
        self.path = path
        self.imports = imports
        self.found: list[tuple[Finding, tuple[int, int]]] = []
        self.parents: list[ast.AST] = []
        self.set_names: list[set[str] | None] = []
        self.scopes: list[ast.AST] = []

    # plumbing ---------------------------------------------------------------------------------
    def generic_visit(self, node: ast.AST) -> None:
        self.parents.append(node)
        super().generic_visit(node)
        self.parents.pop()

    def report(self, node: ast.AST, code: str, message: str) -> None:
        first = getattr(node, "lineno", 1)
        last = getattr(node, "end_lineno", None) or first
        self.found.append((Finding(self.path, first, getattr(node, "col_offset", 0), code, message), (first, last)))

    @property
    def parent(self) -> ast.AST | None:
        return self.parents[-1] if self.parents else None

    # scopes: names that only ever hold sets ----------------------------------------------------
    def visit_Module(self, node: ast.Module) -> None:
        self._scope(node)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        self._scope(node)

    visit_AsyncFunctionDef = visit_FunctionDef
    visit_Lambda = visit_FunctionDef

    def _scope(self, node: ast.AST) -> None:
        self.set_names.append(None)  # computed on first use: most scopes never ask
        self.scopes.append(node)
        self.generic_visit(node)
        self.scopes.pop()
        self.set_names.pop()

    def _names_holding_sets(self) -> set[str]:
        names = self.set_names[-1]
        if names is None:
            names = self.set_names[-1] = _set_names(self.scopes[-1], self.imports)
        return names

    def is_set(self, node: ast.AST) -> bool:
        if isinstance(node, (ast.Set, ast.SetComp)):
            return True
        if isinstance(node, ast.Call) and (_builtin(node.func, "set", self.imports)
                                           or _builtin(node.func, "frozenset", self.imports)):
            return True
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.BitOr, ast.BitAnd, ast.Sub, ast.BitXor)):
            return self.is_set(node.left) and self.is_set(node.right)
        return isinstance(node, ast.Name) and bool(self.scopes) and node.id in self._names_holding_sets()

    # TD101, TD201: calls and references --------------------------------------------------------
    def visit_Call(self, node: ast.Call) -> None:
        name = self.imports.qualify(node.func)
        if name is not None:
            self._call(node, name)
        self._builtins(node)
        self._consumer(node)
        self.generic_visit(node)

    def _call(self, node: ast.Call, name: str) -> None:
        if name in _CLOCK_WITHOUT_ARGS and not node.args and not node.keywords:
            self.report(node, "TD101", f"{name}() without a time reads the wall clock: format ctx.now_ms instead")
        elif name in _SEEDABLE and not _has_seed(node, _SEEDABLE[name]):
            self.report(node, "TD201", f"{name}() without a seed draws OS entropy: seed it from the run "
                        "(ctx.rng, or treasure.context.make_rng(seed, stream))")
        elif _is_listing(name) and not self._order_free(node):
            self.report(node, "TD501", f"{name}() lists in file-system order: wrap it in sorted(...)")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.ctx, ast.Load) and not isinstance(self.parent, ast.Attribute):
            self._reference(node)
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load) and node.id in self.imports.names:
            self._reference(node)

    def _reference(self, node: ast.AST) -> None:
        name = self.imports.qualify(node)
        if name is None:
            return
        if name in _WALL_CLOCK:
            self.report(node, "TD101", f"{name} reads the wall clock: use the sim clock (ctx.now_ms); a "
                        "duration may only go to a field marked x-treasure-volatile")
        elif name in _OS_RANDOM or name.startswith("secrets."):
            self.report(node, "TD201", f"{name} is OS randomness: derive ids and draws from the run seed")
        elif _global_random(name):
            self.report(node, "TD201", f"{name} uses the process-global random generator: use ctx.rng "
                        "(a numpy Generator seeded from the run)")

    # TD401, TD402, TD501 (method form) ---------------------------------------------------------
    def _builtins(self, node: ast.Call) -> None:
        func = node.func
        if _builtin(func, "hash", self.imports):
            self.report(node, "TD401", "hash() of str or bytes changes with PYTHONHASHSEED: use hashlib "
                        "(e.g. sha256) for anything that reaches output or ordering")
        for keyword in node.keywords:
            if keyword.arg == "key" and self._uses_id(keyword.value):
                self.report(keyword.value, "TD402", "ordering by id() follows memory addresses: sort by a "
                            "stable field instead")
        if isinstance(func, ast.Attribute) and func.attr in _LISTING_METHODS and \
                self.imports.qualify(func) is None and not self._order_free(node):
            self.report(node, "TD501", f".{func.attr}() lists in file-system order: wrap it in sorted(...)")

    def _uses_id(self, node: ast.AST) -> bool:
        return any(_builtin(sub, "id", self.imports) for sub in ast.walk(node))

    def _order_free(self, node: ast.AST, parents: list[ast.AST] | None = None) -> bool:
        """True when ``node`` is consumed where order cannot matter: ``sorted(node)``, or the
        iterable of a comprehension that is itself fed to such a consumer. ``parents`` are the
        node's ancestors (default: the visitor's current ones)."""
        child = node
        for parent in reversed(self.parents if parents is None else parents):
            if isinstance(parent, ast.comprehension) and parent.iter is child:
                child = parent
                continue
            if isinstance(parent, (ast.GeneratorExp, ast.ListComp, ast.SetComp)) and child in parent.generators:
                if isinstance(parent, ast.SetComp):
                    return True
                child = parent
                continue
            if isinstance(parent, ast.Call) and child in parent.args:
                return self._consumer_name(parent) in _ORDER_FREE
            if isinstance(parent, ast.Compare) and any(isinstance(op, (ast.In, ast.NotIn)) for op in parent.ops):
                return True
            if isinstance(parent, (ast.For, ast.AsyncFor)) and parent.iter is child and self.scopes:
                return _collected_then_sorted(parent, self.scopes[-1])
            return False
        return False

    def _consumer_name(self, call: ast.Call) -> str | None:
        func = call.func
        if isinstance(func, ast.Name) and func.id not in self.imports.names:
            return func.id
        return self.imports.qualify(func)

    # TD301: sets iterated into something ordered -----------------------------------------------
    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        if self.is_set(node.iter):
            self.report(node.iter, "TD301", "iterating a set: its order varies between processes "
                        "(PYTHONHASHSEED); iterate sorted(...) instead")
        self.generic_visit(node)

    visit_AsyncFor = visit_For

    def visit_comprehension(self, node: ast.comprehension) -> None:
        owner = self.parent
        if self.is_set(node.iter) and not isinstance(owner, ast.SetComp) and not (
                owner is not None and self._order_free(owner, self.parents[:-1])):
            self.report(node.iter, "TD301", "comprehension over a set: its order varies between processes "
                        "(PYTHONHASHSEED); iterate sorted(...) instead")
        self.generic_visit(node)

    def _consumer(self, node: ast.Call) -> None:
        name = self._consumer_name(node)
        if name in _ORDER_MAKING or (isinstance(node.func, ast.Attribute) and node.func.attr == "join"):
            for arg in node.args:
                if self.is_set(arg):
                    shown = name or "join"
                    self.report(arg, "TD301", f"{shown}() of a set fixes an order that varies between processes "
                                "(PYTHONHASHSEED): pass sorted(...) instead")
        if isinstance(node.func, ast.Attribute) and node.func.attr == "pop" and not node.args and \
                self.is_set(node.func.value):
            self.report(node, "TD301", "set.pop() removes an arbitrary member (hash order): pick one explicitly, "
                        "e.g. min(...)")


def _collected_then_sorted(loop: ast.For | ast.AsyncFor, scope: ast.AST) -> bool:
    """The loop only collects into lists (``x.append(...)``) that the function sorts afterwards
    (``sorted(x)`` or ``x.sort()``): the listing's order never shows."""
    collected = {node.func.value.id for node in ast.walk(loop)
                 if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                 and node.func.attr in ("append", "extend") and isinstance(node.func.value, ast.Name)}
    if not collected:
        return False
    inside = {id(node) for node in ast.walk(loop)}
    sorted_names: set[str] = set()
    for node in _own_nodes(scope):
        if id(node) in inside or not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id == "sorted" and node.args and isinstance(node.args[0], ast.Name):
            sorted_names.add(node.args[0].id)
        elif isinstance(func, ast.Attribute) and func.attr == "sort" and isinstance(func.value, ast.Name):
            sorted_names.add(func.value.id)
    return collected <= sorted_names


def _has_seed(call: ast.Call, keywords: tuple[str, ...]) -> bool:
    def given(value: ast.AST) -> bool:
        return not (isinstance(value, ast.Constant) and value.value is None)

    if call.args:
        return given(call.args[0])
    return any(k.arg in keywords and given(k.value) for k in call.keywords)


def _global_random(name: str) -> bool:
    if name.startswith("random.") and name.count(".") == 1:
        return name not in _SEEDABLE and name != "random.Random"
    if name.startswith("numpy.random.") and name.count(".") == 2:
        return name.rsplit(".", 1)[1] not in _NUMPY_RANDOM_OK
    return False


def _is_listing(name: str) -> bool:
    return name in _LISTINGS or (name.startswith("pathlib.") and name.rsplit(".", 1)[1] in _LISTING_METHODS)


def _set_names(scope: ast.AST, imports: _Imports) -> set[str]:
    """Names that every assignment in ``scope`` (not nested scopes) binds to a set expression."""
    verdict: dict[str, bool] = {}

    def is_set(node: ast.AST | None) -> bool:
        if isinstance(node, (ast.Set, ast.SetComp)):
            return True
        return isinstance(node, ast.Call) and (_builtin(node.func, "set", imports)
                                               or _builtin(node.func, "frozenset", imports))

    def note(target: ast.AST, value: bool) -> None:
        if isinstance(target, ast.Name):
            verdict[target.id] = verdict.get(target.id, True) and value
        elif isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                note(element, False)

    for node in _own_nodes(scope):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                note(target, is_set(node.value))
        elif isinstance(node, ast.AnnAssign):
            annotated = _annotation_is_set(node.annotation, imports)
            note(node.target, annotated or is_set(node.value))
        elif isinstance(node, ast.AugAssign) and not isinstance(node.op, (ast.BitOr, ast.BitAnd, ast.Sub,
                                                                           ast.BitXor)):
            note(node.target, False)
        elif isinstance(node, (ast.For, ast.AsyncFor, ast.With, ast.AsyncWith, ast.comprehension)):
            targets = [node.target] if not isinstance(node, (ast.With, ast.AsyncWith)) else \
                [item.optional_vars for item in node.items if item.optional_vars is not None]
            for target in targets:
                note(target, False)
        elif isinstance(node, ast.NamedExpr):
            note(node.target, is_set(node.value))
    if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        for arg in [*scope.args.posonlyargs, *scope.args.args, *scope.args.kwonlyargs]:
            annotated = arg.annotation is not None and _annotation_is_set(arg.annotation, imports)
            verdict[arg.arg] = verdict.get(arg.arg, True) and annotated
    return {name for name, only_sets in verdict.items() if only_sets}


def _annotation_is_set(node: ast.AST, imports: _Imports) -> bool:
    if isinstance(node, ast.Subscript):
        node = node.value
    if isinstance(node, ast.Name):
        return node.id in _SET_TYPES if node.id not in imports.names else imports.names[node.id] in _SET_TYPES
    qualified = imports.qualify(node)
    return qualified in _SET_TYPES if qualified else False


def _statements(tree: ast.AST) -> Iterator[ast.AST]:
    """Every statement of a module, nested ones included (imports can only be statements), without
    walking expressions."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        yield node
        for name in ("body", "orelse", "finalbody", "handlers", "cases"):
            block = getattr(node, name, None)
            if isinstance(block, list):
                stack.extend(block)


def _own_nodes(scope: ast.AST) -> Iterator[ast.AST]:
    """Nodes of ``scope`` without descending into nested functions, lambdas or classes."""
    stack = list(ast.iter_child_nodes(scope))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            stack.extend(ast.iter_child_nodes(node))
