"""A static check of a submission's source, in the trusted grader process: text only.

The hand-made ``conv2d`` is also watched while it runs (``probes/conv.py`` records every aten
op), but the worker is the student's own process: code there can switch that recording off,
or run the operator where the recording does not look (another thread, a custom operator).
This module reads the submission's modules as bytes and parses them with ``ast.parse``. It
never imports, execs or compiles them. It reports three kinds of ``Finding``:

* ``convolution``: a torch convolution operator reachable from a function (``F.conv2d``, an
  alias of it, ``nn.Conv2d``, ``torch.ops.aten.convolution``, a helper that calls one);
* ``tampering``: reaching into the interpreter or the dispatcher (``torch._C``, dispatch-mode
  internals, ``__code__``, frames, ``gc``, ``ctypes``, ``sys.modules``, ``exec``, a lookup by
  a computed name, threads and processes where no recorder watches, ...);
* ``unparsable``: a module the check could not read or parse (Python cannot import it
  either, or the sandbox does not stage it).

    scan = scan_submission(package_dir)               # once per grade (grader/plugin.py)
    scan.convolution_in("conv", "conv2d")             # in the conv2d grader
    scan.tampering_in(scan.import_closure("conv"))
    [str(f) for f in scan.all_findings()]             # results.json: extra_data.static_findings

It is a tripwire for the cheats a reader of the probe code would try, not a proof: the README
("How grading works") says what stays possible.
"""

from __future__ import annotations

import ast
import errno
import importlib.machinery
import os
import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

# What the sandbox stages (grader/sandbox/client.py, MAX_SOURCE_BYTES; a test keeps them equal):
# a larger module never runs, so it is not read either.
MAX_SOURCE_BYTES = 2 << 20
CONVOLUTION = "a torch convolution operator"

# Names of torch's convolution operators, as attributes (F.conv2d, torch.ops.aten.convolution),
# imported names or getattr strings: conv1d/2d/3d and their transposes, the aten ops and their
# backends, the nn modules. Never conv_output_size, and never the student's own bare names.
CONV_NAME = re.compile(r"""
    _?conv(?:[123]d|_transpose[123]d|_tbc|olution)\w*    # conv2d, convolution, conv2d_input
  | \w*_convolution\w*                                   # cudnn_convolution, mkldnn_...
  | _?slow_conv\w* | thnn_conv\w* | _?conv_depthwise[23]d\w* | _conv_forward
  | _ConvNd | _ConvTransposeNd | \w*Conv\w*[123]d        # nn.Conv2d, ConvTranspose2d, ...
""", re.VERBOSE)

# Dotted paths (a module, or a module's attribute) and why student code has no business there.
# An import, an attribute chain (through import aliases) or an import_module string matches
# when it is the path or starts with it.
_DISPATCH = "the dispatcher's internals, where the operator recording can be switched off"
_FRAMES = "frame introspection: it reaches the grader's own frames"
_OTHER_THREAD = "runs code in another thread or process, where no recorder watches"
_HIDDEN = "runs code hidden in data, which the check cannot read"
_LOOKUP = "an attribute looked up by a name the check cannot read"
_IMPORTS = "the import system's internals: loads code the check does not read"
TAMPERING_PATHS: dict[str, str] = {
    "torch._C": _DISPATCH,
    "torch.utils._python_dispatch": "the dispatch-mode internals that record the operators",
    "torch.utils._mode_utils": _DISPATCH,
    "torch._dispatch": _DISPATCH,
    "torch._ops": _DISPATCH,
    "torch.overrides": "the torch-function internals",
    "torch.library": "registers an operator whose insides no recorder sees",
    "torch.ops.load_library": "loads native code",
    "torch.utils.cpp_extension": "builds and loads native code",
    "torch.multiprocessing": _OTHER_THREAD,
    "ctypes": "raw memory access and C calls",
    "_ctypes": "raw memory access and C calls",
    "cffi": "raw memory access and C calls",
    "builtins": "the builtins module: a change there reaches every module",
    "grader": "the grading kit's own package",
    "marshal": _HIDDEN,
    "pickle": _HIDDEN,
    "_pickle": _HIDDEN,
    "dill": _HIDDEN,
    "cloudpickle": _HIDDEN,
    "shelve": _HIDDEN,
    "runpy": "runs a module or file the check does not read",
    "code": "compiles and runs text",
    "codeop": "compiles and runs text",
    "importlib.reload": "runs a module's code again",
    "codecs.register": "a text codec: it decides what another module's source says",
    "sys.modules": "the table of loaded modules, the grader's own included",
    "sys._getframe": _FRAMES,
    "sys._current_frames": _FRAMES,
    "sys.settrace": "a tracing hook runs code inside other functions",
    "sys.setprofile": "a tracing hook runs code inside other functions",
    "sys.monitoring": "a tracing hook runs code inside other functions",
    "threading.settrace": "a tracing hook runs code inside other functions",
    "threading.setprofile": "a tracing hook runs code inside other functions",
    "sys.meta_path": "the import system's hooks",
    "sys.path_hooks": "the import system's hooks",
    "sys.path_importer_cache": "the import system's hooks",
    "gc.get_objects": "reaches every live object, the grader's included",
    "gc.get_referrers": "reaches every live object, the grader's included",
    "gc.get_referents": "reaches every live object, the grader's included",
    "inspect.currentframe": _FRAMES,
    "inspect.stack": _FRAMES,
    "inspect.trace": _FRAMES,
    "inspect.getouterframes": _FRAMES,
    "inspect.getinnerframes": _FRAMES,
    "inspect.getmembers": _LOOKUP,
    "inspect.getmembers_static": _LOOKUP,
    "inspect.getattr_static": _LOOKUP,
    "traceback.walk_stack": _FRAMES,
    "traceback.walk_tb": _FRAMES,
    "types.CodeType": "builds a function from raw code",
    "types.FunctionType": "builds a function from raw code",
    "typing.get_type_hints": "evaluates annotation strings as code",
    "threading": _OTHER_THREAD,
    "_thread": _OTHER_THREAD,
    "concurrent": _OTHER_THREAD,
    "multiprocessing": _OTHER_THREAD,
    "subprocess": _OTHER_THREAD,
    "os.fork": _OTHER_THREAD,
    "os.forkpty": _OTHER_THREAD,
    "os.system": _OTHER_THREAD,
    "os.popen": _OTHER_THREAD,
    # the import system by other doors (found by tests/test_fabrication_attacks.py): a path
    # entry or zip the check never reads, the loaders' internals, name resolvers that import
    "sys.path": "the import path: code the check does not read (a staged zip, a folder)",
    "os.sys": "the sys module by another name",
    "importlib._bootstrap": _IMPORTS,
    "importlib._bootstrap_external": _IMPORTS,
    "importlib.machinery": _IMPORTS,
    "importlib.util": _IMPORTS,
    "zipimport": _IMPORTS,
    "pkgutil": "imports and resolves names the check cannot read",
    "pydoc": "imports and resolves names the check cannot read",
    "unittest.mock": "patches objects by a name the check cannot follow",
    "mock": "patches objects by a name the check cannot follow",
}
_OS_PROCESS = re.compile(r"os\.(?:exec|spawn|posix_spawn)\w*")
_PATH_PARTS = max(len(path.split(".")) for path in TAMPERING_PATHS)  # the longest path's

