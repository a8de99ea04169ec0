"""``securepacs upload`` with the files' encryption taken out (bench/plain.py).

bench/upload.py runs it as a subprocess beside the real CLI, so that both pay the same
interpreter start-up, sign-in unlock and scan process: ``python bench/plain_cli.py --server URL
upload DIR``, with ``SECUREPACS_CONFIG_DIR`` and the password on standard input as for the CLI.
"""

from __future__ import annotations

import sys

from securepacs.client.launch import start_early_scan


def main() -> int:
    """As client/launch.py: the scan process first, then the (patched) client."""
    argv = sys.argv[1:]
    early = start_early_scan(argv)
    try:
        from plain import without_file_encryption

        from securepacs.client.cli import main as cli_main

        with without_file_encryption():
            return cli_main(argv, early_scan=early)
    finally:
        if early is not None:
            early.close()


if __name__ == "__main__":
    sys.exit(main())
