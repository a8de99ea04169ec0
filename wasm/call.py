"""The entry the browser worker and the Node harness call inside Pyodide.

Shipped as ``dist/call.py``; both hosts run it once after boot and then call
``securepacs_call`` with the folder the request's files were written to. An ``async`` function
is run on Pyodide's event loop (the browser's): the hosts await what the call returns.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import sys
from typing import Any


def _string(result: object, name: str) -> str:
    if not isinstance(result, str):
        raise TypeError(f"{name} returned {type(result).__name__}, not str")
    return result


async def _awaited(pending: Any, name: str) -> str:
    return _string(await pending, name)


def securepacs_call(root: str, module: str, function: str, argument: str) -> Any:
    """Import ``module`` from ``root`` and call ``module.function(argument)``.

    Returns its string, or for a coroutine function a future of its string.
    """
    if root not in sys.path:
        sys.path.insert(0, root)
    importlib.invalidate_caches()
    name = f"{module}.{function}"
    result = getattr(importlib.import_module(module), function)(argument)
    if inspect.isawaitable(result):
        return asyncio.ensure_future(_awaited(result, name))
    return _string(result, name)
