"""Upload benchmark: our encrypted CLI upload against a plain upload and against Orthanc.

Run from the repository root: ``.venv/bin/python bench/upload.py [--quick] [--skip-orthanc]
[--skip-memory]``. On the same files (a synthetic 400-slice 512x512 16-bit CT plus pydicom's
test files) it measures, one after the other:

- *encrypted*: the real ``securepacs upload DIR`` CLI as a subprocess against a real
  ``securepacs serve`` subprocess (SQLite and the local blob store in a temporary folder); the
  wall time includes the CLI's start-up and its Argon2id unlock, as a user sees it; peak RSS is
  the sum of the CLI's and its scan process's own peaks (``VmHWM``; see ``_TreeMemory``);
- *encrypted pipeline*: the CLI's ``Uploader`` in process, scanning in a child process as the
  CLI does, for a fresh account (no interpreter start-up, no unlock);
- *plain pipeline*: the same ``Uploader`` with the files' encryption taken out (each file goes
  up as it is, with its SHA-256); scanning, study keys, metadata boxes, signed manifests,
  batching, requests and commits are unchanged, so encrypted/plain is what encrypting the bytes
  costs;
- *plain blobs*: the same files' raw bytes put as blobs on the same server, in process, with
  the same 4 requests in flight and small files batched; no DICOM parsing and no study, so this
  is the transfer and storage cost alone;
- *Orthanc*: ``POST /instances`` with 1 and with 4 clients, a fresh Orthanc for each.

Every row runs once per round, best of ``ROUNDS``.

Then a memory run: a 2 GiB multi-frame study (``make_large_study``) uploaded with the CLI, to
check that the CLI's peak RSS stays bounded (bar: under 300 MB).

Bars (issue 4): encrypted/plain at least 0.8; encrypted/Orthanc single client at least 1.0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pydicom
import synthetic
from accounts import _outbox_tokens, running_server
from orthanc import Orthanc, OrthancError
from plain import without_file_encryption
from pydicom.data import get_testdata_files
from pydicom.errors import InvalidDicomError

from securepacs.client.accounts import AccountFlows
from securepacs.client.dicom import scan_folder
from securepacs.client.httpx_transport import HttpxTransport
from securepacs.client.scan_process import ScanProcess
from securepacs.client.upload import (
    BATCH_ITEM_BYTES,
    BATCH_ITEMS,
    PART_BYTES,
    Uploader,
    UploadOptions,
)
from securepacs.crypto import new_file_id

if TYPE_CHECKING:
    from collections.abc import Sequence

    from accounts import Server

    from securepacs.client.api import ApiClient, StatsView

EMAIL: Final = "bench-upload@example.org"
# A throwaway account on a throwaway server; the CLI reads it from standard input.
PASSWORD: Final = "correct horse battery staple upload bench"  # noqa: S105
JOBS: Final = 4
ROUNDS: Final = 3
SLICES: Final = 400
QUICK_SLICES: Final = 40
LARGE_BYTES: Final = 2 * 1024**3
QUICK_LARGE_BYTES: Final = 200 * 1024**2
PLAIN_RATIO_BAR: Final = 0.8
ORTHANC_RATIO_BAR: Final = 1.0
RSS_BAR_MB: Final = 300.0
PLAIN_CLI: Final = Path(__file__).resolve().with_name("plain_cli.py")


@dataclass(frozen=True)
class Run:
    """One upload of the data set and what it cost."""

    label: str
    instances: int
    bytes: int
    seconds: float
    peak_rss_mb: float | None = None

    @property
    def per_second(self) -> float:
        return self.instances / self.seconds if self.seconds > 0 else 0.0

    @property
    def mb_per_second(self) -> float:
        return self.bytes / 1e6 / self.seconds if self.seconds > 0 else 0.0


# -- the data set -----------------------------------------------------------------------------


def _pydicom_files(folder: Path, seen: set[str]) -> None:
    """Copy pydicom's test files that parse and have their own UIDs into ``folder``.

    Files sharing a SOP Instance UID with one already taken are left out: both servers store an
    instance once, so a duplicate would count as uploaded without being sent.
    """
    folder.mkdir(parents=True)
    # Many test files are deliberately odd; pydicom's warnings about them are noise here.
    warnings.simplefilter("ignore", UserWarning)
    for index, name in enumerate(sorted(get_testdata_files())):
        path = Path(name)
        if not path.is_file():
            continue
        try:
            dataset = pydicom.dcmread(path, stop_before_pixels=True)
        except (InvalidDicomError, OSError, ValueError, TypeError, AttributeError, KeyError):
            continue
        uids = [
            str(dataset.get(k, "") or "")
            for k in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")
        ]
        if not all(uids) or uids[0] in seen:
            continue
        seen.add(uids[0])
        shutil.copyfile(path, folder / f"{index:04d}-{path.name}")


def _keep_scanned(folder: Path) -> None:
    """Remove what our scanner would skip, so that every uploader gets the same files."""
    report = scan_folder(folder)
    kept = {
        Path(instance.path).resolve()
        for study in report.studies.values()
        for members in study.series.values()
        for instance in members
        if not instance.derived_uids
    }
    for path in folder.rglob("*"):
        if path.is_file() and path.resolve() not in kept:
            path.unlink()


def _keep_orthanc_accepts(folder: Path) -> None:
    """Remove the pydicom test files Orthanc refuses (one fresh Orthanc, a file at a time)."""
    with Orthanc() as server:
        for path in sorted(folder.iterdir()):
            try:
                server.upload([path])
            except OrthancError:
                path.unlink()


def build_dataset(folder: Path, *, slices: int, check_orthanc: bool) -> list[Path]:
    ct = synthetic.make_ct_series(folder / "ct", slices=slices)
    seen = {str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID) for path in ct}
    extra = folder / "pydicom"
    _pydicom_files(extra, seen)
    _keep_scanned(extra)
    if check_orthanc:
        _keep_orthanc_accepts(extra)
    return sorted(path for path in folder.rglob("*") if path.is_file())


# -- the CLI ------------------------------------------------------------------------------------


def _cli_command() -> list[str]:
    script = Path(sys.executable).with_name("securepacs")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "securepacs.client.launch"]


@dataclass(frozen=True)
class Measured:
    seconds: float
    peak_rss_mb: float
    output: str


def _tree_peaks_kb(pid: int) -> dict[int, int]:
    """Peak resident memory (VmHWM, Linux /proc) of ``pid`` and of each of its descendants."""
    peaks: dict[int, int] = {}
    todo = [pid]
    while todo:
        current = todo.pop()
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks[current] = int(line.split()[1])
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
            todo += [int(child) for child in children]
    return peaks


class _TreeMemory:
    """The peak memory of a process tree: each process's own peak, summed.

    Not ``wait4``'s ``ru_maxrss``: Linux carries the peak of the memory a child was forked
    from across ``exec``, so a CLI started by this (large) benchmark process would be charged
    with the benchmark's own memory. ``VmHWM`` starts afresh at ``exec``. Each process's peak
    is read every 20 ms (it only grows, so at most the last 20 ms of a process are missed), and
    the peaks are added as if they had coincided, which can only overstate the total.
    """

    def __init__(self, pid: int) -> None:
        self._peaks: dict[int, int] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, args=(pid,), daemon=True)
        self._thread.start()

    def _sample(self, pid: int) -> None:
        while not self._done.wait(0.02):
            for process, peak in _tree_peaks_kb(pid).items():
                self._peaks[process] = max(self._peaks.get(process, 0), peak)

    def stop(self) -> float:
        """Stop sampling; the summed peaks in MB."""
        self._done.set()
        self._thread.join()
        return sum(self._peaks.values()) / 1024


def run_cli(
    server: Server, config: Path, *args: str, stdin: str = "", plain: bool = False
) -> Measured:
    """Run one CLI command to completion, with the peak memory of the CLI and its scan process.

    ``plain`` runs bench/plain_cli.py instead: the same CLI without the files' encryption.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECUREPACS_")}
    env["SECUREPACS_CONFIG_DIR"] = str(config)
    log = config.parent / "cli.log"
    program = [sys.executable, str(PLAIN_CLI)] if plain else _cli_command()
    command = [*program, "--server", server.base_url, *args]
    with log.open("wb") as output:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, env=env, stdin=subprocess.PIPE, stdout=output, stderr=subprocess.STDOUT
        )
        memory = _TreeMemory(process.pid)
        if process.stdin is not None:
            process.stdin.write(stdin.encode())
            process.stdin.close()
        status = process.wait()
        seconds = time.perf_counter() - started
        peak_mb = memory.stop()
    text = log.read_text(errors="replace")
    if status != 0:
        raise RuntimeError(f"securepacs {args[0]} exited with {status}:\n{text}")
    return Measured(seconds, peak_mb, text)