# Attribute names that give themselves away whatever object they are read from (the object may
# be an alias the check cannot follow). ``_C`` counts on anything but ``self`` (torch._C).
TAMPERING_ATTRIBUTES: dict[str, str] = {
    "_C": _DISPATCH,
    "__code__": "a function's code object: replacing it rewrites the grader's probes",
    "__globals__": "a function's module namespace: reaches the grader's modules",
    "__closure__": "a function's captured variables",
    "__builtins__": "the builtins namespace: a change there reaches every module",
    "__dict__": _LOOKUP,
    "__getattribute__": _LOOKUP,
    "__getattr__": _LOOKUP,
    "__subclasses__": "reaches every class, the grader's recorder included",
    "__import__": "an import by a name the check cannot read",
    **{name: _FRAMES for name in (
        "f_back", "f_globals", "f_locals", "f_code", "f_builtins", "tb_frame", "gi_frame",
        "cr_frame", "ag_frame", "_getframe", "_current_frames", "currentframe",
        "getouterframes", "getinnerframes", "walk_stack")},
    **{name: "a tracing hook runs code inside other functions" for name in (
        "settrace", "setprofile", "settrace_all_threads", "setprofile_all_threads")},
    **{name: "reaches every live object, the grader's included" for name in (
        "get_objects", "get_referrers", "get_referents")},
    **{name: _LOOKUP for name in ("getmembers", "getmembers_static", "getattr_static")},
    **{name: "loads code from a file the check does not read" for name in (
        "exec_module", "load_module", "spec_from_file_location", "spec_from_loader",
        "module_from_spec", "SourceFileLoader", "SourcelessFileLoader",
        "ExtensionFileLoader")},
    "load_library": "loads native code",
    "load_inline": "builds and loads native code",
    "custom_op": "registers an operator whose insides no recorder sees",
    "CodeType": "builds a function from raw code",
    "FunctionType": "builds a function from raw code",
    "get_type_hints": "evaluates annotation strings as code",
    "to_thread": _OTHER_THREAD,
    "run_in_executor": _OTHER_THREAD,
}
# Dispatch-mode names (TorchDispatchMode, _DisableTorchDispatch, _pop_mode, __torch_function__,
# no_dispatch ...), whatever object they are read from: no exercise has a use for them.
_DISPATCH_NAME = re.compile(r"""
    \w*(?:DispatchMode|dispatch_mode|TorchDispatch|torch_dispatch|python_dispatch
         |PythonDispatch|dispatch_stack|DispatchKey)\w*
  | \w*(?:TorchFunction|torch_function)\w*
  | _(?:pop|push|unset)_\w*mode\w* | _disable_current_modes | no_dispatch
""", re.VERBOSE)
# Builtins that run text as code or read a namespace by name. getattr, setattr and delattr
# count only without a literal attribute name (or when passed around as values).
_EVAL_BUILTINS: dict[str, str] = {
    "exec": "runs text as code", "eval": "runs text as code", "compile": "compiles text to code",
    "globals": "the module's namespace, written or read by name", "vars": _LOOKUP,
    "__import__": "an import by a name the check cannot read",
}
_LOOKUP_BUILTINS = ("getattr", "setattr", "delattr")
# Calls whose string argument is a name: import_module's a module path, the others an
# attribute. A literal is checked like source; anything else is a name the check cannot read.
_NAMED_CALLS = {"importlib.import_module": "import", "operator.attrgetter": "attribute",
                "operator.methodcaller": "attribute"}
# keyword arguments that make a load run pickled code, or evaluate annotation strings
_KEYWORDS: dict[tuple[str | None, bool], str] = {
    ("weights_only", False): _HIDDEN, ("allow_pickle", True): _HIDDEN,
    ("eval_str", True): "evaluates annotation strings as code"}


@dataclass(frozen=True, order=True)
class Finding:
    """One thing the static check saw; ``str()`` is a line for a person (and the feedback)."""

    module: str  # "conv" (the file conv.py of the submission)
    line: int  # 0: the whole module
    kind: str  # "convolution", "tampering", "unparsable" or "forbidden"
    what: str  # what was seen and why it matters; identifiers and fixed words only

    def __str__(self) -> str:
        name = self.module if self.module.isidentifier() else ascii(self.module)
        where = f", line {self.line}" if self.line > 0 else ""
        return f"{name}.py{where}: {self.what}"


# -- reading and parsing ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Unread:
    """Why a module has no tree: ``hides`` when code the check cannot read may still run in
    the worker (Python compiles deeper trees than ``ast`` builds; a codec registered in the
    worker decodes a coding the check does not know; an unreadable file may still be staged).
    A syntax error, a NUL byte, a symbolic link or an oversized file runs nothing: Python
    cannot import the first two, and the sandbox does not stage the others."""

    line: int
    why: str
    hides: bool = False


