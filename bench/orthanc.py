"""A harness around a real Orthanc server, the baseline for the upload and search benchmarks.

``Orthanc`` starts the Debian package's server (``apt-get install -y orthanc orthanc-dicomweb``)
on free ports with its own storage in a temporary folder and the DICOMweb plugin loaded, and
stops it and removes the folder on exit::

    with Orthanc() as server:
        result = server.upload(paths, clients=4)
        latencies = server.qido({"PatientName": "SMITH*"})

Orthanc has no bind-address option: it listens on all interfaces, but with
``RemoteAccessAllowed`` false its HTTP server answers only loopback clients. Its DICOM port is
disabled unless asked for (``Orthanc(dicom=True)``), because it would accept C-STORE from any
host.

``python bench/orthanc.py --selftest`` checks the harness and ``synthetic`` end to end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Self

import httpx
import synthetic

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from types import TracebackType

__all__ = ("Orthanc", "OrthancError", "UploadResult", "find_dicomweb_plugin", "find_orthanc")

APT_COMMAND: Final = "apt-get install -y orthanc orthanc-dicomweb"
STARTUP_TIMEOUT_SECONDS: Final = 60.0
STOP_TIMEOUT_SECONDS: Final = 30.0
REQUEST_TIMEOUT_SECONDS: Final = 300.0
# Files above this are streamed from disk rather than read whole: a benchmark of a 2 GB study
# should not need gigabytes in the harness. Below it one buffer is cheaper than a stream.
STREAM_ABOVE_BYTES: Final = 32 * 1024 * 1024
_LOG_TAIL_BYTES: Final = 4000
# The package installs its binary in /usr/sbin, which is not on an unprivileged user's PATH.
_SBIN_DIRECTORIES: Final = (Path("/usr/sbin"), Path("/usr/local/sbin"))
_PLUGIN_NAME: Final = "libOrthancDicomWeb.so"
_PLUGIN_DIRECTORIES: Final = (Path("/usr/share/orthanc/plugins"), Path("/usr/lib/orthanc"))
# Characters a URL query value may carry unencoded (RFC 3986) other than the separators & = +,
# which covers the DICOM wildcards * and ? and the PN separator ^ as httpx sends them.
_QUERY_SAFE: Final = frozenset(string.ascii_letters + string.digits + "-._~*?^,:/@!$'();")


class OrthancError(RuntimeError):
    """Orthanc is missing, failed to start, or refused a request."""


@dataclass(frozen=True, slots=True)
class UploadResult:
    """What one ``Orthanc.upload`` call sent and how long it took.

    Attributes:
        instances: Instances stored (``already_stored`` included).
        bytes: Bytes of DICOM sent, summed over the files.
        seconds: Wall-clock time from the first request to the last answer.
        already_stored: Instances Orthanc already had; it answers them without storing again,
            so a non-zero count means the figures flatter the server.
    """

    instances: int
    bytes: int
    seconds: float
    already_stored: int = 0

    @property
    def instances_per_second(self) -> float:
        """Instances stored per second."""
        return self.instances / self.seconds if self.seconds > 0 else 0.0

    @property
    def megabytes_per_second(self) -> float:
        """Throughput in MB (10**6 bytes) per second."""
        return self.bytes / 1e6 / self.seconds if self.seconds > 0 else 0.0


def find_orthanc() -> Path:
    """The Orthanc executable.

    Returns:
        Its path: found on PATH, or in /usr/sbin where the Debian package puts it.

    Raises:
        OrthancError: If it is not installed; the message names the apt-get command.
    """
    found = shutil.which("Orthanc")
    if found is not None:
        return Path(found)
    for directory in _SBIN_DIRECTORIES:
        candidate = directory / "Orthanc"
        if candidate.is_file():
            return candidate
    raise OrthancError(f"Orthanc is not installed; install it with: {APT_COMMAND}")


def find_dicomweb_plugin() -> Path:
    """The DICOMweb plugin's shared library, as installed by the orthanc-dicomweb package.

    Returns:
        Its path, preferring the one ``dpkg -L orthanc-dicomweb`` lists; if dpkg is not
        available, the Debian locations are searched.

    Raises:
        OrthancError: If the plugin is not installed; the message names the apt-get command.
    """
    candidates: list[Path] = []
    if shutil.which("dpkg") is not None:
        listing = subprocess.run(
            ["dpkg", "-L", "orthanc-dicomweb"], capture_output=True, text=True, check=False
        )
        if listing.returncode == 0:
            candidates = [
                Path(line)
                for line in listing.stdout.splitlines()
                if Path(line).name.startswith(_PLUGIN_NAME)
            ]
    candidates += [directory / _PLUGIN_NAME for directory in _PLUGIN_DIRECTORIES]
    # The unversioned name is the one the package's own configuration loads; the versioned file
    # behind it is the same library.
    candidates.sort(key=lambda path: path.name != _PLUGIN_NAME)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise OrthancError(
        f"the Orthanc DICOMweb plugin is not installed; install it with: {APT_COMMAND}"
    )


def _query_string(params: Mapping[str, str]) -> str:
    """Join QIDO parameters without percent-encoding them.

    Orthanc 1.10.1's DICOMweb plugin matches the raw query text: ``PatientName=SMITH%2A``
    matches nothing, where ``PatientName=SMITH*`` matches. So keys and values are sent as they
    are, and a character that would need encoding is refused rather than silently never
    matching (a space in a value can be written as the ``?`` single-character wildcard).

    Raises:
        ValueError: If a key or value holds a character outside ``_QUERY_SAFE``.
    """
    for text in (*params.keys(), *params.values()):
        if not set(text) <= _QUERY_SAFE:
            raise ValueError(
                "Orthanc does not percent-decode QIDO parameters: use only letters, digits and "
                f"{''.join(sorted(_QUERY_SAFE - set(string.ascii_letters + string.digits)))} "
                "(write a space as ?)"
            )
    return "&".join(f"{key}={value}" for key, value in params.items())


def _free_ports(count: int) -> list[int]:
    """Distinct free TCP ports on loopback (held open together so that they differ)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


