"""Imports point one way: symdiff never imports codegen internals or models; only
codegen/jit.py imports numba; models use only symdiff's public API; `import symdiff` stays
free of numba."""
import ast
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _imports(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            yield base
            for a in node.names:
                yield f"{base}.{a.name}" if node.module else base + a.name


def _files(pkg):
    return sorted((ROOT / pkg).glob("*.py"))


def test_symdiff_never_imports_codegen_internals_or_models():
    for f in _files("symdiff"):
        for name in _imports(f):
            assert not name.startswith(("numba", "llvmlite")), (f.name, name)
            assert not name.startswith("symdiff.models"), (f.name, name)
            if name.startswith("symdiff.codegen"):
                # the one allowed edge: compile() reaches the numba backend's public entry
                assert f.name == "function.py" and name in ("symdiff.codegen",
                                                            "symdiff.codegen.compile_spec"), name


def test_only_jit_imports_numba():
    for f in _files("codegen"):
        if f.name == "jit.py":
            continue
        for name in _imports(f):
            assert not name.startswith(("numba", "llvmlite")), (f.name, name)
            assert not name.startswith("symdiff.models"), (f.name, name)


def test_models_use_only_the_public_api():
    # symdiff.dask is public too, but not imported by `import symdiff` (the optional extra)
    allowed_symdiff = {"symdiff", "symdiff.models", "symdiff.dask"}
    for f in _files("models"):
        for name in _imports(f):
            assert not name.startswith(("numba", "llvmlite")), (f.name, name)
            if name.startswith("symdiff"):
                assert name in allowed_symdiff or name.startswith("symdiff.models"), (f.name, name)


def test_import_symdiff_does_not_import_numba():
    code = "import sys, symdiff; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
