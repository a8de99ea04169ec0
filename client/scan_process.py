"""Scanning a folder in a child process, for the CLI on CPython.

Reading DICOM headers is pure Python: in the uploading process it competes for the
interpreter lock with sealing and sending, and the scan, which every study waits for, slows
to a crawl. A child process has a lock of its own. It is started, with the folder on its
standard input, before the account is unlocked: its imports and the first part of the scan
overlap with the password hashing. It reports each file as a length-prefixed msgpack frame on
its standard output, which a thread of the parent collects as it comes; the upload then replays
them to the same callbacks :func:`scan_folder` takes. The browser worker scans in-process and
does not use this module.

The child is ``python -m securepacs.client.scan_worker``; this side never imports pydicom.
"""

from __future__ import annotations

import contextlib
import os
import queue
import subprocess
import sys
import threading
from typing import IO, TYPE_CHECKING, Final

import msgspec

from securepacs.client.scanned import Instance, ScanProgress, ScanReport, StudyAttributes

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

__all__ = (
    "Done",
    "Failed",
    "Found",
    "Message",
    "Progress",
    "ScanFailed",
    "ScanProcess",
    "decode_frame",
    "encode_frame",
)

_LENGTH: Final = 4


class ScanFailed(Exception):
    """The child stopped before it finished the scan; the message says what to do."""


class Found(msgspec.Struct, tag="found", array_like=True):
    """A readable file (``on_instance``) and the counts after it (``on_progress``).

    One frame, not two: the scan reports both for every file it reads.
    """

    instance: Instance
    attributes: StudyAttributes
    progress: ScanProgress


class Progress(msgspec.Struct, tag="progress", array_like=True):
    """The counts after one more file (``on_progress``)."""

    progress: ScanProgress


class Done(msgspec.Struct, tag="done", array_like=True):
    """The whole report; the last frame of a scan."""

    report: ScanReport


class Failed(msgspec.Struct, tag="failed", array_like=True):
    """The folder could not be read; the last frame of a scan."""

    reason: str


Message = Found | Progress | Done | Failed
_ENCODER: Final = msgspec.msgpack.Encoder()
_DECODER: Final = msgspec.msgpack.Decoder(Message)


def encode_frame(message: Message) -> bytes:
    """One frame: the payload's length (4 bytes, big-endian), then the msgpack payload."""
    payload = _ENCODER.encode(message)
    return len(payload).to_bytes(_LENGTH, "big") + payload


def decode_frame(stream: IO[bytes]) -> Message | None:
    """The next frame of ``stream``; None at its end.

    Raises:
        ScanFailed: the stream ends inside a frame or the frame is not a message.
    """
    head = stream.read(_LENGTH)
    if not head:
        return None
    payload = stream.read(int.from_bytes(head, "big")) if len(head) == _LENGTH else b""
    try:
        message: Message = _DECODER.decode(payload)
    except msgspec.DecodeError:
        raise ScanFailed("The folder scan sent a damaged report.") from None
    return message


class ScanProcess:
    """A child process scanning one folder from the moment it starts; :meth:`scan` relays it."""

    def __init__(self, process: subprocess.Popen[bytes], folder: Path) -> None:
        self._process = process
        self.folder = folder
        self._frames: queue.SimpleQueue[Message | ScanFailed | None] = queue.SimpleQueue()
        stdin = process.stdin
        if stdin is not None:
            try:
                # Hex of the path's bytes: any name the file system allows, newlines included.
                stdin.write(os.fsencode(folder).hex().encode("ascii") + b"\n")
                stdin.close()
            except OSError:
                pass  # it died already; the reader sees its output end
        threading.Thread(target=self._collect, name="securepacs-scan", daemon=True).start()

    @classmethod
    def start(cls, folder: Path) -> ScanProcess | None:
        """Start scanning ``folder``; None where no child can be started (scan in-process)."""
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "securepacs.client.scan_worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
        except OSError:
            return None
        return cls(process, folder)

    def _collect(self) -> None:
        stdout = self._process.stdout
        if stdout is None:
            self._frames.put(None)
            return
        try:
            while (message := decode_frame(stdout)) is not None:
                self._frames.put(message)
        except ScanFailed as error:
            self._frames.put(error)
        except (OSError, ValueError):
            pass  # closed under us: the upload is over
        self._frames.put(None)

    def scan(
        self,
        folder: Path,
        on_progress: Callable[[ScanProgress], None] | None = None,
        *,
        on_instance: Callable[[Instance, StudyAttributes], None] | None = None,
    ) -> ScanReport:
        """What :func:`scan_folder` returns, and the same callbacks, from the child.

        Raises:
            ValueError: the child was started for another folder.
            ScanFailed: the child died or could not read the folder.
        """
        if folder != self.folder:
            raise ValueError("this scan process was started for another folder")
        while (message := self._frames.get()) is not None:
            match message:
                case ScanFailed():
                    raise message
                case Found(instance, attributes, progress):
                    if on_instance is not None:
                        on_instance(instance, attributes)
                    if on_progress is not None:
                        on_progress(progress)
                case Progress(progress):
                    if on_progress is not None:
                        on_progress(progress)
                case Done(report):
                    return report
                case Failed(reason):
                    raise ScanFailed(f"The folder could not be scanned: {reason}")
        status = self._process.wait()
        raise ScanFailed(
            f"The folder scan stopped unexpectedly (exit status {status}). Run the upload "
            "again; it resumes where it stopped."
        )

    def close(self) -> None:
        """Stop the child if it still runs (the upload failed or was interrupted)."""
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        for stream in (self._process.stdin, self._process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
