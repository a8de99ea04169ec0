"""Accounts benchmark: sign-in latency under concurrency, and what it does to a cheap request.

Run with ``python bench/accounts.py [--database sqlite|postgresql|both]``. For each database it
starts a real server process (``securepacs serve``, SQLite in a temporary folder or a scratch
PostgreSQL database on 127.0.0.1:5432, dropped afterwards), registers and confirms
``--accounts`` accounts through the API, then:

- measures GET /health alone, at a steady rate, for the idle baseline;
- for each concurrency level (1, 10, 50) keeps that many sign-ins in flight for ``--seconds``
  (POST /api/v1/auth/login with each account's precomputed authentication key; the sign-ins in
  flight at any moment all use distinct accounts), while a separate thread issues GET /health
  at the same steady rate and records its latency.

The bar (the issue's): the cheap request's p95 under sign-in load stays under 5x its idle p95.

The accounts' keys are made once, client-side, before any server starts (Argon2id at the
protocol defaults costs ~0.1 s each): the benchmark measures the server's sign-in, not ours.

Rate limits: the server allows 10 sign-ins per email and 50 per client address in 5 minutes
(``securepacs.server.ratelimit.LIMITS``). Sign-ins therefore rotate over the accounts and over
``--source-addresses`` loopback source addresses (127.0.0.2, 127.0.0.3...; Linux routes all of
127.0.0.0/8 to the loopback interface). Every request still goes to the server on 127.0.0.1.
The total number of sign-ins per server is capped below both limits, so no 429 is ever provoked
(any non-200 answer is counted and printed).

Every loop is bounded in time and in count; figures are wall-clock: run on an idle machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email.parser
import email.policy
import gc
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

import asyncpg
import httpx

from securepacs.client.accounts import token_from_link
from securepacs.client.api import b64, kdf_json
from securepacs.crypto import create_account, slot_info
from securepacs.server.edge import CSRF_HEADER
from securepacs.server.ratelimit import LIMITS

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Coroutine, Iterator, Sequence

T = TypeVar("T")

HOST: Final = "127.0.0.1"
PG_ADMIN: Final = "postgresql://postgres@127.0.0.1:5432/test"
PG_URL: Final = "postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
BAR: Final = 5.0
EMAIL_LIMIT: Final = LIMITS["login-email"][0]
ADDRESS_LIMIT: Final = LIMITS["login-ip"][0]
START_TIMEOUT: Final = 60.0
REQUEST_TIMEOUT: Final = 60.0
SETUP_CONCURRENCY: Final = 4
WARMUP_LOGINS: Final = 8
HEADERS: Final = {CSRF_HEADER: "1"}


# -- accounts, made once --------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    """A registered-to-be account: its register body and the authentication key to sign in."""

    email: str
    auth_key: str
    register_body: dict[str, Any]


def _make_account(index: int) -> Account:
    # Runs in a worker process: Argon2id at the protocol defaults (64 MiB, t=3), like a client.
    new = create_account(secrets.token_urlsafe(16))
    params = slot_info(new.password_slot).kdf
    if params is None:
        raise RuntimeError("a password slot always carries its KDF parameters")
    address = f"bench{index:04d}@example.org"
    auth_key = b64(new.password_keys.auth_key.to_bytes())
    body = {
        "email": address,
        "kdf": kdf_json(params),
        "auth_key": auth_key,
        "public_keys": b64(new.keys.public.encoded),
        "password_slot": b64(new.password_slot),
    }
    return Account(address, auth_key, body)


def make_accounts(count: int) -> list[Account]:
    """``count`` accounts with fresh keys, made in parallel on every core."""
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return list(pool.map(_make_account, range(count), chunksize=8))


# -- the server process ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _server_command() -> list[str]:
    script = Path(sys.executable).with_name("securepacs")
    if script.is_file():
        return [str(script), "serve"]
    return [sys.executable, "-m", "securepacs.server", "serve"]


@dataclass
class Server:
    """A running ``securepacs serve`` process and where it keeps its data."""

    process: subprocess.Popen[bytes]
    base_url: str
    data_dir: Path
    log: Path


async def _wait_until_up(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    async with httpx.AsyncClient(base_url=server.base_url, timeout=2) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                break
            with contextlib.suppress(httpx.TransportError):
                if (await client.get("/ready")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    tail = server.log.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"the server did not come up; its log ends with:\n{tail}")


@contextlib.asynccontextmanager
async def running_server(database_url: str, data_dir: Path) -> AsyncIterator[Server]:
    """Start the server on a free port of 127.0.0.1; stop it (SIGTERM, then SIGKILL) after."""
    port = _free_port()
    base_url = f"http://{HOST}:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECUREPACS_")}
    env |= {
        "SECUREPACS_HOST": HOST,
        "SECUREPACS_PORT": str(port),
        "SECUREPACS_DATA_DIR": str(data_dir),
        "SECUREPACS_DATABASE_URL": database_url,
        "SECUREPACS_PUBLIC_URL": base_url,
    }
    for name in ("SECUREPACS_ARGON2_WORKERS", "SECUREPACS_LOG_LEVEL"):
        if name in os.environ:
            env[name] = os.environ[name]
    log = data_dir.parent / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            _server_command(), env=env, stdout=output, stderr=subprocess.STDOUT
        )
    server = Server(process, base_url, data_dir, log)
    try:
        await _wait_until_up(server)
        yield server
    finally:
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, 15)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait, 15)


@contextlib.asynccontextmanager
async def database(kind: str, scratch: Path) -> AsyncIterator[str]:
    """The SQLAlchemy URL of an empty database of ``kind``, removed afterwards."""
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{scratch / 'securepacs.db'}"
        return
    name = f"securepacs_bench_{secrets.token_hex(4)}"
    await _pg(f'CREATE DATABASE "{name}"')
    try:
        yield PG_URL.format(name=name)
    finally:
        await _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _pg(statement: str) -> None:
    connection = await asyncpg.connect(PG_ADMIN, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


# -- registration and confirmation ----------------------------------------------------------


def _outbox_tokens(outbox: Path) -> dict[str, str]:
    """The confirmation token mailed to each address (the link's part after '#')."""
    parser = email.parser.BytesParser(policy=email.policy.default)
    tokens: dict[str, str] = {}
    for path in sorted(outbox.glob("*.eml")):
        message = parser.parsebytes(path.read_bytes())
        body = message.get_body(preferencelist=("plain",))
        text = body.get_content() if body is not None else ""
        links = [word for word in str(text).split() if word.startswith("http") and "#" in word]
        if links:
            tokens[str(message["To"]).strip().lower()] = token_from_link(links[-1])
    return tokens


async def register_and_confirm(server: Server, accounts: Sequence[Account]) -> None:
    """Register every account through the API and confirm it from the outbox mail."""
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)
    async with httpx.AsyncClient(
        base_url=server.base_url, headers=HEADERS, timeout=REQUEST_TIMEOUT
    ) as client:

        async def post(path: str, body: dict[str, Any], expected: int) -> None:
            async with gate:
                response = await client.post(path, json=body)
            if response.status_code != expected:
                raise RuntimeError(f"{path} answered {response.status_code}: {response.text}")

        await asyncio.gather(
            *(post("/api/v1/accounts/register", a.register_body, 202) for a in accounts)
        )
        tokens = _outbox_tokens(server.data_dir / "outbox")
        missing = [a.email for a in accounts if a.email not in tokens]
        if missing:
            raise RuntimeError(f"no confirmation mail for {len(missing)} accounts")
        await asyncio.gather(
            *(post("/api/v1/accounts/confirm", {"token": tokens[a.email]}, 200) for a in accounts)
        )


