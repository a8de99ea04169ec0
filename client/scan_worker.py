"""The CLI's scan process: ``python -m securepacs.client.scan_worker``.

Reads the folder (hex of its path's bytes) from standard input, scans it with
:func:`~securepacs.client.dicom.scan_folder` and writes every callback and the report as
frames (client/scan_process.py) to standard output.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from securepacs.client.dicom import scan_folder
from securepacs.client.scan_process import Done, Failed, Found, Message, Progress, encode_frame

if TYPE_CHECKING:
    from securepacs.client.scanned import Instance, ScanProgress, StudyAttributes

__all__ = ("main",)


def main() -> int:
    """Scan the folder named on standard input; 0 when the report was sent."""
    line = sys.stdin.buffer.readline().strip()
    if not line:
        return 0  # the parent went away before it had a folder for us
    folder = Path(os.fsdecode(bytes.fromhex(line.decode("ascii"))))
    out = sys.stdout.buffer

    def send(message: Message) -> None:
        out.write(encode_frame(message))
        out.flush()  # the parent starts sending a file as soon as it hears of it

    read: list[tuple[Instance, StudyAttributes]] = []

    def instance(found: Instance, attributes: StudyAttributes) -> None:
        read.append((found, attributes))

    def progress(counts: ScanProgress) -> None:
        # scan_folder reports a readable file, then the counts: both go in one frame.
        if read:
            found, attributes = read.pop()
            send(Found(found, attributes, counts))
        else:
            send(Progress(counts))

    try:
        report = scan_folder(folder, progress, on_instance=instance)
    except OSError as error:
        send(Failed(f"{error.strerror or error} ({error.filename or folder})"))
        return 1
    send(Done(report))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:
        # The parent stopped listening (the upload was interrupted); nothing left to flush.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