def read_source(path: Path) -> bytes | _Unread:
    """The module's bytes. Never follows a symbolic link, never blocks on a FIFO, never reads
    past the sandbox's size cap."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return _Unread(0, "a symbolic link: not read (the sandbox ignores it too)")
        return _Unread(0, f"could not be read ({errno.errorcode.get(exc.errno or 0, '?')})",
                       hides=True)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return _Unread(0, "not a regular file: not read (the sandbox ignores it too)")
        data = f.read(MAX_SOURCE_BYTES + 1)
    if len(data) > MAX_SOURCE_BYTES:
        return _Unread(0, f"larger than {MAX_SOURCE_BYTES >> 20} MiB: not read (the sandbox "
                       "ignores it too)")
    return data


def parse_source(data: bytes) -> ast.Module | _Unread:
    """The module's tree. Bytes, not text: ``ast.parse`` then decodes them as the import does
    (a ``# coding:`` line included), so the check reads the code that runs."""
    try:
        return ast.parse(data)
    except SyntaxError as exc:
        if "null byte" in str(exc.msg):
            return _Unread(0, "contains a NUL byte: Python cannot import it either")
        if "encoding" in str(exc.msg):  # a codec the worker may have (codecs.register)
            return _Unread(0, "declares a text encoding the check does not know", hides=True)
        return _Unread(exc.lineno or 0, "a syntax error: Python cannot import it either")
    except ValueError:  # a NUL byte, in Pythons that say it so
        return _Unread(0, "contains a NUL byte: Python cannot import it either")
    except (RecursionError, MemoryError):  # ast's own limits (200k nested operators)
        return _Unread(0, "nested too deeply to read", hides=True)


def compiled_module(filename: str) -> tuple[str, str] | None:
    """(module, suffix) of a compiled file (``helpers.pyc``,
    ``conv.cpython-311-x86_64-linux-gnu.so``): Python imports it from the submission folder,
    an extension even in place of the ``.py`` beside it, and the check cannot read it."""
    suffixes = sorted(importlib.machinery.EXTENSION_SUFFIXES
                      + importlib.machinery.BYTECODE_SUFFIXES, key=len, reverse=True)
    return next(((filename[:-len(s)], s) for s in suffixes if filename.endswith(s)
                 and len(filename) > len(s)), None)


# -- scopes: which function binds a name -----------------------------------------------------------
_SCOPE_NODES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef, ast.ListComp,
                ast.SetComp, ast.DictComp, ast.GeneratorExp)


def _runs_code(annotation: ast.expr | None) -> bool:
    """An annotation worth reading: one that calls something. A plain type (``nn.Conv2d``)
    never runs, and reading it would flag a harmless hint."""
    return annotation is not None and any(
        isinstance(n, (ast.Call, ast.Lambda)) for n in ast.walk(annotation))


def _children(node: ast.AST) -> list[ast.AST]:
    if isinstance(node, ast.arg):  # its annotation belongs to the enclosing scope (_parts)
        return []
    if isinstance(node, ast.AnnAssign):
        return [node.target, *([node.value] if node.value else []),
                *([node.annotation] if _runs_code(node.annotation) else [])]
    return list(ast.iter_child_nodes(node))


