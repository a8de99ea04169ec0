"""Shared test setup: the vector corpus and the stdlib-only runners beside it."""

from __future__ import annotations

import email
import json
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aiosmtpd.controller import Controller

from securepacs.crypto import account
from securepacs.crypto._random import SeededRandom

# A real S3-compatible store (SeaweedFS) for the blob store and pipeline tests.
pytest_plugins = ("tests.object_stores",)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from securepacs.crypto import AccountKeys

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "tests" / "vectors"
WYCHEPROOF = ROOT.parent / "shared" / "vectors" / "wycheproof"

# The runners are plain modules so that Pyodide can load them as files; make them importable.
sys.path.insert(0, str(VECTORS))


def seeded_account(seed: bytes | str) -> AccountKeys:
    """An account key bundle drawn from a seed, without Argon2id (tests of formats need no KDF)."""
    raw = seed.encode() if isinstance(seed, str) else seed
    return account._new_bundle(SeededRandom(b"test-account/" + raw))


def load_vectors() -> list[dict[str, Any]]:
    """Every vector case under tests/vectors/, in a stable order."""
    return [
        json.loads(path.read_text(encoding="utf-8")) for path in sorted(VECTORS.glob("*/*.json"))
    ]


@pytest.fixture(scope="session")
def vector_cases() -> list[dict[str, Any]]:
    """The vector corpus, read once."""
    cases = load_vectors()
    assert len(cases) >= 100, "the vector corpus is missing; run `just vectors`"
    return cases


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class SmtpInbox:
    """An aiosmtpd handler that keeps every message the real SMTP server receives."""

    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []
        self.port = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def last_link(self) -> str:
        """The first link in the newest message."""
        payload = self.messages[-1].get_payload(decode=True)
        assert isinstance(payload, bytes)
        return next(w for w in payload.decode().split() if w.startswith("http"))


def running_inbox() -> Iterator[SmtpInbox]:
    """A real SMTP server on a free loopback port: ``yield from`` it in a fixture."""
    inbox = SmtpInbox()
    inbox.port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=inbox.port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()


@pytest.fixture
def smtp_inbox() -> Iterator[SmtpInbox]:
    """A real SMTP server on a free loopback port, and what it received."""
    yield from running_inbox()