class Orthanc:
    """A throwaway Orthanc server with the DICOMweb plugin, used as a context manager.

    On entry it writes a configuration into a new temporary folder (storage, index and log live
    there too), starts ``Orthanc`` and waits until ``GET /system`` answers; on exit it stops the
    server (terminate, then kill if it does not stop in time) and removes the folder.

    The configuration keeps Orthanc's defaults except: no authentication, loopback-only HTTP,
    no storage compression (SecurePACS does not compress either), no saved jobs, no Orthanc
    Explorer, no WebDAV, and the DICOM port off unless ``dicom`` is true. Durability is left
    at Orthanc's default (``SyncStorageArea``: each file is fsynced), as a production server
    runs; pass ``config={"SyncStorageArea": False}`` to measure without it.

    Args:
        config: Top-level configuration entries that override the harness's own.
        dicom: Also open the DICOM port (``dicom_port``) for C-STORE/C-ECHO from any host.
        parent: Where to create the temporary folder (default: the system's temporary folder);
            the storage lives there, so put it on the disk you mean to measure.
        startup_timeout: Seconds to wait for the server to answer.
    """

    def __init__(
        self,
        *,
        config: Mapping[str, object] | None = None,
        dicom: bool = False,
        parent: Path | None = None,
        startup_timeout: float = STARTUP_TIMEOUT_SECONDS,
    ) -> None:
        self._overrides = dict(config or {})
        self._dicom = dicom
        self._parent = parent
        self._startup_timeout = startup_timeout
        self._workdir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._http: httpx.Client | None = None
        self._http_port = 0
        self._dicom_port = 0
        self._version = ""

    # --- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        executable = find_orthanc()
        plugin = find_dicomweb_plugin()
        self._workdir = Path(tempfile.mkdtemp(prefix="orthanc-bench-", dir=self._parent))
        try:
            self._http_port, self._dicom_port = _free_ports(2)
            config_path = self._workdir / "orthanc.json"
            config = self._config(plugin, self._workdir)
            config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")
            with self.log_path.open("wb") as log:
                self._process = subprocess.Popen(
                    [str(executable), str(config_path)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self._workdir,
                )
            self._http = httpx.Client(base_url=self.url, timeout=REQUEST_TIMEOUT_SECONDS)
            self._wait_until_up()
        except BaseException:
            self._shut_down()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._shut_down()

    def _config(self, plugin: Path, workdir: Path) -> dict[str, object]:
        config: dict[str, object] = {
            "Name": "securepacs-bench",
            "StorageDirectory": str(workdir / "storage"),
            "IndexDirectory": str(workdir / "index"),
            "HttpPort": self._http_port,
            "DicomPort": self._dicom_port,
            "DicomServerEnabled": self._dicom,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "Plugins": [str(plugin)],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True},
            "StorageCompression": False,
            "SaveJobs": False,
            "OrthancExplorerEnabled": False,
            "WebDavEnabled": False,
            "HttpDescribeErrors": True,
        }
        config.update(self._overrides)
        return config

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + self._startup_timeout
        while True:
            if self._process is not None and self._process.poll() is not None:
                raise OrthancError(
                    f"Orthanc exited with status {self._process.returncode} while starting; "
                    f"log tail:\n{self._log_tail()}"
                )
            try:
                answer = self._client.get("/system", timeout=2.0)
            except httpx.TransportError:
                answer = None
            if answer is not None and answer.status_code == 200:
                system = answer.json()
                self._version = str(system.get("Version", ""))
                return
            if time.monotonic() > deadline:
                raise OrthancError(
                    f"Orthanc did not answer within {self._startup_timeout:.0f} s; "
                    f"log tail:\n{self._log_tail()}"
                )
            time.sleep(0.05)

    def _shut_down(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
        if self._process is not None:
            if self._process.poll() is None:
                self._process.terminate()
                try:
                    self._process.wait(timeout=STOP_TIMEOUT_SECONDS)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
            self._process = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def _log_tail(self) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(0, 2)
                log.seek(max(0, log.tell() - _LOG_TAIL_BYTES))
                return log.read().decode("utf-8", errors="replace")
        except OSError:
            return "(no log)"

    # --- properties ------------------------------------------------------------------------------

    @property
    def _client(self) -> httpx.Client:
        if self._http is None:
            raise OrthancError("Orthanc is not running: use it inside a with block")
        return self._http

    @property
    def url(self) -> str:
        """The REST API's base URL, e.g. ``http://127.0.0.1:40123``."""
        return f"http://127.0.0.1:{self._http_port}"

    @property
    def dicomweb_url(self) -> str:
        """The DICOMweb root, e.g. ``http://127.0.0.1:40123/dicom-web``."""
        return f"{self.url}/dicom-web"

    @property
    def dicom_port(self) -> int:
        """The DICOM (C-STORE) port; open only when the server was made with ``dicom=True``."""
        return self._dicom_port

    @property
    def version(self) -> str:
        """The server's version as ``GET /system`` reports it, e.g. ``1.10.1``."""
        return self._version

    @property
    def log_path(self) -> Path:
        """The server's combined stdout and stderr (removed with the folder on exit)."""
        if self._workdir is None:
            raise OrthancError("Orthanc is not running: use it inside a with block")
        return self._workdir / "orthanc.log"

    # --- operations ------------------------------------------------------------------------------

    def upload(self, paths: Sequence[Path], *, clients: int = 1) -> UploadResult:
        """Store DICOM files with ``POST /instances``, from ``clients`` concurrent connections.

        Each worker thread has its own HTTP client (one keep-alive connection) and takes the
        next file from a shared queue, so fast workers are not held up by slow ones. Files
        above ``STREAM_ABOVE_BYTES`` are streamed from disk with a Content-Length.

        Args:
            paths: The files, sent in this order (interleaved over the workers).
            clients: Number of concurrent workers.

        Returns:
            The counts and the wall-clock time of the whole upload.

        Raises:
            ValueError: If ``clients`` is not positive.
            OrthancError: If any request fails or Orthanc refuses an instance; the remaining
                work is abandoned.
        """
        if clients < 1:
            raise ValueError("clients must be at least 1")
        work = iter(paths)
        lock = threading.Lock()
        failed = threading.Event()

        def next_path() -> Path | None:
            with lock:
                return None if failed.is_set() else next(work, None)

        def worker() -> tuple[int, int, int]:
            stored = already = sent = 0
            with httpx.Client(base_url=self.url, timeout=REQUEST_TIMEOUT_SECONDS) as client:
                try:
                    while (path := next_path()) is not None:
                        status, size = self._post_instance(client, path)
                        stored += 1
                        already += status == "AlreadyStored"
                        sent += size
                except BaseException:
                    failed.set()
                    raise
            return stored, already, sent

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=clients, thread_name_prefix="upload") as pool:
            futures = [pool.submit(worker) for _ in range(clients)]
            totals = [future.result() for future in futures]
        seconds = time.perf_counter() - started
        return UploadResult(
            instances=sum(stored for stored, _, _ in totals),
            bytes=sum(sent for _, _, sent in totals),
            seconds=seconds,
            already_stored=sum(already for _, already, _ in totals),
        )

    @staticmethod
    def _post_instance(client: httpx.Client, path: Path) -> tuple[str, int]:
        """POST one file; returns Orthanc's status (``Success`` or ``AlreadyStored``) and size."""
        headers = {"Content-Type": "application/dicom"}
        size = path.stat().st_size
        try:
            if size > STREAM_ABOVE_BYTES:
                with path.open("rb") as stream:
                    answer = client.post("/instances", content=stream, headers=headers)
            else:
                answer = client.post("/instances", content=path.read_bytes(), headers=headers)
        except httpx.HTTPError as error:
            raise OrthancError(f"POST /instances failed for {path.name}: {error!r}") from error
        if answer.status_code != 200:
            raise OrthancError(
                f"POST /instances answered {answer.status_code} for {path.name}: "
                f"{answer.text[:500]}"
            )
        reply = answer.json()
        status = reply.get("Status") if isinstance(reply, dict) else None
        if status not in ("Success", "AlreadyStored"):
            raise OrthancError(f"Orthanc did not store {path.name}: {answer.text[:500]}")
        return str(status), size

    def find_studies(self, params: Mapping[str, str]) -> list[dict[str, Any]]:
        """One QIDO-RS ``GET /dicom-web/studies`` query.

        Args:
            params: Query parameters, e.g. ``{"PatientName": "SMITH*"}`` or
                ``{"StudyDate": "20200101-20201231", "limit": "100"}``.

        Returns:
            The matching studies in DICOM JSON (keys are tags such as ``"0020000D"``).

        Raises:
            OrthancError: If the answer is not 200.
        """
        return self._qido_once(params)[1]

    def qido(self, params: Mapping[str, str], repeat: int = 20) -> list[float]:
        """Time ``repeat`` identical QIDO-RS study queries, one after another.

        Args:
            params: Query parameters, as for ``find_studies``.
            repeat: How many times to send the query.

        Returns:
            The latency of each request in seconds (send to fully read and parsed answer).

        Raises:
            OrthancError: If any answer is not 200.
        """
        return [self._qido_once(params)[0] for _ in range(repeat)]

    def _qido_once(self, params: Mapping[str, str]) -> tuple[float, list[dict[str, Any]]]:
        url = httpx.URL(f"{self.url}/dicom-web/studies?{_query_string(params)}")
        started = time.perf_counter()
        answer = self._client.get(url, headers={"Accept": "application/dicom+json"})
        studies = answer.json() if answer.status_code == 200 else None
        elapsed = time.perf_counter() - started
        if not isinstance(studies, list):
            raise OrthancError(
                f"QIDO-RS answered {answer.status_code}: {answer.text[:500]}"
                if answer.status_code != 200
                else "QIDO-RS answered something other than a JSON array"
            )
        return elapsed, studies

    def study_count(self) -> int:
        """How many studies Orthanc holds (``GET /statistics``)."""
        return self._statistic("CountStudies")

    def instance_count(self) -> int:
        """How many instances Orthanc holds (``GET /statistics``)."""
        return self._statistic("CountInstances")

    def _statistic(self, name: str) -> int:
        answer = self._client.get("/statistics")
        if answer.status_code != 200:
            raise OrthancError(f"GET /statistics answered {answer.status_code}")
        return int(answer.json()[name])