def _parts(node: ast.AST) -> tuple[list[ast.AST], list[ast.AST]]:
    """A scope node's (parts evaluated where it stands, parts evaluated in its own scope)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        a = node.args
        params = [*a.posonlyargs, *a.args, *([a.vararg] if a.vararg else []), *a.kwonlyargs,
                  *([a.kwarg] if a.kwarg else [])]
        notes = [p.annotation for p in params]
        outer: list[ast.AST] = [*a.defaults, *(d for d in a.kw_defaults if d is not None)]
        if isinstance(node, ast.Lambda):
            return outer, [*params, node.body]
        notes.append(node.returns)
        outer = [*node.decorator_list, *outer, *(n for n in notes if n and _runs_code(n))]
        return outer, [*params, *node.body]
    if isinstance(node, ast.ClassDef):
        return [*node.decorator_list, *node.bases, *node.keywords], list(node.body)
    assert isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp))
    first, *rest = node.generators
    values: list[ast.AST] = [node.key, node.value] if isinstance(node, ast.DictComp) \
        else [node.elt]
    inner = [*values, first.target, *first.ifs]
    for gen in rest:
        inner += [gen.target, gen.iter, *gen.ifs]
    return [first.iter], inner


@dataclass
class _Scope:
    kind: str  # "module", "function" or "class"
    parent: _Scope | None
    bound: set[str] = field(default_factory=set)
    globals_: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, node: ast.AST, parent: _Scope | None) -> _Scope:
        kind = "module" if parent is None else "class" if isinstance(node, ast.ClassDef) \
            else "function"
        roots = list(ast.iter_child_nodes(node)) if parent is None else _parts(node)[1]
        scope = cls(kind, parent)
        scope.bound, scope.globals_ = _bound_in(roots)
        return scope

    def module(self) -> _Scope:
        scope = self
        while scope.parent is not None:
            scope = scope.parent
        return scope

    def owner(self, name: str) -> _Scope:
        """The scope a name read here belongs to (the module's for globals and builtins)."""
        if name in self.globals_:
            return self.module()
        scope: _Scope | None = self
        while scope is not None and scope.parent is not None:
            if name in scope.bound and (scope is self or scope.kind != "class"):
                return scope
            scope = scope.parent
        return self.module()


def _bound_in(roots: Iterable[ast.AST]) -> tuple[set[str], set[str]]:
    """(names bound in this scope, names it declares global)."""
    bound: set[str] = set()
    declared: set[str] = set()
    stack = list(roots)
    while stack:
        n = stack.pop()
        if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load):
            bound.add(n.id)
        elif isinstance(n, ast.arg):
            bound.add(n.arg)
        elif isinstance(n, ast.alias) and n.name != "*":
            bound.add(n.asname or n.name.split(".")[0])
        elif isinstance(n, ast.Global):
            declared.update(n.names)
        elif isinstance(n, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and n.name:
            bound.add(n.name)
        elif isinstance(n, ast.MatchMapping) and n.rest:
            bound.add(n.rest)
        if isinstance(n, _SCOPE_NODES):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                bound.add(n.name)
            stack.extend(_parts(n)[0])
        else:
            stack.extend(_children(n))
    return bound - declared, declared


def _walk(root: ast.AST, scope: _Scope) -> Iterator[tuple[ast.AST, _Scope]]:
    """Every node under ``root`` with the scope it runs in, parents before children. Iterative:
    a deeply nested (but parsable) module cannot exhaust the grader's stack."""
    stack: list[tuple[ast.AST, _Scope]] = [(root, scope)]
    while stack:
        node, here = stack.pop()
        yield node, here
        if isinstance(node, _SCOPE_NODES):
            outer, inner = _parts(node)
            own = _Scope.of(node, here)
            stack += [(n, own) for n in reversed(inner)]
            stack += [(n, here) for n in reversed(outer)]
        else:
            stack += [(n, here) for n in reversed(_children(node))]


# -- names and paths -------------------------------------------------------------------------------
_LONGEST_CHAIN = 32  # every prefix of a longer chain is a node of its own, and is read
_MOST_ALIASES = 16  # paths one name may stand for (import aliases, x = a.b)


def _chain(node: ast.AST) -> list[str] | None:
    """``torch._C._X`` -> ``["torch", "_C", "_X"]``; None unless it is Names and attributes
    (and short: a 3000-long chain would cost the grader quadratic time)."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute) and len(parts) < _LONGEST_CHAIN:
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return [node.id, *reversed(parts)]


def _shown(node: ast.AST) -> str:
    """An attribute chain as written (identifiers only): ``F.conv2d``, ``(...).conv2d``."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    root = node.id if isinstance(node, ast.Name) and len(parts) <= 6 else "(...)"
    return ".".join([root, *reversed(parts[:6])])


def _literal(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _tampering_path(path: str) -> str | None:
    """``"torch._C._DisableTorchDispatch"`` -> ``"torch._C (the dispatcher's internals...)"``."""
    parts = path.split(".")
    for end in range(1, min(len(parts), _PATH_PARTS) + 1):
        prefix = ".".join(parts[:end])
        if prefix in TAMPERING_PATHS:
            return f"{prefix} ({TAMPERING_PATHS[prefix]})"
        if _OS_PROCESS.fullmatch(prefix):
            return f"{prefix} ({_OTHER_THREAD})"
    return None


def _tampering_name(name: str, on_self: bool = False) -> str | None:
    """An attribute or imported name that gives itself away, with why."""
    if name == "_C" and on_self:
        return None  # self._C: a student's own attribute (a channel count), not torch._C
    if name in TAMPERING_ATTRIBUTES:
        return f"{name} ({TAMPERING_ATTRIBUTES[name]})"
    if _DISPATCH_NAME.fullmatch(name):
        return f"{name} ({_DISPATCH})"
    return None


# -- one module ------------------------------------------------------------------------------------
@dataclass
class _Module:
    """One parsed module: its module-level bindings, import aliases and imports."""

    name: str
    package: str
    siblings: frozenset[str]  # the submission's module names
    tree: ast.Module
    scope: _Scope = field(init=False)
    assigned: set[str] = field(default_factory=set)  # names bound other than by an import
    bindings: dict[str, list[ast.AST]] = field(default_factory=dict)
    alias_of: dict[int, ast.Import | ast.ImportFrom] = field(default_factory=dict)
    aliases: dict[str, set[str]] = field(default_factory=dict)  # name -> dotted paths
    imports: set[str] = field(default_factory=set)  # submission modules it imports
    stars: set[str] = field(default_factory=set)  # submission modules it star-imports
    has_global: bool = False  # some function declares a name global
    foreign_stars: list[ast.ImportFrom] = field(default_factory=list)  # from torch import *
    crowded: set[str] = field(default_factory=set)  # names with more paths than it follows

    def __post_init__(self) -> None:
        self.scope = _Scope.of(self.tree, None)
        calls, pairs = self._index_tree()
        for call in calls:  # after every import: import_module may be an alias
            if self.named_call(call) == "import":
                self._imported(_literal(call.args[0]) or "")
        self._index_bindings(self.tree.body)
        self._index_assigned_aliases(pairs)

    # imports ----------------------------------------------------------------------------------
    def import_base(self, node: ast.ImportFrom) -> str | None:
        """The absolute module path of a ``from X import``; None beyond the package."""
        if node.level == 0:
            return node.module or ""
        if node.level > 1:
            return None
        return f"{self.package}.{node.module}" if node.module else self.package

    def own(self, path: str) -> str | None:
        """The submission module a package path names: ``exercises.blocks`` -> ``blocks``,
        ``exercises`` -> ``__init__``."""
        parts = path.split(".")
        if parts[0] != self.package:
            return None
        if len(parts) == 1:
            return "__init__" if "__init__" in self.siblings else None
        return parts[1] if parts[1] in self.siblings else None

    def is_module(self, path: str) -> bool:
        """Whether a path is one of the submission's modules itself (``exercises.helpers``),
        not a name inside one (``exercises.helpers.F``, which may be torch's)."""
        return len(path.split(".")) <= 2 and self.own(path) is not None

    def sibling(self, path: str) -> str | None:
        """``own``, or a bare ``blocks`` (``import blocks`` after a ``sys.path`` edit). A bare
        name may also be an installed module (a ``torch.py`` beside conv.py): it widens what
        is read, and never makes a name the student's own."""
        found = self.own(path)
        first = path.split(".")[0]
        return found if found is not None else (first if first in self.siblings else None)

    def _index_tree(self) -> tuple[list[ast.Call], list[tuple[str, list[str]]]]:
        """One pass over the tree (a 2 MiB module has 600k nodes): imports, names assigned
        anywhere, ``x = a.b`` aliases, and calls with a literal string first."""
        calls: list[ast.Call] = []
        pairs: list[tuple[str, list[str]]] = []
        for node in ast.walk(self.tree):
            self.assigned.update(_names_assigned(node))
            if isinstance(node, ast.Import):
                for a in node.names:
                    self.alias_of[id(a)] = node
                    bound = a.asname or a.name.split(".")[0]
                    self._alias_path(bound, a.name if a.asname else bound)
                    self._imported(a.name)
            elif isinstance(node, ast.ImportFrom):
                self._index_import_from(node)
            elif isinstance(node, ast.Call) and node.args and _literal(node.args[0]):
                calls.append(node)
            elif isinstance(node, ast.Assign) and (chain := _chain(node.value)) is not None:
                pairs += [(t.id, chain) for t in node.targets if isinstance(t, ast.Name)]
            elif isinstance(node, ast.Global):
                self.has_global = True
        return calls, pairs

    def _index_import_from(self, node: ast.ImportFrom) -> None:
        base = self.import_base(node)
        if base is None:
            return
        self._imported(base)
        for a in node.names:
            self.alias_of[id(a)] = node
            if a.name == "*":
                if (star := self.sibling(base)) is not None:
                    self.stars.add(star)
                else:
                    self.foreign_stars.append(node)
                continue
            self._alias_path(a.asname or a.name, f"{base}.{a.name}")
            self._imported(f"{base}.{a.name}")

    def _imported(self, path: str) -> None:
        if path and (found := self.sibling(path)) is not None and found != self.name:
            self.imports.add(found)
        if path.split(".")[0] == self.package and "__init__" in self.siblings \
                and self.name != "__init__":
            self.imports.add("__init__")  # importing the package runs its __init__.py

    def _index_assigned_aliases(self, pairs: list[tuple[str, list[str]]]) -> None:
        """``T = torch`` anywhere makes ``T._C`` read as ``torch._C`` (a few rounds: chains)."""
        for _ in range(3):
            for name, chain in pairs:
                for path in sorted(self.paths(chain)):
                    self._alias_path(name, path)

    def _alias_path(self, name: str, path: str) -> None:
        """One more path ``name`` may stand for. At most ``_MOST_ALIASES`` of them: a name
        rebound ``x = x.a``, ``x = x.b`` ... would otherwise double them with each line."""
        paths = self.aliases.setdefault(name, set())
        if path not in paths and len(paths) >= _MOST_ALIASES:
            self.crowded.add(name)
        elif len(path) <= 200:
            paths.add(path)

    def paths(self, chain: list[str]) -> set[str]:
        """The dotted paths an attribute chain may stand for: through import aliases, and as
        written unless its root is a variable (``code.strip()`` is no use of the module code)."""
        rest = "".join(f".{part}" for part in chain[1:])
        roots = set(self.aliases.get(chain[0], ()))
        if chain[0] not in self.assigned:
            roots.add(chain[0])
        return {f"{root}{rest}" for root in roots}

    def named_call(self, node: ast.Call) -> str | None:
        """"import" for importlib.import_module(...), "attribute" for operator.attrgetter and
        methodcaller, through aliases; None for anything else."""
        chain = _chain(node.func)
        if chain is None:
            return None
        return next((kind for path in self.paths(chain)
                     if (kind := _NAMED_CALLS.get(path)) is not None), None)

    # module-level bindings --------------------------------------------------------------------
    def _bind(self, names: Iterable[str], node: ast.AST) -> None:
        for name in names:
            self.bindings.setdefault(name, []).append(node)

    def _index_bindings(self, body: list[ast.stmt]) -> None:
        """What each module-level name may hold: the statements that bind or change it.
        Compound statements (if, try, for, with, match) are looked into (Python allows 100
        levels); functions are not, except where they declare a name global and assign it."""
        for stmt in body:
            self._index_statement(stmt)
            if isinstance(stmt, _SCOPE_NODES):
                continue
            for block in ("body", "orelse", "finalbody"):
                inner = getattr(stmt, block, None)
                if isinstance(inner, list):
                    self._index_bindings(inner)
            for sub in [*getattr(stmt, "handlers", []), *getattr(stmt, "cases", [])]:
                self._index_bindings(sub.body)

    def _index_statement(self, stmt: ast.stmt) -> None:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            self._bind([stmt.name], stmt)
            if self.has_global:
                self._bind(_assigned_globals(stmt), stmt)
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            for a in stmt.names:
                if a.name != "*":
                    self._bind([a.asname or a.name.split(".")[0]], a)
        elif isinstance(stmt, ast.Assign):
            for target in stmt.targets:
                self._index_assign(target, stmt.value, stmt)
        elif isinstance(stmt, (ast.AugAssign, ast.AnnAssign)):
            self._bind(_written_roots(stmt.target), stmt)
        elif isinstance(stmt, (ast.For, ast.AsyncFor)):
            self._bind(_written_roots(stmt.target), stmt.iter)
        elif isinstance(stmt, (ast.With, ast.AsyncWith)):
            for item in stmt.items:
                if item.optional_vars is not None:
                    self._bind(_written_roots(item.optional_vars), item.context_expr)
        elif isinstance(stmt, ast.Try):
            for handler in stmt.handlers:
                if handler.name and handler.type is not None:
                    self._bind([handler.name], handler.type)
        elif isinstance(stmt, ast.Match):
            self._bind(_bound_in([c.pattern for c in stmt.cases])[0], stmt.subject)
        elif isinstance(stmt, ast.Expr):
            self._bind(self._mutated_by(stmt.value), stmt)
        if not hasattr(stmt, "body"):  # a walrus in a simple statement binds at module level
            self._bind([n.target.id for n in ast.walk(stmt) if isinstance(n, ast.NamedExpr)
                        and isinstance(n.target, ast.Name)], stmt)

    def _index_assign(self, target: ast.expr, value: ast.expr, stmt: ast.stmt) -> None:
        """``a, b = F.pad, F.conv2d`` binds a to F.pad only; anything else binds every name
        written (and the variable behind ``x[k] = ...`` or ``x.attr = ...``) to the statement."""
        pairs = isinstance(target, (ast.Tuple, ast.List)) and \
            isinstance(value, (ast.Tuple, ast.List)) and len(target.elts) == len(value.elts) \
            and not any(isinstance(e, ast.Starred) for e in (*target.elts, *value.elts))
        if pairs:
            assert isinstance(target, (ast.Tuple, ast.List))
            assert isinstance(value, (ast.Tuple, ast.List))
            for t, v in zip(target.elts, value.elts, strict=True):
                self._bind(_written_roots(t), v)
            return
        self._bind(_written_roots(target), stmt)

    def _mutated_by(self, expr: ast.expr) -> list[str]:
        """The module-level variable a bare call at module level may change: ``table.append(f)``
        changes ``table``, ``setattr(obj, ..., f)`` changes ``obj``. Not an imported module
        (``F.conv2d(x, w)`` in a self-check changes nothing of ``F``)."""
        if not isinstance(expr, ast.Call):
            return []
        if isinstance(expr.func, ast.Name) and expr.func.id == "setattr" and expr.args:
            return _written_roots(expr.args[0])
        chain = _chain(expr.func)
        if chain is None or len(chain) < 2 or chain[0] in self.aliases:
            return []
        return [chain[0]]


def _written_roots(target: ast.AST) -> list[str]:
    """Names a target writes: ``x``, ``a, b``; the variable behind ``x.y[0]``."""
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [n for e in target.elts for n in _written_roots(e)]
    if isinstance(target, ast.Starred):
        return _written_roots(target.value)
    while isinstance(target, (ast.Attribute, ast.Subscript)):
        target = target.value
    return [target.id] if isinstance(target, ast.Name) else []


def _names_assigned(n: ast.AST) -> tuple[str, ...]:
    """The name a variable, parameter, def or class node takes (any scope): such a name is not
    taken for a module of the same name (a parameter called ``code``)."""
    if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load):
        return (n.id,)
    if isinstance(n, ast.arg):
        return (n.arg,)
    if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.ExceptHandler,
                      ast.MatchAs, ast.MatchStar)) and n.name:
        return (n.name,)
    return ()


