"""The entry the browser worker and the Node harness call inside Pyodide.

Shipped as ``dist/call.py``; both hosts run it once after boot and then call
``securepacs_call`` with the folder the request's files were written to.
"""

from __future__ import annotations

import importlib
import sys


def securepacs_call(root: str, module: str, function: str, argument: str) -> str:
    """Import ``module`` from ``root`` and return ``module.function(argument)``, a string."""
    if root not in sys.path:
        sys.path.insert(0, root)
    importlib.invalidate_caches()
    result = getattr(importlib.import_module(module), function)(argument)
    if not isinstance(result, str):
        raise TypeError(f"{module}.{function} returned {type(result).__name__}, not str")
    return result