def sign_up(server: Server, config: Path, email: str = EMAIL) -> None:
    """Register, confirm and sign in with the CLI, as a new user would."""
    run_cli(server, config, "register", email, stdin=PASSWORD + "\n")
    token = _outbox_tokens(server.data_dir / "outbox")[email]
    # The mailed link, as a person pastes it (a bare token may start with "-").
    run_cli(server, config, "confirm", f"{server.base_url}/confirm#{token}")
    run_cli(server, config, "login", email, stdin=PASSWORD + "\n")


def encrypted_upload(
    server: Server, config: Path, folder: Path, label: str, *, plain: bool = False
) -> Run:
    paths = [path for path in folder.rglob("*") if path.is_file()]
    measured = run_cli(
        server, config, "upload", str(folder), "--jobs", str(JOBS), stdin=PASSWORD, plain=plain
    )
    return Run(
        label=label,
        instances=len(paths),
        bytes=sum(path.stat().st_size for path in paths),
        seconds=measured.seconds,
        peak_rss_mb=measured.peak_rss_mb,
    )


# -- plain blobs, in process --------------------------------------------------------------------


async def _put_file(
    api: ApiClient, path: Path, gate: asyncio.Semaphore, blob_id: str | None = None
) -> int:
    size = path.stat().st_size
    blob_id = blob_id or new_file_id().hex()
    if size <= PART_BYTES:
        async with gate:
            data = await asyncio.to_thread(path.read_bytes)
            await api.put_blob(blob_id, data)
        return size
    status = await api.create_blob(blob_id, size)
    with path.open("rb") as handle:
        for number in range(status.parts):
            async with gate:
                data = await asyncio.to_thread(handle.read, status.part_size)
                await api.put_part(blob_id, number, data)
    await api.complete_blob(blob_id)
    return size