def _assigned_globals(node: ast.AST) -> list[str]:
    """Names a function declares ``global`` and assigns: it rebinds them for the module."""
    declared = {name for n in ast.walk(node) if isinstance(n, ast.Global) for name in n.names}
    return sorted({n.id for n in ast.walk(node) if isinstance(n, ast.Name)
                   and not isinstance(n.ctx, ast.Load) and n.id in declared})


# -- tampering -------------------------------------------------------------------------------------
def _tampering(module: _Module) -> list[Finding]:
    """Every tampering pattern anywhere in the module (not only what a function reaches: code
    at import time runs in the worker too)."""
    found = [Finding(module.name, 0, "tampering", f"{name} stands for more than "
                     f"{_MOST_ALIASES} modules or attributes ({_LOOKUP})")
             for name in sorted(module.crowded)]
    vouched: set[int] = set()  # getattr(x, "literal"): the Name getattr itself is fine
    for node, scope in _walk(module.tree, module.scope):
        what = _tampering_at(node, scope, module, vouched)
        if what is not None:
            found.append(Finding(module.name, getattr(node, "lineno", 0), "tampering", what))
    return found


def _tampering_at(node: ast.AST, scope: _Scope, module: _Module,
                  vouched: set[int]) -> str | None:
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return _tampering_import(node, module)
    if isinstance(node, ast.Attribute):
        chain = _chain(node)
        hit = _first_path(module.paths(chain)) if chain is not None else None
        on_self = isinstance(node.value, ast.Name) and node.value.id == "self"
        return hit or _tampering_name(node.attr, on_self)
    if isinstance(node, ast.Name):
        return _tampering_builtin(node, scope, module, vouched)
    if isinstance(node, ast.Call):
        return _tampering_call(node, scope, module, vouched)
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and \
            _DISPATCH_NAME.fullmatch(node.name):
        return f"{node.name} ({_DISPATCH})"
    if isinstance(node, ast.MatchClass):  # case object(__code__=c): a lookup by pattern
        return next((w for a in node.kwd_attrs if (w := _tampering_name(a))), None)
    return None


