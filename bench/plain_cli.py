"""``securepacs upload`` with the files' encryption taken out (bench/plain.py).

bench/upload.py runs it as a subprocess beside the real CLI, so that both pay the same
interpreter start-up, sign-in unlock and scan process: ``python bench/plain_cli.py --server URL
upload DIR``, with ``SECUREPACS_CONFIG_DIR`` and the password on standard input as for the CLI.
"""

from __future__ import annotations

import sys

from plain import without_file_encryption

from securepacs.client.cli import main

if __name__ == "__main__":
    with without_file_encryption():
        sys.exit(main(sys.argv[1:]))