async def _put_batch(api: ApiClient, batch: Sequence[Path], gate: asyncio.Semaphore) -> int:
    async with gate:
        blobs = [(new_file_id().hex(), await asyncio.to_thread(path.read_bytes)) for path in batch]
        await api.put_blobs([(i, hashlib.sha256(data).digest(), data) for i, data in blobs])
    return sum(len(data) for _, data in blobs)


def _plain_batches(paths: Sequence[Path]) -> tuple[list[list[Path]], list[Path]]:
    """The same grouping as the encrypted client: small files many to a request."""
    batches: list[list[Path]] = []
    alone: list[Path] = []
    members: list[Path] = []
    size = 0
    for path in paths:
        length = path.stat().st_size
        if length > BATCH_ITEM_BYTES:
            alone.append(path)
            continue
        if members and (size + length > PART_BYTES or len(members) == BATCH_ITEMS):
            batches.append(members)
            members, size = [], 0
        members.append(path)
        size += length
    if members:
        batches.append(members)
    return batches, alone


async def plain_upload(server: Server, paths: Sequence[Path]) -> Run:
    async with HttpxTransport(server.base_url, timeout=300) as transport:
        flows = AccountFlows(transport)
        await flows.login(EMAIL, PASSWORD)
        gate = asyncio.Semaphore(JOBS)
        batches, alone = _plain_batches(paths)
        started = time.perf_counter()
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(_put_batch(flows.api, b, gate)) for b in batches]
            tasks += [group.create_task(_put_file(flows.api, path, gate)) for path in alone]
        seconds = time.perf_counter() - started
    sent = sum(task.result() for task in tasks)
    return Run("plain blobs (ours, no crypto)", len(paths), sent, seconds)


# -- the client pipeline in process, with and without encryption ------------------------------


async def _stats(server: Server) -> StatsView:
    async with HttpxTransport(server.base_url, timeout=300) as transport:
        flows = AccountFlows(transport)
        await flows.login(EMAIL, PASSWORD)
        return await flows.api.stats()