def _first_path(paths: Iterable[str]) -> str | None:
    return next((w for p in sorted(paths) if (w := _tampering_path(p))), None)


def _tampering_import(node: ast.Import | ast.ImportFrom, module: _Module) -> str | None:
    if isinstance(node, ast.Import):
        return _first_path(a.name for a in node.names)
    base = module.import_base(node)
    if base is None or node.level > 0:  # the submission's own modules are read themselves
        return None
    names = [a.name for a in node.names if a.name != "*"]
    return _first_path([base, *(f"{base}.{n}" for n in names)]) or \
        next((w for n in names if (w := _tampering_name(n))), None)


def _is_builtin(name: str, scope: _Scope, module: _Module) -> bool:
    """A name read here that no def, assignment or import of the module binds."""
    return scope.owner(name).kind == "module" and name not in module.scope.bound


def _tampering_builtin(node: ast.Name, scope: _Scope, module: _Module,
                       vouched: set[int]) -> str | None:
    if node.id in ("__builtins__", "__import__"):
        return _tampering_name(node.id)
    if not isinstance(node.ctx, ast.Load) or not _is_builtin(node.id, scope, module):
        return None
    if node.id in _EVAL_BUILTINS:
        return f"{node.id} ({_EVAL_BUILTINS[node.id]})"
    if node.id in _LOOKUP_BUILTINS and id(node) not in vouched:
        return f"{node.id} without a literal attribute name ({_LOOKUP})"
    return None


def _tampering_call(node: ast.Call, scope: _Scope, module: _Module,
                    vouched: set[int]) -> str | None:
    for kw in node.keywords:
        value = kw.value.value if isinstance(kw.value, ast.Constant) else None
        if type(value) is bool and (kw.arg, value) in _KEYWORDS:
            return f"{kw.arg}={value} ({_KEYWORDS[(kw.arg, value)]})"
    func = node.func
    if isinstance(func, ast.Name) and func.id in _LOOKUP_BUILTINS and \
            _is_builtin(func.id, scope, module):
        name = _literal(node.args[1]) if len(node.args) >= 2 else None
        if name is None or any(isinstance(a, ast.Starred) for a in node.args[:2]):
            return None  # the Name getattr, visited next, says "without a literal name"
        vouched.add(id(func))
        chain = _chain(node.args[0])
        on_self = chain == ["self"]
        return (_first_path(module.paths([*chain, *name.split(".")])) if chain else None) or \
            next((w for part in name.split(".") if (w := _tampering_name(part, on_self))), None)
    kind = module.named_call(node)
    if kind is None:
        return None
    text = _literal(node.args[0] if node.args else None)
    if text is None:
        return f"{_shown(func)} with a computed name ({_LOOKUP})"
    if kind == "import":
        return _tampering_path(text)
    return next((w for part in text.split(".") if (w := _tampering_name(part))), None)


