"""The whole account lifecycle through the CLI, against a running server and a real SMTP server.

register -> confirm (link from the received mail) -> login -> two-factor on -> login with a TOTP
code -> recovery key file -> forgot password (mail) -> reset -> recover with the key file ->
login with the new password -> passwd: the account's keys are the same throughout (ZK-1: the
server never held them).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pyotp
import pytest

from tests.conftest import SmtpInbox, free_port

if TYPE_CHECKING:
    from collections.abc import Iterator

CLI = str(Path(sys.executable).with_name("securepacs"))


@pytest.fixture
def stack(tmp_path: Path, smtp_inbox: SmtpInbox) -> Iterator[tuple[str, SmtpInbox, dict[str, str]]]:
    """A SecurePACS server process (SQLite) mailing to an aiosmtpd server; the CLI's env."""
    inbox, smtp_port, http_port = smtp_inbox, smtp_inbox.port, free_port()
    url = f"http://127.0.0.1:{http_port}"
    env = {
        **os.environ,
        "SECUREPACS_DATA_DIR": str(tmp_path / "server"),
        "SECUREPACS_PORT": str(http_port),
        "SECUREPACS_PUBLIC_URL": url,
        "SECUREPACS_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
    }
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen([CLI, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        else:
            pytest.fail((tmp_path / "server.log").read_text())
        cli_env = {**os.environ, "SECUREPACS_CONFIG_DIR": str(tmp_path / "cli")}
        yield url, inbox, cli_env
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


def _cli(env: dict[str, str], *args: str, stdin: str = "") -> str:
    done = subprocess.run(
        [CLI, *args], input=stdin, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stdout


def _fingerprint(output: str) -> str:
    match = re.search(r"Key fingerprint: ([0-9 ]+)", output)
    assert match, output
    return match.group(1).strip()


def test_cli_account_lifecycle_keeps_the_same_keys(
    stack: tuple[str, SmtpInbox, dict[str, str]], tmp_path: Path
) -> None:
    url, inbox, env = stack
    me = "erin@example.org"
    _cli(env, "--server", url, "register", me, stdin="first password\n")
    assert inbox.messages[-1]["Subject"] == "Confirm your SecurePACS account"
    _cli(env, "confirm", inbox.last_link())
    before = _fingerprint(_cli(env, "login", me, stdin="first password\n"))

    enable = subprocess.Popen(
        [CLI, "2fa", "enable"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert enable.stdout is not None and enable.stdin is not None
    lines = [enable.stdout.readline(), enable.stdout.readline()]
    secret = lines[1].split("Secret:", 1)[1].strip()
    out, err = enable.communicate(pyotp.TOTP(secret).now() + "\n", timeout=60)
    assert enable.returncode == 0, err
    codes = re.findall(r"^\s+([a-z0-9]{5}-[a-z0-9]{5})$", out, re.MULTILINE)
    assert len(codes) == 10

    _cli(env, "logout")
    denied = subprocess.run(
        [CLI, "login", me], input="first password\n", env=env, capture_output=True, text=True
    )
    assert denied.returncode == 1
    assert "authenticator app" in denied.stderr
    next_code = pyotp.TOTP(secret).at(int(time.time()) + 30)
    assert before == _fingerprint(
        _cli(env, "login", me, "--totp", next_code, stdin="first password\n")
    )

    key_file = tmp_path / "recovery.txt"
    created = _cli(env, "recovery-key", "create", "--out", str(key_file), stdin="first password\n")
    assert "Key UID" in created
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert "recovery keys (Key UID):" in _cli(env, "whoami")

    _cli(env, "logout")
    _cli(env, "forgot", me)
    assert inbox.messages[-1]["Subject"] == "Reset your SecurePACS password"
    _cli(env, "reset", inbox.last_link(), stdin="second password\n")
    needs = _cli(env, "login", me, "--recovery-code", codes[0], stdin="second password\n")
    assert "Load your SecurePACS recovery key" in needs
    restored = _cli(
        env,
        "recover",
        me,
        "--key-file",
        str(key_file),
        "--recovery-code",
        codes[1],
        stdin="second password\n",
    )
    assert _fingerprint(restored) == before
    _cli(env, "logout")
    after = _cli(env, "login", me, "--recovery-code", codes[2], stdin="second password\n")
    assert _fingerprint(after) == before
    old = subprocess.run(
        [CLI, "login", me, "--recovery-code", codes[3]],
        input="first password\n",
        env=env,
        capture_output=True,
        text=True,
    )
    assert old.returncode == 1
    changed = _cli(env, "passwd", stdin="second password\nthird password\n")
    assert "Password changed" in changed
    _cli(env, "logout")
    third = _cli(env, "login", me, "--recovery-code", codes[4], stdin="third password\n")
    assert _fingerprint(third) == before