# -- the cheap request, from its own thread -------------------------------------------------


class Prober:
    """GET /health at a steady rate from a thread with its own event loop and connections.

    Its own loop keeps the measurement free of the sign-in clients' scheduling: a late
    response here is the server's doing (or the machine's), not this script's.
    """

    def __init__(self, base_url: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._client = self._call(self._open(base_url))

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(REQUEST_TIMEOUT)

    @staticmethod
    async def _open(base_url: str) -> httpx.AsyncClient:
        client = httpx.AsyncClient(base_url=base_url, timeout=REQUEST_TIMEOUT)
        await client.get("/health")
        return client

    async def _measure(self, seconds: float, rate: float) -> list[float]:
        client = self._client
        latencies: list[float] = []
        failures = 0

        async def one() -> None:
            nonlocal failures
            started = time.perf_counter()
            response = await client.get("/health")
            if response.status_code == 200:
                latencies.append(time.perf_counter() - started)
            else:
                failures += 1

        # Open loop: each request leaves at its scheduled time, whether or not the one
        # before it has been answered, so a stalled server cannot slow the probe down.
        tasks: list[asyncio.Task[None]] = []
        start = time.perf_counter()
        for n in range(int(seconds * rate)):
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one()))
        await asyncio.wait_for(asyncio.gather(*tasks), REQUEST_TIMEOUT)
        if failures:
            raise RuntimeError(f"GET /health failed {failures} times")
        return latencies

    async def measure(self, seconds: float, rate: float) -> list[float]:
        """Latencies (s) of GET /health sent ``rate`` times a second for ``seconds``."""
        future = asyncio.run_coroutine_threadsafe(self._measure(seconds, rate), self._loop)
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        """Close the connections and stop the thread."""
        with contextlib.suppress(Exception):
            self._call(self._client.aclose())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self._loop.close()


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No garbage collection in this process while a window is measured.

    A full collection here stops every thread of the benchmark, the probe's included, for
    50-100 ms: that showed up as a burst of slow GET /health that the server had nothing to do
    with. Collect before the window, pause the collector during it (a few seconds, bounded).
    """
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


# -- sign-in load ---------------------------------------------------------------------------


@dataclass
class Rotation:
    """Hands out (account, client) pairs round-robin, within the server's rate limits."""

    accounts: Sequence[Account]
    clients: Sequence[httpx.AsyncClient]
    used: int = 0

    @property
    def budget(self) -> int:
        """Sign-ins this server process still takes without a 429 (limits are per process)."""
        return min(len(self.accounts) * EMAIL_LIMIT, len(self.clients) * ADDRESS_LIMIT) - self.used

    def take(self) -> tuple[Account, httpx.AsyncClient] | None:
        """The next pair, or None when another sign-in would exceed a limit."""
        if self.budget <= 0:
            return None
        pair = (
            self.accounts[self.used % len(self.accounts)],
            self.clients[self.used % len(self.clients)],
        )
        self.used += 1
        return pair


