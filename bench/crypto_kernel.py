"""The measured part of bench/crypto.py: stdlib plus securepacs.crypto, so it runs in Pyodide.

``run(argument)`` takes JSON ``{"megabytes": n, "repeat": r, "argon2_runs": k}`` and returns
JSON with MB/s for the raw AEAD primitive and for our chunked format (seal and open), and the
seconds of one Argon2id derivation at the v1 default parameters. Each figure is the best of
``repeat`` runs, which is the usual way to remove scheduler noise from a throughput figure.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from securepacs.crypto import StreamOpener, StreamSealer, StudyKey, derive_password_keys
from securepacs.crypto._backend import get_backend
from securepacs.crypto.kdf import new_kdf_params
from securepacs.crypto.stream import CHUNK_LOG2_DEFAULT, HEADER_BYTES, TAG_BYTES

if TYPE_CHECKING:
    from collections.abc import Callable

CHUNK = 1 << CHUNK_LOG2_DEFAULT
PIECE = 1 << 20


def _best(fn: Callable[[], None], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _measure(megabytes: int, repeat: int) -> dict[str, float]:
    backend = get_backend()
    key = bytes(range(32))
    plaintext = bytes(megabytes * (1 << 20))
    chunks = [plaintext[n : n + CHUNK] for n in range(0, len(plaintext), CHUNK)]
    study_key = StudyKey(key)
    file_id = bytes(16)
    sealer = StreamSealer(study_key, file_id)
    sealed = b"".join(sealer.seal(chunks))
    sealed_chunk = CHUNK + TAG_BYTES
    # The client reads files and response bodies in chunk-sized blocks, so these are the
    # pieces the pipelines hand over; the 1 MiB variants show the cost of unaligned reads.
    aligned = {
        "plain": chunks,
        "sealed": [
            sealed[n : n + sealed_chunk] for n in range(HEADER_BYTES, len(sealed), sealed_chunk)
        ],
    }
    unaligned = {
        "plain": [plaintext[n : n + PIECE] for n in range(0, len(plaintext), PIECE)],
        "sealed": [sealed[n : n + PIECE] for n in range(HEADER_BYTES, len(sealed), PIECE)],
    }
    raw_sealed = [
        backend.aead_chacha20poly1305_ietf_encrypt(c, b"", i.to_bytes(12, "big"), key)
        for i, c in enumerate(chunks)
    ]

    def raw_encrypt() -> None:
        encrypt = backend.aead_chacha20poly1305_ietf_encrypt
        for i, c in enumerate(chunks):
            encrypt(c, b"", i.to_bytes(12, "big"), key)

    def raw_decrypt() -> None:
        decrypt = backend.aead_chacha20poly1305_ietf_decrypt
        for i, c in enumerate(raw_sealed):
            decrypt(c, b"", i.to_bytes(12, "big"), key)

    def ours_encrypt(pieces: list[bytes]) -> Callable[[], None]:
        def work() -> None:
            for _ in StreamSealer(study_key, file_id).seal(pieces):
                pass

        return work

    def ours_decrypt(pieces: list[bytes]) -> Callable[[], None]:
        def work() -> None:
            for _ in StreamOpener(study_key, file_id, sealed[:HEADER_BYTES]).open(pieces):
                pass

        return work

    size = float(len(plaintext)) / 1e6
    return {
        name: size / _best(fn, repeat)
        for name, fn in (
            ("raw_encrypt_mbps", raw_encrypt),
            ("raw_decrypt_mbps", raw_decrypt),
            ("ours_encrypt_mbps", ours_encrypt(aligned["plain"])),
            ("ours_decrypt_mbps", ours_decrypt(aligned["sealed"])),
            ("ours_encrypt_unaligned_mbps", ours_encrypt(unaligned["plain"])),
            ("ours_decrypt_unaligned_mbps", ours_decrypt(unaligned["sealed"])),
        )
    }


def _argon2(runs: int) -> float:
    params = new_kdf_params()

    def derive() -> None:
        derive_password_keys("benchmark password", params)

    return _best(derive, runs)


def run(argument: str) -> str:
    """JSON in, JSON out, so the same call works on CPython and through the Pyodide hosts."""
    args: dict[str, Any] = json.loads(argument)
    result: dict[str, Any] = {"backend": get_backend().name}
    result.update(_measure(int(args["megabytes"]), int(args["repeat"])))
    result["argon2id_seconds"] = _argon2(int(args["argon2_runs"]))
    return json.dumps(result)
