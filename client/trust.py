"""Whose keys this client trusts: remembered fingerprints and the signers of a study's manifest.

The server hands out other people's public keys; it could hand out its own instead (ZK-4).
People compare fingerprints to catch that, and this client remembers every fingerprint it has
seen per email, so that a later change is flagged instead of silently trusted (protocol.md
§5.6). A study's manifest is accepted only from signers this client can vouch for (§6.4,
§15.4): its own key, the people it received the study from or knows as the owner (fingerprints
checked), and whoever one of those gave Edit or Admin with a signed grant.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from securepacs.crypto import (
    PERMISSION_EDIT,
    CryptoError,
    fingerprint,
    grant_info,
    open_public_keys,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from pathlib import Path

    from securepacs.client.api import EndorsementView
    from securepacs.crypto import PublicKeys

__all__ = (
    "NEW",
    "SAME",
    "FingerprintChanged",
    "FingerprintMemory",
    "Identity",
    "KeysRefused",
    "trusted_signers",
    "verified_keys",
)

NEW: Final = "new"
SAME: Final = "same"


class KeysRefused(Exception):
    """The public keys the server gave for someone do not verify; the message says what to do."""


class FingerprintChanged(Exception):
    """Someone's keys differ from the ones this client saw for them before (ZK-4)."""

    def __init__(self, email: str, before: str, now: str) -> None:
        super().__init__(
            f"The keys of {email} changed since this device last saw them (fingerprint was "
            f"{before}, now {now}). This happens when they reset their account, or when the "
            "server substitutes keys. Compare the new fingerprint with them in person or by "
            "phone; if it matches, accept it (Trust the new key in the browser, `securepacs "
            "trust EMAIL FINGERPRINT` on the command line) before you share with or trust them "
            "again."
        )
        self.email = email
        self.before = before
        self.now = now


@dataclass(frozen=True, slots=True)
class Identity:
    """A person's verified keys, and whether this client had seen their fingerprint before."""

    email: str
    keys: PublicKeys
    fingerprint: str
    # "new": first seen now (compare it with them); "same": as remembered.
    seen: str


class FingerprintMemory:
    """Fingerprints seen per email, kept in a file (the CLI) or in memory (tests, the worker).

    ``on_change`` hears the whole map whenever it grows, so that the browser worker can keep it
    where the page keeps its other local state.
    """

    def __init__(
        self,
        path: Path | None = None,
        initial: Mapping[str, str] | None = None,
        on_change: Callable[[dict[str, str]], None] | None = None,
    ) -> None:
        self.path = path
        self.on_change = on_change
        self._seen: dict[str, str] = dict(initial or {})
        if path is not None and path.is_file():
            with contextlib.suppress(ValueError, OSError):
                loaded = json.loads(path.read_text(encoding="utf-8"))
                if isinstance(loaded, dict):
                    self._seen.update({str(k): str(v) for k, v in loaded.items()})

    def recall(self, email: str) -> str | None:
        """The fingerprint seen for ``email`` before, if any."""
        return self._seen.get(email.strip().lower())

    def snapshot(self) -> dict[str, str]:
        """Every remembered fingerprint."""
        return dict(self._seen)

    def learn(self, seen: Mapping[str, str]) -> None:
        """Take fingerprints remembered elsewhere (the page's storage); known emails keep theirs."""
        for email, value in seen.items():
            self._seen.setdefault(email.strip().lower(), str(value))

    def accept(self, email: str, fingerprint: str) -> None:
        """Remember ``fingerprint`` for ``email`` in place of the one before.

        Only for a fingerprint the person compared with its owner: :meth:`Sharing.accept_keys`
        checks that it is the one the server serves now.
        """
        self._seen[email.strip().lower()] = fingerprint
        self._save()

    def forget(self, email: str) -> None:
        """Drop a remembered fingerprint (the person reset their account and it was checked)."""
        if self._seen.pop(email.strip().lower(), None) is not None:
            self._save()

    def identify(self, email: str, data: bytes) -> Identity:
        """Verify ``data`` as ``email``'s public keys and compare with what was seen before.

        A first sighting is remembered at once (trust on first use), and reported as "new" so
        that a person can be shown the fingerprint to compare.

        Raises:
            KeysRefused: the keys' self-signature does not verify.
            FingerprintChanged: they differ from the ones remembered for this email.
        """
        keys = verified_keys(data)
        if keys is None:
            raise KeysRefused(
                f"The server sent keys for {email} that are not valid. Nothing was shared or "
                "opened. Try again later, and tell the server's operator if it persists."
            )
        email = email.strip().lower()
        now = fingerprint(keys)
        before = self._seen.get(email)
        if before is not None and before != now:
            raise FingerprintChanged(email, before, now)
        if before is None:
            self._seen[email] = now
            self._save()
        return Identity(
            email=email, keys=keys, fingerprint=now, seen=NEW if before is None else SAME
        )

    def _save(self) -> None:
        if self.on_change is not None:
            self.on_change(dict(self._seen))
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = self.path.with_suffix(".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(self._seen, handle, sort_keys=True)
        temporary.replace(self.path)


def verified_keys(data: bytes | None) -> PublicKeys | None:
    """Public keys whose self-signature verifies, or None."""
    if not data:
        return None
    try:
        return open_public_keys(data)
    except CryptoError:
        return None


def trusted_signers(
    anchors: Iterable[bytes], endorsements: Iterable[EndorsementView], study_id: bytes
) -> set[bytes]:
    """The Ed25519 keys whose manifests this reader accepts (protocol.md §15.4).

    ``anchors`` are keys the reader vouches for itself. From them, trust flows only downwards:
    a grant of Edit or Admin signed by a trusted key makes its recipient trusted, whatever
    the server adds, because the server cannot sign for a trusted key. A grant of another
    study, or a grant or key bundle that does not verify, is ignored.
    """
    trusted = set(anchors)
    edges: list[tuple[bytes, bytes]] = []
    for endorsement in endorsements:
        keys = verified_keys(endorsement.recipient_keys)
        try:
            grant = grant_info(endorsement.grant)
        except CryptoError:
            continue
        if (
            keys is None
            or grant.study_id != study_id
            or grant.recipient != keys.x25519
            or grant.permission < PERMISSION_EDIT
        ):
            continue
        edges.append((grant.granter, keys.ed25519))
    grown = True
    while grown:
        grown = False
        for granter, recipient in edges:
            if granter in trusted and recipient not in trusted:
                trusted.add(recipient)
                grown = True
    return trusted