@dataclass
class Level:
    """What one concurrency level measured."""

    concurrency: int
    logins: list[float] = field(default_factory=list)
    failures: Counter[int] = field(default_factory=Counter)
    elapsed: float = 0.0
    cheap: list[float] = field(default_factory=list)
    capped: bool = False


async def sign_in(rotation: Rotation, concurrency: int, seconds: float, cap: int) -> Level:
    """Keep ``concurrency`` sign-ins in flight for ``seconds`` (at most ``cap`` of them)."""
    level = Level(concurrency)
    started = time.perf_counter()
    deadline = started + seconds
    issued = 0

    async def worker() -> None:
        nonlocal issued
        while time.perf_counter() < deadline:
            pair = rotation.take() if issued < cap else None
            if pair is None:
                level.capped = True
                return
            issued += 1
            account, client = pair
            body = {"email": account.email, "auth_key": account.auth_key}
            begin = time.perf_counter()
            response = await client.post("/api/v1/auth/login", json=body)
            if response.status_code == 200:
                level.logins.append(time.perf_counter() - begin)
            else:
                level.failures[response.status_code] += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    level.elapsed = time.perf_counter() - started
    return level


@contextlib.asynccontextmanager
async def login_clients(base_url: str, addresses: int) -> AsyncIterator[list[httpx.AsyncClient]]:
    """One client per loopback source address, 127.0.0.2 upwards, all talking to 127.0.0.1."""
    async with contextlib.AsyncExitStack() as stack:
        clients = []
        for n in range(addresses):
            transport = httpx.AsyncHTTPTransport(local_address=f"127.0.0.{2 + n}")
            client = httpx.AsyncClient(
                base_url=base_url, headers=HEADERS, timeout=REQUEST_TIMEOUT, transport=transport
            )
            clients.append(await stack.enter_async_context(client))
        yield clients


@dataclass
class Run:
    """One database's figures."""

    database: str
    idle: list[float]
    levels: list[Level]


async def bench_database(kind: str, accounts: Sequence[Account], args: argparse.Namespace) -> Run:
    """Start a server on a fresh ``kind`` database and measure every level."""
    with tempfile.TemporaryDirectory(prefix="securepacs-bench-") as scratch:
        data_dir = Path(scratch) / "data"
        async with database(kind, Path(scratch)) as url, running_server(url, data_dir) as server:
            print(f"[{kind}] server up at {server.base_url}; registering {len(accounts)} accounts")
            await register_and_confirm(server, accounts)
            prober = Prober(server.base_url)
            try:
                async with login_clients(server.base_url, args.source_addresses) as clients:
                    rotation = Rotation(accounts, clients)
                    await sign_in(rotation, 2, 30.0, WARMUP_LOGINS)
                    await asyncio.sleep(args.pause)
                    with collector_paused():
                        idle = await prober.measure(args.idle_seconds, args.rate)
                    print(
                        f"[{kind}] idle /health p50 {_ms(_p50(idle)):.2f} ms, "
                        f"p95 {_ms(_p95(idle)):.2f} ms"
                    )
                    levels = []
                    for done, concurrency in enumerate(args.concurrency):
                        await asyncio.sleep(args.pause)
                        cap = rotation.budget // (len(args.concurrency) - done)
                        with collector_paused():
                            probe = asyncio.ensure_future(prober.measure(args.seconds, args.rate))
                            level = await sign_in(rotation, concurrency, args.seconds, cap)
                            level.cheap = await probe
                        levels.append(level)
                        print(
                            f"[{kind}] {concurrency:>3} concurrent: {len(level.logins)} sign-ins, "
                            f"login p95 {_ms(_p95(level.logins)):.0f} ms, "
                            f"/health p95 {_ms(_p95(level.cheap)):.2f} ms"
                        )
            finally:
                prober.close()
        return Run(kind, idle, levels)