# --- self-test -----------------------------------------------------------------------------------


def _tag(study: Mapping[str, Any], tag: str) -> str:
    """The first value of a DICOM JSON attribute, or "" (PN values become their Alphabetic)."""
    values = study.get(tag, {}).get("Value") or [""]
    value = values[0]
    return str(value.get("Alphabetic", "")) if isinstance(value, dict) else str(value)


@contextlib.contextmanager
def _scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="orthanc-selftest-") as folder:
        yield Path(folder)


def selftest() -> None:
    """Make synthetic data, upload it with 1 and 4 clients, query it, and check the answers.

    Raises:
        OrthancError: If Orthanc is missing or misbehaves.
        AssertionError: If an answer is not the expected one.
    """
    with _scratch() as scratch:
        started = time.perf_counter()
        ct = synthetic.make_ct_series(scratch / "ct", slices=20)
        corpus = synthetic.make_search_corpus(scratch / "corpus", studies=50)
        large = synthetic.make_large_study(
            scratch / "large", total_bytes=24 * 2**20, file_bytes=10 * 2**20
        )
        studies = synthetic.corpus_studies(50)
        print(
            f"synthetic: {len(ct)} CT slices, {len(corpus)} corpus studies, "
            f"{len(large)} multi-frame files in {time.perf_counter() - started:.2f} s"
        )
        print(f"Orthanc: {find_orthanc()}, plugin: {find_dicomweb_plugin()}")
        paths = [*ct, *corpus]
        for clients in (1, 4):
            with Orthanc() as server:
                result = server.upload(paths, clients=clients)
                print(
                    f"Orthanc {server.version}, {clients} client(s): {result.instances} instances, "
                    f"{result.bytes / 1e6:.1f} MB in {result.seconds:.2f} s = "
                    f"{result.instances_per_second:.0f} inst/s, "
                    f"{result.megabytes_per_second:.1f} MB/s"
                )
                if result.instances != len(paths) or result.already_stored:
                    raise AssertionError("not every instance was stored exactly once")
                if server.study_count() != 1 + len(studies):
                    raise AssertionError(f"expected {1 + len(studies)} studies")
                _check_queries(server, studies)
                big = server.upload(large, clients=clients)
                if server.instance_count() != len(paths) + len(large):
                    raise AssertionError("the multi-frame instances were not all stored")
                print(
                    f"  multi-frame: {big.instances} files, {big.bytes / 1e6:.1f} MB in "
                    f"{big.seconds:.2f} s = {big.megabytes_per_second:.0f} MB/s"
                )
    print("selftest passed")


