"""The ``securepacs`` console script: starts an upload's scan before the client is imported.

Importing the client (httpx, the crypto) takes a few tenths of a second on one core while the
other sits idle. For ``securepacs upload FOLDER``, the scan process (client/scan_process.py) is
started first, so it imports pydicom and reads headers meanwhile, and on through the password
hashing. The folder is read from the command line by a simple rule; the CLI checks the guess
against what argparse parsed and starts a scan of its own when they differ.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Sequence

    from securepacs.client.scan_process import ScanProcess

__all__ = ("main", "start_early_scan", "upload_folder")

# Options that take a value, before the command and after ``upload``.
_VALUED: Final = frozenset({"--server", "--message", "--sender-email", "--jobs"})


def upload_folder(argv: Sequence[str]) -> Path | None:
    """The folder of an ``upload`` command line, if it names an existing one."""
    positional: list[str] = []
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word in _VALUED:
            skip = True
        elif word == "--":
            return None  # rare enough to leave to argparse
        elif not word.startswith("-"):
            positional.append(word)
    if len(positional) != 2 or positional[0] != "upload":
        return None
    folder = Path(positional[1])
    return folder if folder.is_dir() else None


def start_early_scan(argv: Sequence[str]) -> ScanProcess | None:
    """The scan process of an ``upload`` command line, started now; None for other commands."""
    folder = upload_folder(argv)
    if folder is None:
        return None
    # Imported here, not above: for every other command this module must stay this light.
    from securepacs.client.scan_process import ScanProcess

    return ScanProcess.start(folder)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``securepacs`` console script."""
    argv = sys.argv[1:] if argv is None else argv
    early = start_early_scan(argv)
    try:
        from securepacs.client.cli import main as cli_main

        return cli_main(argv, early_scan=early)
    finally:
        if early is not None:
            early.close()


if __name__ == "__main__":
    sys.exit(main())
