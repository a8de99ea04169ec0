"""SecurePACS server: a blind store for ciphertext, wrapped keys and sessions (Litestar).

The only composition root is :func:`securepacs.server.app.create_app`. The server imports from
``securepacs.crypto`` only its keyless parsers (envelope shapes, signatures, KDF floors): it
never holds a key that opens anything.
"""