def _check_queries(server: Orthanc, studies: Sequence[synthetic.CorpusStudy]) -> None:
    target = studies[len(studies) // 2]
    found = server.find_studies(
        {"PatientName": target.patient_name, "StudyDate": target.study_date}
    )
    uids = {_tag(study, "0020000D") for study in found}
    if target.study_instance_uid not in uids:
        raise AssertionError("QIDO by exact name and date did not find the study")
    family = target.patient_name.split("^")[0]
    expected = {s.study_instance_uid for s in studies if s.patient_name.startswith(family + "^")}
    found = server.find_studies({"PatientName": f"{family}*"})
    if {_tag(study, "0020000D") for study in found} != expected:
        raise AssertionError("QIDO by family-name wildcard did not find exactly its studies")
    accession = server.find_studies({"AccessionNumber": target.accession_number})
    if [_tag(study, "00080050") for study in accession] != [target.accession_number]:
        raise AssertionError("QIDO by accession number did not find exactly one study")
    if server.find_studies({"PatientName": "NOSUCHNAME*"}):
        raise AssertionError("QIDO for an absent name found something")
    latencies = sorted(server.qido({"PatientName": f"{family}*"}, repeat=20))
    print(
        f"  QIDO PatientName={family}* ({len(expected)} of {len(studies)} studies): "
        f"median {latencies[len(latencies) // 2] * 1000:.1f} ms, "
        f"max {latencies[-1] * 1000:.1f} ms over {len(latencies)} requests"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the self-test when asked to; this module is otherwise imported by benchmarks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--selftest", action="store_true", help="check the harness end to end")
    args = parser.parse_args(argv)
    if not args.selftest:
        parser.print_usage()
        return 2
    selftest()
    return 0


if __name__ == "__main__":
    sys.exit(main())
