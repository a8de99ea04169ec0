"""The ``securepacs`` command: account commands (client) and server commands in one tool.

The CLI keeps only the server URL and the session cookie between runs, in a file readable by
its owner alone; commands that need keys ask for the password again and unlock in memory.
Passwords are read with a hidden prompt, or one per line from standard input when it is not a
terminal (for scripts and tests).
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import getpass
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from securepacs.client.accounts import AccountFlows, RecoveryNeeded, Unlocked
from securepacs.client.api import ApiError
from securepacs.client.cli_shares import add_share_commands
from securepacs.client.cli_studies import StudyCommandError, add_study_commands
from securepacs.client.httpx_transport import HttpxTransport
from securepacs.client.transport import TransportFailure
from securepacs.crypto import (
    CryptoError,
    fingerprint,
    format_key_uid,
    parse_key_file,
    parse_recovery_text,
    recovery_key_file,
    recovery_text,
)
from securepacs.crypto.recovery import KEY_FILE_NAME

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from securepacs.client.scan_process import ScanProcess

__all__ = ("main",)

SERVER_COMMANDS: Final = ("serve", "db", "check-config")
# mallopt(3) parameter numbers from glibc's malloc.h.
_M_MMAP_THRESHOLD: Final = -3
_M_ARENA_MAX: Final = -8
DEFAULT_SERVER: Final = "http://127.0.0.1:8000"


def _state_path() -> Path:
    base = os.environ.get("SECUREPACS_CONFIG_DIR") or Path.home() / ".config" / "securepacs"
    return Path(base) / "session.json"


def _load_state() -> dict[str, str]:
    path = _state_path()
    if not path.is_file():
        return {}
    state: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
    return state


def _save_state(state: dict[str, str]) -> None:
    path = _state_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(state, handle)


def _secret(prompt: str) -> str:
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    line = sys.stdin.readline()
    if not line:
        raise SystemExit(f"securepacs: {prompt.strip(': ')} is required on standard input")
    return line.rstrip("\n")


def _new_password() -> str:
    first = _secret("New password: ")
    if sys.stdin.isatty() and _secret("Repeat the new password: ") != first:
        raise SystemExit("securepacs: the two passwords differ; nothing was changed")
    return first


def _say(text: str) -> None:
    print(text, flush=True)  # noqa: T201


class _Session:
    """The transport for one CLI run, saving the session cookie afterwards."""

    def __init__(self, args: argparse.Namespace) -> None:
        state = _load_state()
        self.server = args.server or state.get("server") or DEFAULT_SERVER
        same = state.get("server") == self.server
        self.transport = HttpxTransport(self.server, session=state.get("session") if same else None)
        self.flows = AccountFlows(self.transport)
        self.config_dir = _state_path().parent

    async def unlock(self) -> Unlocked:
        """The account keys, unlocked with the password read now."""
        return await self.flows.unlock(_secret("Password: "))

    async def close(self, *, keep: bool = True) -> None:
        session = self.transport.session if keep else None
        _save_state({"server": self.server, **({"session": session} if session else {})})
        await self.transport.aclose()


async def _unlock(session: _Session) -> Unlocked:
    return await session.unlock()


async def cmd_register(s: _Session, a: argparse.Namespace) -> None:
    await s.flows.register(a.email, _new_password())
    _say(
        "Account created. Open the link in the confirmation email, or run: securepacs confirm LINK"
    )


async def cmd_confirm(s: _Session, a: argparse.Namespace) -> None:
    await s.flows.confirm(a.link)
    _say("Email address confirmed. You can sign in: securepacs login EMAIL")


async def cmd_login(s: _Session, a: argparse.Namespace) -> None:
    try:
        unlocked = await s.flows.login(
            a.email,
            _secret("Password: "),
            totp_code=a.totp,
            recovery_code=a.recovery_code,
            remember=a.remember,
        )
    except RecoveryNeeded as needed:
        _say(str(needed))
        _say("Run: securepacs recover EMAIL --key-file FILE (or --key TEXT, or --old-password)")
        return
    _say(
        f"Signed in as {unlocked.view.email}. Key fingerprint: {fingerprint(unlocked.keys.public)}"
    )


async def cmd_recover(s: _Session, a: argparse.Namespace) -> None:
    try:
        await s.flows.login(
            a.email, _secret("New password: "), totp_code=a.totp, recovery_code=a.recovery_code
        )
    except RecoveryNeeded as needed:
        if a.key_file:
            key = parse_key_file(Path(a.key_file).read_bytes())
            unlocked = await s.flows.recover(needed, recovery_key=key)
        elif a.key:
            unlocked = await s.flows.recover(needed, recovery_key=parse_recovery_text(a.key))
        else:
            unlocked = await s.flows.recover(needed, old_password=_secret("Last password: "))
        _say(f"Access restored. Key fingerprint: {fingerprint(unlocked.keys.public)}")
        return
    _say("Nothing to recover: this account's keys open with its password.")


async def cmd_logout(s: _Session, _: argparse.Namespace) -> None:
    await s.flows.api.logout()
    _say("Signed out.")


async def cmd_whoami(s: _Session, _: argparse.Namespace) -> None:
    me = await s.flows.api.me()
    _say(f"{me.email} (account {me.account_id}), member since {me.created_at[:10]}")
    _say(f"two-factor: {'on' if me.two_factor_enabled else 'off'}")
    uids = ", ".join(me.recovery_key_uids) or "none; create one: securepacs recovery-key create"
    _say(f"recovery keys (Key UID): {uids}")


async def cmd_passwd(s: _Session, _: argparse.Namespace) -> None:
    old = _secret("Current password: ")
    unlocked = await s.flows.unlock(old)
    await s.flows.change_password(unlocked, old, _new_password())
    _say("Password changed. Other sessions were signed out.")


async def cmd_recovery_key(s: _Session, a: argparse.Namespace) -> None:
    if a.action == "status":
        uids = (await s.flows.api.me()).recovery_key_uids
        _say("\n".join(f"Key UID {uid}" for uid in uids) or "No recovery key. Create one.")
        return
    if a.action == "invalidate":
        await s.flows.api.invalidate_recovery_keys()
        _say("All recovery keys are invalidated. Create a new one now.")
        return
    unlocked = await _unlock(s)
    key = await s.flows.create_recovery_key(unlocked, replace=a.replace)
    out = Path(a.out or KEY_FILE_NAME)
    descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(recovery_key_file(key))
    _say(f"Recovery key written to {out} (Key UID {format_key_uid(key)}).")
    _say(f"Key: {recovery_text(key)}")
    _say("Store it somewhere private. It is shown once and is the only way back after a reset.")


async def cmd_two_factor(s: _Session, a: argparse.Namespace) -> None:
    if a.action == "disable":
        await s.flows.api.disable_two_factor(_secret("Code: "))
        _say("Two-factor authentication is off.")
        return
    secret, uri = await s.flows.api.start_two_factor()
    _say(f"Add this to your authenticator app: {uri}\nSecret: {secret}")
    codes = await s.flows.api.confirm_two_factor(_secret("Code from the app: "))
    _say("Two-factor authentication is on. Recovery codes (each works once, keep them private):")
    for code in codes:
        _say(f"  {code}")


async def cmd_forgot(s: _Session, a: argparse.Namespace) -> None:
    await s.flows.forgot_password(a.email)
    _say("If the address has an account, a reset link is on its way. Then: securepacs reset LINK")


async def cmd_reset(s: _Session, a: argparse.Namespace) -> None:
    await s.flows.reset_password(a.link, _new_password())
    _say("Password changed. Sign in with: securepacs recover EMAIL --key-file FILE")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="securepacs", description="SecurePACS")
    parser.add_argument("--server", help=f"server URL (default: last used, or {DEFAULT_SERVER})")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in SERVER_COMMANDS:
        sub.add_parser(name, help="server: see `securepacs serve`, `db upgrade`, `check-config`")
    p = sub.add_parser("register", help="create an account")
    p.add_argument("email")
    p.set_defaults(run=cmd_register)
    p = sub.add_parser("confirm", help="confirm the email address with the mailed link")
    p.add_argument("link")
    p.set_defaults(run=cmd_confirm)
    p = sub.add_parser("login", help="sign in")
    p.add_argument("email")
    p.add_argument("--remember", action="store_true", help="stay signed in for longer")
    p.add_argument("--totp", help="code from the authenticator app")
    p.add_argument("--recovery-code", help="a two-factor recovery code")
    p.set_defaults(run=cmd_login)
    p = sub.add_parser("recover", help="after a password reset: restore access to your keys")
    p.add_argument("email")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--key-file", help=f"the recovery key file ({KEY_FILE_NAME})")
    group.add_argument("--key", help="the recovery key as text")
    group.add_argument("--old-password", action="store_true", help="use the last password")
    p.add_argument("--totp", help="code from the authenticator app")
    p.add_argument("--recovery-code", help="a two-factor recovery code")
    p.set_defaults(run=cmd_recover)
    sub.add_parser("logout", help="sign out").set_defaults(run=cmd_logout)
    sub.add_parser("whoami", help="show the signed-in account").set_defaults(run=cmd_whoami)
    sub.add_parser("passwd", help="change the password").set_defaults(run=cmd_passwd)
    p = sub.add_parser("2fa", help="two-factor authentication")
    p.add_argument("action", choices=["enable", "disable"])
    p.set_defaults(run=cmd_two_factor)
    p = sub.add_parser("recovery-key", help="create, show status of, or invalidate recovery keys")
    p.add_argument("action", choices=["create", "status", "invalidate"])
    p.add_argument("--replace", action="store_true", help="invalidate the other recovery keys")
    p.add_argument("--out", help=f"where to write the key file (default {KEY_FILE_NAME})")
    p.set_defaults(run=cmd_recovery_key)
    p = sub.add_parser("forgot", help="mail a password reset link")
    p.add_argument("email")
    p.set_defaults(run=cmd_forgot)
    p = sub.add_parser("reset", help="choose a new password with the mailed reset link")
    p.add_argument("link")
    p.set_defaults(run=cmd_reset)
    add_study_commands(sub)
    add_share_commands(sub)
    return parser


async def _run(args: argparse.Namespace) -> int:
    session = _Session(args)
    run: Callable[[_Session, argparse.Namespace], Awaitable[None]] = args.run
    try:
        await run(session, args)
    except ApiError as error:
        print(f"securepacs: {error.detail}", file=sys.stderr)  # noqa: T201
        if error.retry_after:
            print(f"securepacs: retry in {error.retry_after} s", file=sys.stderr)  # noqa: T201
        return 1
    except (CryptoError, StudyCommandError) as error:
        print(f"securepacs: {error}", file=sys.stderr)  # noqa: T201
        return 1
    except TransportFailure:
        print(  # noqa: T201
            f"securepacs: the server at {session.server} does not answer. Check the address "
            "and your connection; an interrupted upload resumes when you run it again.",
            file=sys.stderr,
        )
        return 1
    finally:
        await session.close(keep=args.command != "logout")
    return 0


def _bounded_heap() -> None:
    # Uploads and downloads handle 8 MiB buffers in several threads. glibc raises its mmap
    # threshold after the first such buffer is freed and then keeps later ones on per-thread
    # heaps that it rarely returns; pinning the threshold and the arena count keeps the
    # process near what it actually holds (a 2 GB upload stays well under 300 MB).
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 1 << 20)
        libc.mallopt(_M_ARENA_MAX, 2)
    except (OSError, AttributeError):
        return  # not glibc (musl, for one): nothing to tune


def main(argv: list[str] | None = None, *, early_scan: ScanProcess | None = None) -> int:
    """Run one command; ``early_scan`` is an upload's scan process started by client/launch.py."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in SERVER_COMMANDS:
        from securepacs.server.__main__ import main as server_main

        return server_main(argv)
    args: Any = _parser().parse_args(argv)
    args.early_scan = early_scan
    _bounded_heap()
    return asyncio.run(_run(args))


if __name__ == "__main__":
    sys.exit(main())
