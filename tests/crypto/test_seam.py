"""The seams of ``securepacs.crypto``, checked on its source: backends, the test hook, labels.

Everything here reads ``crypto/`` as syntax trees, so it holds whatever the import state of the
process: PyNaCl appears in exactly one module, the Pyodide modules in exactly one other, the
insecure KDF hook nowhere but where it is defined, and every derivation label is unique, well
formed and used.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Final

import pytest

from securepacs.crypto import _labels

CRYPTO_DIR: Final = Path(__file__).resolve().parents[2] / "crypto"
NACL_BACKEND: Final = CRYPTO_DIR / "_backend" / "nacl.py"
SODIUMJS_BACKEND: Final = CRYPTO_DIR / "_backend" / "sodiumjs.py"
KDF_MODULE: Final = CRYPTO_DIR / "kdf.py"
LABELS_MODULE: Final = CRYPTO_DIR / "_labels.py"

NACL_MODULES: Final = frozenset({"nacl"})
PYODIDE_MODULES: Final = frozenset({"js", "pyodide", "_securepacs_sodium"})
TEST_HOOK: Final = "insecure_kdf_floor_for_tests"
LABEL_FORM: Final = re.compile(r"securepacs/v1/[a-z0-9]+(?:-[a-z0-9]+)*")


def _sources() -> list[Path]:
    return sorted(CRYPTO_DIR.rglob("*.py"))


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _imported_roots(tree: ast.Module) -> set[str]:
    """Top-level names of every absolute import, including ``importlib``/``__import__`` calls."""
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module is not None:
                roots.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in {"import_module", "__import__"} and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    roots.add(first.value.split(".")[0])
    return roots


def _referenced_names(tree: ast.Module) -> set[str]:
    """Every identifier, attribute, imported name and string constant in a module."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.alias):
            names.add(node.name.split(".")[-1])
            if node.asname:
                names.add(node.asname)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", node.value))
    return names


def _label_assignments() -> dict[str, str]:
    """``NAME -> value`` for every module-level string constant of crypto/_labels.py."""
    labels: dict[str, str] = {}
    for node in _tree(LABELS_MODULE).body:
        target: ast.expr | None = None
        value: ast.expr | None = None
        if isinstance(node, ast.AnnAssign):
            target, value = node.target, node.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        if (
            isinstance(target, ast.Name)
            and isinstance(value, ast.Constant)
            and isinstance(value.value, str)
        ):
            labels[target.id] = value.value
    return labels


def _label_uses(path: Path) -> set[str]:
    """Label constants a module uses: ``_labels.NAME`` or ``from ..._labels import NAME``."""
    used: set[str] = set()
    for node in ast.walk(_tree(path)):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "_labels"
        ):
            used.add(node.attr)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").endswith("_labels"):
            used.update(alias.name for alias in node.names)
    return used


def test_seam_scanner_finds_the_crypto_sources() -> None:
    sources = _sources()
    assert NACL_BACKEND in sources
    assert SODIUMJS_BACKEND in sources
    assert KDF_MODULE in sources
    assert len(sources) >= 15


def test_seam_scanner_sees_imports_inside_functions_and_dynamic_imports() -> None:
    tree = ast.parse(
        "def f():\n"
        "    import nacl.bindings\n"
        "    from js import Uint8Array\n"
        "    importlib.import_module('pyodide.ffi')\n"
        "    __import__('_securepacs_sodium')\n"
        "from . import sibling\n"
    )
    assert _imported_roots(tree) == {"nacl", "js", "pyodide", "_securepacs_sodium"}


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(CRYPTO_DIR)))
def test_seam_only_the_nacl_backend_imports_pynacl(path: Path) -> None:
    imports_nacl = bool(_imported_roots(_tree(path)) & NACL_MODULES)
    assert imports_nacl == (path == NACL_BACKEND)


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(CRYPTO_DIR)))
def test_seam_only_the_sodiumjs_backend_imports_pyodide(path: Path) -> None:
    roots = _imported_roots(_tree(path))
    if path == SODIUMJS_BACKEND:
        assert roots >= PYODIDE_MODULES
    else:
        assert not roots & PYODIDE_MODULES


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(CRYPTO_DIR)))
def test_seam_insecure_kdf_hook_is_referenced_only_where_defined(path: Path) -> None:
    referenced = TEST_HOOK in _referenced_names(_tree(path))
    assert referenced == (path == KDF_MODULE)


def test_seam_insecure_kdf_hook_is_a_function_of_kdf() -> None:
    definitions = [
        node.name
        for node in ast.walk(_tree(KDF_MODULE))
        if isinstance(node, ast.FunctionDef) and node.name == TEST_HOOK
    ]
    assert definitions == [TEST_HOOK]


def test_labels_source_and_module_agree() -> None:
    assigned = _label_assignments()
    runtime = {
        name: value
        for name, value in vars(_labels).items()
        if name.isupper() and isinstance(value, str)
    }
    assert assigned == runtime
    assert len(assigned) >= 20


def test_labels_are_unique() -> None:
    values = list(_label_assignments().values())
    duplicates = sorted({v for v in values if values.count(v) > 1})
    assert duplicates == []


@pytest.mark.parametrize("name", sorted(_label_assignments()))
def test_labels_have_the_v1_form(name: str) -> None:
    value = _label_assignments()[name]
    assert LABEL_FORM.fullmatch(value), value
    # The derivation prefix is one length byte: every label must fit in it.
    assert len(value.encode("ascii")) < 256


def test_labels_are_each_used_in_crypto() -> None:
    used: set[str] = set()
    for path in _sources():
        if path != LABELS_MODULE:
            used |= _label_uses(path)
    unused = sorted(set(_label_assignments()) - used)
    assert unused == []
    # Nothing refers to a label that does not exist.
    assert used <= set(_label_assignments())