# -- figures --------------------------------------------------------------------------------


def _p50(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _p95(values: Sequence[float]) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[94]


def _ms(seconds: float) -> float:
    return seconds * 1000


def table(runs: Sequence[Run]) -> str:
    """The results side by side; latencies in ms."""
    header = (
        f"{'database':10} {'conc':>4} {'login p50':>9} {'login p95':>9} {'logins/s':>8} "
        f"{'cheap p50':>9} {'cheap p95':>9} {'idle p95':>8} {'p95/idle':>8} {'<5x':>4}"
    )
    lines = [header]
    notes = []
    for run in runs:
        idle = _p95(run.idle)
        for level in run.levels:
            ratio = _p95(level.cheap) / idle
            lines.append(
                f"{run.database:10} {level.concurrency:4d} {_ms(_p50(level.logins)):9.1f} "
                f"{_ms(_p95(level.logins)):9.1f} {len(level.logins) / level.elapsed:8.1f} "
                f"{_ms(_p50(level.cheap)):9.2f} {_ms(_p95(level.cheap)):9.2f} "
                f"{_ms(idle):8.2f} {ratio:8.2f} {'yes' if ratio < BAR else 'NO':>4}"
            )
            if level.failures:
                notes.append(
                    f"{run.database} x{level.concurrency}: non-200 sign-ins {dict(level.failures)}"
                )
            if level.capped:
                notes.append(
                    f"{run.database} x{level.concurrency}: stopped early at the rate-limit "
                    f"budget ({len(level.logins)} sign-ins); raise --accounts or "
                    "--source-addresses"
                )
    samples = ", ".join(
        f"{run.database}: idle {len(run.idle)}, "
        + " ".join(f"x{lv.concurrency} {len(lv.logins)}/{len(lv.cheap)}" for lv in run.levels)
        for run in runs
    )
    lines.append(f"samples (sign-ins/cheap): {samples}")
    return "\n".join(lines + notes)


def _args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--accounts", type=int, default=120, help="accounts to register")
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=[1, 10, 50], help="sign-ins in flight"
    )
    parser.add_argument("--seconds", type=float, default=4.0, help="duration of each level")
    parser.add_argument("--idle-seconds", type=float, default=4.0, help="idle baseline length")
    parser.add_argument("--rate", type=float, default=100.0, help="GET /health per second")
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between levels")
    parser.add_argument(
        "--source-addresses",
        type=int,
        default=32,
        help="loopback source addresses the sign-ins rotate over (127.0.0.2 upwards)",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.source_addresses <= 250:
        parser.error("--source-addresses must be between 1 and 250")
    if not all(1 <= n <= 500 for n in args.concurrency):
        parser.error("--concurrency levels must be between 1 and 500")
    if args.accounts <= max(args.concurrency):
        parser.error("--accounts must exceed the highest concurrency (one account per sign-in)")
    if not (0 < args.seconds <= 60 and 0 < args.idle_seconds <= 60 and 0 < args.rate <= 1000):
        parser.error("--seconds and --idle-seconds must be in (0, 60], --rate in (0, 1000]")
    return args


async def _main(args: argparse.Namespace) -> list[Run]:
    kinds = ("sqlite", "postgresql") if args.database == "both" else (args.database,)
    if args.database == "both":
        try:
            await _pg("SELECT 1")
        except (OSError, asyncpg.PostgresError) as error:
            print(f"PostgreSQL skipped: 127.0.0.1:5432 did not answer ({type(error).__name__})")
            kinds = ("sqlite",)
    began = time.perf_counter()
    accounts = await asyncio.to_thread(make_accounts, args.accounts)
    print(f"{len(accounts)} accounts made client-side in {time.perf_counter() - began:.1f} s")
    return [await bench_database(kind, accounts, args) for kind in kinds]


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print the table."""
    args = _args(argv)
    workers = os.environ.get("SECUREPACS_ARGON2_WORKERS", "2 (default)")
    print(
        f"{os.cpu_count()} cores; SECUREPACS_ARGON2_WORKERS={workers}; {args.seconds:g} s per "
        f"level; /health at {args.rate:g}/s; sign-ins rotate over {args.accounts} accounts "
        f"and {args.source_addresses} source addresses"
    )
    runs = asyncio.run(_main(args))
    print()
    print(table(runs))


if __name__ == "__main__":
    main()