async def encrypted_pipeline(server: Server, folder: Path, email: str) -> Run:
    """The Uploader as the CLI runs it (scan in a child process), in process, for a fresh
    account: no interpreter start-up, no unlock."""
    async with HttpxTransport(server.base_url, timeout=300) as transport:
        flows = AccountFlows(transport)
        await flows.register(email, PASSWORD)
        token = _outbox_tokens(server.data_dir / "outbox")[email]
        await flows.confirm(token)
        unlocked = await flows.login(email, PASSWORD)
        started = time.perf_counter()
        scan_process = ScanProcess.start(folder)
        if scan_process is None:
            raise RuntimeError("the scan process could not be started")
        try:
            uploader = Uploader(flows.api, unlocked.keys, scanner=scan_process.scan)
            result = await uploader.upload_folder(folder, UploadOptions(jobs=JOBS))
        finally:
            scan_process.close()
        seconds = time.perf_counter() - started
    progress = result.progress
    return Run(
        "encrypted pipeline (in process)",
        progress.files_uploaded,
        progress.bytes_uploaded,
        seconds,
    )


async def plain_pipeline(server: Server, folder: Path, email: str) -> Run:
    """The same Uploader on the same files with the files' encryption taken out.

    Files go up as they are (with their SHA-256, as the server asks of every blob); everything
    else the encrypted pipeline does is done, so the ratio is what encrypting the bytes costs.
    """
    with without_file_encryption():
        run = await encrypted_pipeline(server, folder, email)
    return Run("plain pipeline (no file encryption)", run.instances, run.bytes, run.seconds)


# -- Orthanc ------------------------------------------------------------------------------------


def orthanc_upload(paths: Sequence[Path], clients: int) -> Run:
    with Orthanc() as server:
        result = server.upload(paths, clients=clients)
    if result.already_stored:
        print(f"warning: Orthanc already had {result.already_stored} of the instances")
    return Run(
        f"Orthanc POST /instances x{clients}", result.instances, result.bytes, result.seconds
    )


# -- report -------------------------------------------------------------------------------------


def table(runs: Sequence[Run]) -> str:
    lines = [f"{'':34} {'files':>6} {'MB':>8} {'s':>7} {'inst/s':>8} {'MB/s':>7} {'RSS MB':>7}"]
    for run in runs:
        rss = f"{run.peak_rss_mb:7.0f}" if run.peak_rss_mb is not None else f"{'':7}"
        lines.append(
            f"{run.label:34} {run.instances:6d} {run.bytes / 1e6:8.1f} {run.seconds:7.2f} "
            f"{run.per_second:8.1f} {run.mb_per_second:7.1f} {rss}"
        )
    return "\n".join(lines)


def ratio_line(name: str, top: Run, bottom: Run, bar: float | None) -> str:
    ratio = top.mb_per_second / bottom.mb_per_second if bottom.mb_per_second else 0.0
    verdict = (
        "" if bar is None else (f"  (bar >= {bar}: " + ("met)" if ratio >= bar else "MISSED)"))
    )
    return f"{name:40} {ratio:6.2f}{verdict}"