# -- convolution operators reachable from a function -----------------------------------------------
class _Reach:
    """Walks from a module-level name through what it reads: its own code, the module-level
    statements that bind the names it reads, the functions and classes it calls, across the
    submission's modules. A helper nobody calls from there is never read."""

    def __init__(self, modules: dict[str, _Module]) -> None:
        self.modules = modules
        self.todo: list[tuple[str, str | None]] = []  # (module, name); None: every binding
        self.seen: set[tuple[str, str | None]] = set()
        self.read: set[int] = set()
        self.found: list[Finding] = []

    def run(self, module: str, name: str) -> list[Finding]:
        self.todo.append((module, name))
        while self.todo:
            key = self.todo.pop()
            if key not in self.seen and key[0] in self.modules:
                self.seen.add(key)
                self._name(self.modules[key[0]], key[1])
        return self.found

    def _name(self, module: _Module, name: str | None) -> None:
        if name is None:  # a whole module, used as a value
            nodes = [n for bound in module.bindings.values() for n in bound]
        else:
            nodes = module.bindings.get(name, [])
            self.todo += [(star, name) for star in module.stars]  # from .helpers import *
            if "__getattr__" in module.bindings:  # a module's __getattr__ answers for names
                self.todo.append((module.name, "__getattr__"))
            if CONV_NAME.fullmatch(name) and module.foreign_stars:  # may bind it, or rebind it
                star = module.foreign_stars[0]
                self._add(module, star, f"{name}, which from {star.module} import * may bind")
        for node in nodes:
            if id(node) not in self.read:
                self.read.add(id(node))
                self._read(module, node)

    def _add(self, module: _Module, node: ast.AST, what: str) -> None:
        self.found.append(Finding(module.name, getattr(node, "lineno", 0), "convolution",
                                  f"{what} ({CONVOLUTION})"))

    def _read(self, module: _Module, root: ast.AST) -> None:
        if isinstance(root, ast.alias):
            self._alias(module, root)
            return
        followed: set[int] = set()  # helpers.f: read f in helpers.py, not all of helpers
        for node, scope in _walk(root, module.scope):
            what = _convolution_at(node, module)
            if what is not None:
                self._add(module, node, what)
            if isinstance(node, ast.Attribute):
                self._attribute(module, node, followed)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and \
                    id(node) not in followed and scope.owner(node.id).kind == "module":
                self._global(module, node)
            elif isinstance(node, (ast.Import, ast.ImportFrom)) and node is not root:
                for a in node.names:  # an import inside a function that is reached
                    self._alias(module, a)

    def _global(self, module: _Module, node: ast.Name) -> None:
        """A module-level name: read what binds it. A convolution-operator name that nothing
        in the submission binds comes from a star import (or a builtins edit)."""
        self.todo.append((module.name, node.id))
        if CONV_NAME.fullmatch(node.id) and node.id not in module.scope.bound and \
                not module.foreign_stars and not any(node.id in self.modules[s].bindings
                                                     for s in module.stars if s in self.modules):
            self._add(module, node, f"{node.id}, which no statement of the submission defines")

    def _attribute(self, module: _Module, node: ast.Attribute, followed: set[int]) -> None:
        """``helpers.f`` or ``exercises.helpers.f``: read f in helpers.py."""
        chain = _chain(node)
        if chain is None or len(chain) < 2:
            return
        for path in sorted(module.paths(chain)):
            parts = path.split(".")
            if len(parts) > 2 and module.own(".".join(parts[:2])) is not None:
                self.todo.append((parts[1], parts[2]))
                followed.add(id(_root(node)))
            elif parts[0] in module.siblings:
                self.todo.append((parts[0], parts[1]))

    def _alias(self, module: _Module, alias: ast.alias) -> None:
        stmt = module.alias_of.get(id(alias))
        if isinstance(stmt, ast.Import):
            if (target := module.sibling(alias.name)) is not None:
                self.todo.append((target, None))
            return
        base = module.import_base(stmt) if stmt is not None else None
        if stmt is None or base is None or alias.name == "*":
            return
        whole = module.own(f"{base}.{alias.name}") if base == module.package else None
        source = module.sibling(base)
        if whole is not None:  # from . import helpers: the module, used as a value
            self.todo.append((whole, None))
        elif source is not None:  # from .helpers import f: read f there
            self.todo.append((source, alias.name))
        if module.own(base) is None and CONV_NAME.fullmatch(alias.name):
            self._add(module, stmt, f"{alias.name} imported from {base}")


def _root(node: ast.AST) -> ast.AST:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node


def _convolution_at(node: ast.AST, module: _Module) -> str | None:
    """A convolution operator named at this node (the student's own names excepted)."""
    if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load) and \
            CONV_NAME.fullmatch(node.attr):
        chain = _chain(node)
        if chain is not None and any(module.is_module(p.rpartition(".")[0])
                                     for p in module.paths(chain)):
            return None  # exercises.conv.conv2d, helpers.conv2d: the student's own
        return _shown(node)
    if isinstance(node, ast.Call):
        is_getattr = isinstance(node.func, ast.Name) and node.func.id == "getattr"
        text = _literal(node.args[1]) if is_getattr and len(node.args) >= 2 else None
        if text is None and module.named_call(node) is not None and node.args:
            text = _literal(node.args[0])
        if text is not None and any(CONV_NAME.fullmatch(p) for p in text.split(".")):
            shown = "".join(c for c in text[:60] if c.isalnum() or c in "._")
            return f"{'getattr' if is_getattr else _shown(node.func)}(..., '{shown}')"
    if isinstance(node, ast.MatchClass):
        return next((f"case (...)({a}=...)" for a in node.kwd_attrs if CONV_NAME.fullmatch(a)),
                    None)
    return None


