"""The client core's API calls over fetch, run inside Pyodide against a live server.

:func:`run` takes ``{"server": url, "email": ..., "password": ..., "closed": url}`` as JSON:
it registers the account through ``AccountFlows`` over ``FetchTransport`` (Argon2id and the
key hierarchy in wasm, JSON over fetch), asks for its KDF parameters, sends a request the
server refuses, and one to a port where nothing listens. It answers what each step saw.
"""

from __future__ import annotations

import json

from securepacs.client.accounts import AccountFlows
from securepacs.client.api import ApiClient, ApiError
from securepacs.client.fetch_transport import FetchTransport
from securepacs.client.transport import TransportFailure

__all__ = ("run",)


async def run(argument: str) -> str:
    """Run the steps; JSON of what each returned or raised."""
    request = json.loads(argument)
    flows = AccountFlows(FetchTransport(request["server"]))
    await flows.register(request["email"], request["password"])
    kdf = await flows.api.prelogin(request["email"])
    try:
        await flows.api.confirm("not-a-token")
        refused = "accepted"
    except ApiError as error:
        refused = f"{error.status} {error.code}"
    try:
        await ApiClient(FetchTransport(request["closed"])).prelogin(request["email"])
        unreachable = "answered"
    except TransportFailure as error:
        unreachable = f"TransportFailure {error}"
    return json.dumps({"kdf": kdf, "refused": refused, "unreachable": unreachable})
