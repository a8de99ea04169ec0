"""Crypto benchmark: our chunked format vs the raw libsodium primitive, CPython vs Pyodide.

Run with ``just bench`` (or ``python bench/crypto.py [--megabytes N]``). The measured code is
bench/crypto_kernel.py, run once natively and once inside Pyodide under Node 20, side by side.
Printed ratios:

- framing: our STREAM format's MB/s divided by the raw ChaCha20-Poly1305 primitive's MB/s on
  the same runtime, same chunk size (the cost of nonces, header AD and last-chunk logic);
- pyodide/cpython: the Pyodide figure divided by the CPython figure for the same column.

Figures are best-of-N wall-clock times: run on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests" / "pyodide"))

import crypto_kernel  # noqa: E402 -- a plain file so Pyodide can load it the same way
import pyodide_host  # noqa: E402

COLUMNS = (
    ("raw_encrypt_mbps", "raw primitive encrypt"),
    ("ours_encrypt_mbps", "SecurePACS stream seal"),
    ("raw_decrypt_mbps", "raw primitive decrypt"),
    ("ours_decrypt_mbps", "SecurePACS stream open"),
    ("ours_encrypt_unaligned_mbps", "stream seal, 1 MiB reads"),
    ("ours_decrypt_unaligned_mbps", "stream open, 1 MiB reads"),
)


def measure(megabytes: int, repeat: int, argon2_runs: int) -> tuple[dict[str, Any], ...]:
    argument = json.dumps({"megabytes": megabytes, "repeat": repeat, "argon2_runs": argon2_runs})
    native = json.loads(crypto_kernel.run(argument))
    files = {"crypto_kernel.py": (HERE / "crypto_kernel.py").read_text(encoding="utf-8")}
    wasm = json.loads(pyodide_host.run_in_pyodide_node(files, "crypto_kernel", "run", argument))
    return native, wasm


def table(native: dict[str, Any], wasm: dict[str, Any]) -> str:
    lines = [
        f"{'':28} {'CPython':>10} {'Pyodide':>10} {'pyodide/cpython':>16}",
        f"{'backend':28} {native['backend']:>10} {wasm['backend']:>10}",
    ]
    for key, label in COLUMNS:
        lines.append(
            f"{label + ' MB/s':28} {native[key]:10.0f} {wasm[key]:10.0f} "
            f"{wasm[key] / native[key]:16.2f}"
        )
    for direction in ("encrypt", "decrypt"):
        ours, raw = f"ours_{direction}_mbps", f"raw_{direction}_mbps"
        lines.append(
            f"{'framing ratio ' + direction:28} {native[ours] / native[raw]:10.2f} "
            f"{wasm[ours] / wasm[raw]:10.2f}"
        )
    lines.append(
        f"{'Argon2id 64 MiB t=3 (s)':28} {native['argon2id_seconds']:10.3f} "
        f"{wasm['argon2id_seconds']:10.3f} "
        f"{wasm['argon2id_seconds'] / native['argon2id_seconds']:16.2f}"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--argon2-runs", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print raw figures as JSON")
    args = parser.parse_args()
    native, wasm = measure(args.megabytes, args.repeat, args.argon2_runs)
    if args.json:
        print(json.dumps({"cpython": native, "pyodide_node": wasm}, indent=2))
    print(table(native, wasm))


if __name__ == "__main__":
    main()
