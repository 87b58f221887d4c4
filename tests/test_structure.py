"""The package's shape: no import cycle, light imports, one-way layering, no prints, CLI help everywhere."""

import argparse
import ast
import os
import subprocess
import sys

import pytest

import scatterxai

PKG_DIR = os.path.dirname(os.path.abspath(scatterxai.__file__))
ROOT = os.path.dirname(PKG_DIR)


def _modules():
    """Dotted module name → (path, is_package) for every module of the package."""
    mods = {}
    for dirpath, _, files in os.walk(PKG_DIR):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(dirpath, name)
                dotted = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                is_pkg = dotted.endswith(".__init__")
                mods[dotted[:-9] if is_pkg else dotted] = (path, is_pkg)
    return mods


def _imports(module: str, path: str, is_pkg: bool, mods, *, deferred: bool):
    """Package modules that ``module`` imports (at module level, or anywhere with ``deferred``)."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    nodes = ast.walk(tree) if deferred else tree.body
    out = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_pkg else module.split(".")[:-1]
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.add(sub if sub in mods else target)
        elif isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
    # importing a.b.c runs a/__init__ and a/b/__init__ first
    for dep in list(out):
        parts = dep.split(".")
        out.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return {d for d in out if d in mods and d != module and not module.startswith(d + ".")}


def _graph(deferred: bool):
    mods = _modules()
    return {m: _imports(m, p, is_pkg, mods, deferred=deferred) for m, (p, is_pkg) in mods.items()}


def _cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return found


@pytest.mark.parametrize("deferred", [False, True], ids=["module-level", "including-deferred"])
def test_no_import_cycle(deferred):
    graph = _graph(deferred)
    assert len(graph) > 40
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_layering():
    graph = _graph(deferred=True)
    for module, deps in graph.items():
        if module not in ("scatterxai.cli", "scatterxai.__main__"):
            assert "scatterxai.pipeline" not in deps, f"{module} imports the pipeline"
        if module.startswith(("scatterxai.maps", "scatterxai.viz", "scatterxai._util.validate",
                              "scatterxai.task", "scatterxai.errors")):
            assert not any(d.startswith(("scatterxai.explain", "scatterxai.model", "scatterxai.scattering.api",
                                         "scatterxai.scattering.kymatio", "scatterxai.scattering.fast"))
                           for d in deps), f"{module} depends on a torch stage: {sorted(deps)}"


def _torch_free(code: str):
    """Run ``code`` in a fresh interpreter and return whether torch (and kymatio) got imported."""
    probe = code + "\nimport sys\nprint('torch' in sys.modules, 'kymatio' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         cwd=ROOT)
    return res.stdout.split()[-2:]


@pytest.mark.parametrize("module", ["scatterxai", "scatterxai.maps", "scatterxai.viz.plots", "scatterxai.task",
                                    "scatterxai.errors", "scatterxai.data.meta", "scatterxai.scattering.config",
                                    "scatterxai.scattering.cache", "scatterxai.scattering.plan",
                                    "scatterxai.io.netcdf", "scatterxai.explain", "scatterxai.pipeline"])
def test_light_modules_do_not_import_torch(module):
    assert _torch_free(f"import {module}")[0] == "False"


@pytest.mark.parametrize("module", ["scatterxai.features", "scatterxai.explain", "scatterxai.cli"])
def test_dask_is_imported_only_with_dask(module):
    probe = (f"import {module}\nimport sys\n"
             f"print(any(m.split('.')[0] in ('dask', 'distributed') for m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    assert res.stdout.split()[-1] == "False"


def test_help_imports_neither_torch_nor_kymatio():
    assert _torch_free("from scatterxai.cli import build_parser\nbuild_parser().format_help()") == ["False",
                                                                                                  "False"]


def test_library_code_never_prints():
    offenders = []
    for module, (path, _) in _modules().items():
        if module == "scatterxai.cli":
            continue
        for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                offenders.append(f"{module}:{node.lineno}")
    assert offenders == []


def test_every_cli_option_has_help():
    from scatterxai.cli import build_parser

    def walk(parser, prefix):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from walk(sub, f"{prefix} {name}")
            elif not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
                yield f"{prefix} {'/'.join(action.option_strings) or action.dest}", action.help

    missing = [name for name, text in walk(build_parser(), "scatterxai") if not text]
    assert missing == []


def test_public_names_resolve_lazily():
    for name in scatterxai.__all__:
        assert getattr(scatterxai, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        scatterxai.nope  # noqa: B018


def _missing_hints(fn: ast.FunctionDef, where: str) -> list:
    """``where: args`` if ``fn`` lacks an annotation on an argument (but self/cls) or on its return."""
    args = fn.args
    bad = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs
           if a.annotation is None and a.arg not in ("self", "cls")]
    if args.vararg and args.vararg.annotation is None:
        bad.append("*" + args.vararg.arg)
    if args.kwarg and args.kwarg.annotation is None:
        bad.append("**" + args.kwarg.arg)
    if fn.returns is None and fn.name != "__init__":
        bad.append("->")
    return [f"{where}: {', '.join(bad)}"] if bad else []


def test_public_functions_have_type_hints():
    """Functions named in a module's ``__all__``, and the public methods (and ``__init__``) of classes named
    there, annotate every argument and the return."""
    missing, checked = [], 0
    for module, (path, _) in sorted(_modules().items()):
        tree = ast.parse(open(path, encoding="utf-8").read())
        public = set()
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__"
                                                    for t in node.targets):
                try:
                    public = set(ast.literal_eval(node.value))
                except ValueError:   # e.g. scatterxai/__init__: lazy re-exports, checked where defined
                    pass
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in public:
                checked += 1
                missing += _missing_hints(node, f"{module}:{node.lineno} {node.name}")
            elif isinstance(node, ast.ClassDef) and node.name in public:
                for sub in node.body:
                    if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)) and (
                            not sub.name.startswith("_") or sub.name == "__init__"):
                        checked += 1
                        missing += _missing_hints(sub, f"{module}:{sub.lineno} {node.name}.{sub.name}")
    assert checked > 300
    assert missing == []


#: longest function allowed in library code, counted by :func:`body_lines`
MAX_FUNCTION_LINES = 80


def body_lines(fn: ast.FunctionDef) -> int:
    """Lines of a function's body without its docstring: from the first statement after the docstring to
    the function's last line, blank lines, comments and nested functions included (a function that is only
    a docstring has 0)."""
    body = fn.body
    if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value,
                                                                                               str):
        body = body[1:]
    return 0 if not body else fn.end_lineno - body[0].lineno + 1


def _function_lengths(tree: ast.AST, prefix: str):
    """(qualified name, body lines) of every function and method, nested ones included."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield f"{prefix}.{node.name}", body_lines(node)
            yield from _function_lengths(node, f"{prefix}.{node.name}")
        elif isinstance(node, ast.ClassDef):
            yield from _function_lengths(node, f"{prefix}.{node.name}")
        else:
            yield from _function_lengths(node, prefix)


def test_the_line_counter():
    src = ('def f(x):\n    """Doc\n    string."""\n    y = x\n\n    # why\n    def g():\n        return y\n'
           '    return g\n\n\nclass A:\n    def m(self):\n        """Only a docstring."""\n')
    assert dict(_function_lengths(ast.parse(src), "mod")) == {"mod.f": 6, "mod.f.g": 1, "mod.A.m": 0}


def test_no_library_function_over_80_lines():
    lengths = {}
    for module, (path, _) in _modules().items():
        lengths.update(_function_lengths(ast.parse(open(path, encoding="utf-8").read()), module))
    assert len(lengths) > 500 and "scatterxai.explain.base.register" in lengths
    too_long = {name: n for name, n in lengths.items() if n > MAX_FUNCTION_LINES}
    assert too_long == {}