async def bench(args: argparse.Namespace, scratch: Path) -> None:
    slices = QUICK_SLICES if args.quick else SLICES
    data = scratch / "data"
    started = time.perf_counter()
    paths = await asyncio.to_thread(
        build_dataset, data, slices=slices, check_orthanc=not args.skip_orthanc
    )
    size = sum(path.stat().st_size for path in paths)
    print(
        f"data set: {len(paths)} files, {size / 1e6:.1f} MB ({slices} CT slices + "
        f"{len(paths) - slices} pydicom test files), made in {time.perf_counter() - started:.1f} s"
    )
    runs: list[Run] = []
    memory: Run | None = None
    server_dir = scratch / "server"
    (server_dir / "data").mkdir(parents=True)
    database_url = f"sqlite+aiosqlite:///{server_dir / 'securepacs.db'}"
    config = scratch / "cli" / "config"
    config.mkdir(parents=True)
    async with running_server(database_url, server_dir / "data") as server:
        best: dict[str, Run] = {}

        async def settle() -> None:
            # Each row starts with nothing left to write back: the rows before it wrote about a
            # gigabyte, and a server that syncs (Orthanc's SQLite does) would wait for it.
            await asyncio.to_thread(os.sync)

        def keep(run: Run) -> None:
            if run.label not in best or run.seconds < best[run.label].seconds:
                best[run.label] = run

        # Best of ROUNDS for every row, each encrypted round on a fresh account (the first run
        # on a new server pays for cold caches, whichever row it is), every row in each round.
        for round_ in range(ROUNDS):
            config_round = config if round_ == 0 else scratch / "cli" / f"config{round_}"
            config_round.mkdir(parents=True, exist_ok=True)
            email = EMAIL if round_ == 0 else f"bench-upload-{round_}@example.org"
            await asyncio.to_thread(sign_up, server, config_round, email)
            await settle()
            keep(
                await asyncio.to_thread(
                    encrypted_upload, server, config_round, data, "encrypted CLI upload (ours)"
                )
            )
            if round_ == 0:
                stats = await _stats(server)
                if stats.files != len(paths):
                    raise RuntimeError(f"the CLI stored {stats.files} files, not {len(paths)}")
            plain_config = scratch / "cli" / f"plain{round_}"
            plain_config.mkdir(parents=True)
            await asyncio.to_thread(
                sign_up, server, plain_config, f"bench-plain-cli-{round_}@example.org"
            )
            await settle()
            keep(
                await asyncio.to_thread(
                    functools.partial(
                        encrypted_upload,
                        server,
                        plain_config,
                        data,
                        "plain CLI upload (no file encryption)",
                        plain=True,
                    )
                )
            )
            await settle()
            keep(await encrypted_pipeline(server, data, f"bench-pipeline-{round_}@example.org"))
            await settle()
            keep(await plain_pipeline(server, data, f"bench-plain-{round_}@example.org"))
            await settle()
            keep(await plain_upload(server, paths))
            # Orthanc in the same round, so that a slow spell of the machine hits every row.
            if not args.skip_orthanc:
                for clients in (1, 4):
                    await settle()
                    keep(await asyncio.to_thread(orthanc_upload, paths, clients))
        runs.extend(best.values())
        if not args.skip_memory:
            large = scratch / "large"
            total = QUICK_LARGE_BYTES if args.quick else LARGE_BYTES
            started = time.perf_counter()
            await asyncio.to_thread(synthetic.make_large_study, large, total_bytes=total)
            print(
                f"large study: {total / 2**20:.0f} MiB made in "
                f"{time.perf_counter() - started:.1f} s"
            )
            await settle()
            try:
                memory = await asyncio.to_thread(
                    encrypted_upload, server, config, large, f"CLI, {total / 2**30:.2f} GiB study"
                )
            finally:
                shutil.rmtree(large, ignore_errors=True)
    print()
    print(table(runs))
    print()
    cli, plain_cli, encrypted, plain, blobs = runs[:5]
    print("ratios (MB/s over MB/s)")
    print(ratio_line("encrypted CLI / plain CLI", cli, plain_cli, PLAIN_RATIO_BAR))
    print(ratio_line("encrypted / plain pipeline (in process)", encrypted, plain, None))
    print(ratio_line("encrypted CLI / plain blobs only", cli, blobs, None))
    if not args.skip_orthanc:
        orthanc_1, orthanc_4 = runs[5:7]
        print(ratio_line("encrypted CLI / Orthanc x1", cli, orthanc_1, ORTHANC_RATIO_BAR))
        print(ratio_line("encrypted pipeline / Orthanc x1", encrypted, orthanc_1, None))
        print(ratio_line("encrypted CLI / Orthanc x4", cli, orthanc_4, None))
    if memory is not None:
        print()
        print("memory run (CLI upload of one multi-frame study)")
        print(table([memory]))
        rss = memory.peak_rss_mb or 0.0
        verdict = "met" if rss < RSS_BAR_MB else "MISSED"
        label = "peak RSS, CLI + scan process"
        print(f"{label:34} {rss:6.0f} MB  (bar < {RSS_BAR_MB:.0f} MB: {verdict})")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="40 slices, 200 MiB large study")
    parser.add_argument("--skip-orthanc", action="store_true", help="no Orthanc baseline")
    parser.add_argument("--skip-memory", action="store_true", help="no large-study run")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="securepacs-upload-bench-") as scratch:
        asyncio.run(bench(args, Path(scratch)))


if __name__ == "__main__":
    main()
