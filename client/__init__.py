"""SecurePACS client core: account flows over a transport, shared by the CLI and the browser.

Everything secret stays here: keys are derived, unlocked and re-wrapped on the client with
``securepacs.crypto``; the server only ever receives envelopes, public keys and the
authentication key. The transport is an interface (httpx on CPython; fetch in the browser
worker later), so the same flows run in both places.
"""