# -- the scan --------------------------------------------------------------------------------------
class Scan:
    """The static check of one submission: parsed once, asked by the graders.

    ``all_findings()`` holds every module's tampering and unparsable findings, and the
    convolution findings of the functions graders asked about (``F.conv2d`` in blocks.py is
    no finding: only conv2d must be built by hand). A plain class, not a dataclass: its
    default repr is one the plugin leaves out of hypothesis's failing-case notes.
    """

    def __init__(self, package: str = "exercises") -> None:
        self.package = package
        self.modules: dict[str, _Module] = {}
        self.problems: dict[str, list[Finding]] = {}  # unparsable, compiled
        self.hiding: set[str] = set()  # modules whose problem may hide code that runs
        self.tampering: dict[str, list[Finding]] = {}
        self.asked: dict[tuple[str, str], list[Finding]] = {}

    def convolution_in(self, module: str, function: str) -> list[Finding]:
        """Convolution operators reachable from ``module.function``, by line."""
        key = (module, function)
        if key not in self.asked:
            self.asked[key] = sorted(set(_Reach(self.modules).run(module, function)))
        return list(self.asked[key])

    def tampering_in(self, modules: Iterable[str]) -> list[Finding]:
        """Tampering in these modules, and what the check could not read there that may run."""
        found: list[Finding] = []
        for name in modules:
            found += self.tampering.get(name, [])
            if name in self.hiding:
                found += self.problems.get(name, [])
        return found

    def import_closure(self, module: str) -> list[str]:
        """``module`` and the submission modules that run with it: those it imports, their
        imports, and ``__init__`` (the package's own code runs before any of its modules)."""
        order = [module]
        if "__init__" in self.modules or "__init__" in self.problems:
            order.append("__init__")
        for name in order:  # grows while it is read
            parsed = self.modules.get(name)
            order += [m for m in sorted(parsed.imports if parsed else ()) if m not in order]
        return order

    def hand_made(self, module: str, function: str) -> list[Finding]:
        """What stops ``function`` counting as built by hand: a convolution operator it
        reaches, or tampering (or code the check cannot read) in what runs with it. The
        module's own findings first, by line."""
        found = set(self.convolution_in(module, function)
                    + self.tampering_in(self.import_closure(module)))
        return sorted(found, key=lambda f: (f.module != module, f.module, f.line, f.what))

    def uses(self, modules: Iterable[str], prefix: str, why: str) -> list[Finding]:
        """Where these modules import or name the dotted path ``prefix`` (``torchvision.models``)
        or anything under it, through any import alias; each a finding of kind "forbidden"
        (``why``: the words after the name), listed with the other findings once asked."""
        key = (",".join(modules), prefix)
        if key in self.asked:
            return list(self.asked[key])
        found: set[Finding] = set()
        for name in modules:
            module = self.modules.get(name)
            if module is None:
                continue
            for node in ast.walk(module.tree):
                paths: set[str] = set()
                if isinstance(node, ast.Import):
                    paths = {alias.name for alias in node.names}
                elif isinstance(node, ast.ImportFrom):
                    base = module.import_base(node)
                    paths = {f"{base}.{a.name}" for a in node.names} if base is not None else set()
                elif isinstance(node, ast.Attribute) and (chain := _chain(node)):
                    paths = module.paths(chain)
                elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                        and len(node.value) <= 200:  # import_module("torchvision.models...")
                    paths = {node.value.replace(":", ".")}
                elif isinstance(node, ast.Call) and len(node.args) >= 2 \
                        and (chain := _chain(node.func)) and chain[-1] == "getattr" \
                        and (root := _chain(node.args[0])) \
                        and (attr := _literal(node.args[1])) is not None:
                    paths = {f"{path}.{attr}" for path in module.paths(root)}
                hit = next((p for p in sorted(paths)
                            if p == prefix or p.startswith(prefix + ".")), None)
                if hit is not None:
                    shown = hit if len(hit) <= 80 else hit[:77] + "..."
                    found.add(Finding(name, getattr(node, "lineno", 0), "forbidden",
                                      f"{shown} ({why})"))
        self.asked[key] = sorted(found)
        return list(self.asked[key])

    def all_findings(self) -> list[Finding]:
        found = {f for fs in (*self.problems.values(), *self.tampering.values(),
                              *self.asked.values()) for f in fs}
        return sorted(found, key=lambda f: (f.module, f.line, f.kind, f.what))


def scan_submission(folder: str | Path, package: str = "exercises") -> Scan:
    """Read and parse every top-level ``*.py`` of the submission folder, and note every file
    Python would import that is not source. Never raises for anything a submission can do:
    each problem is a finding of its module."""
    scan = Scan(package)
    try:
        names = sorted(e.name for e in os.scandir(folder))
    except OSError:
        return scan
    trees: dict[str, ast.Module] = {}
    for filename in names:
        if (compiled := compiled_module(filename)) is not None:
            name, suffix = compiled
            scan.problems.setdefault(name, []).append(Finding(
                name, 0, "tampering", f"compiled code ({suffix}), which Python imports from the "
                "submission folder and the check cannot read"))
            scan.hiding.add(name)
        elif filename.endswith(".py") and len(filename) > 3:
            read = read_source(Path(folder) / filename)
            tree = parse_source(read) if isinstance(read, bytes) else read
            if isinstance(tree, ast.Module):
                trees[filename[:-3]] = tree
            else:
                _problem(scan, filename[:-3], tree)
    siblings = frozenset(trees) | frozenset(scan.problems)
    for name, tree in trees.items():
        try:
            module = _Module(name, package, siblings, tree)
            scan.tampering[name] = sorted(set(_tampering(module)))
        except (RecursionError, MemoryError):  # a tree ast built but too deep to index here
            _problem(scan, name, _Unread(0, "nested too deeply to read", hides=True))
            continue
        scan.modules[name] = module
    return scan


def _problem(scan: Scan, name: str, unread: _Unread) -> None:
    scan.problems.setdefault(name, []).append(Finding(name, unread.line, "unparsable",
                                                      unread.why))
    if unread.hides:
        scan.hiding.add(name)
