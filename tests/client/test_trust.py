"""Whose keys the client trusts: remembered fingerprints, and the signers of a manifest (ZK-4)."""

from __future__ import annotations

import secrets
import stat
from typing import TYPE_CHECKING

import pytest

from securepacs.client.api import EndorsementView
from securepacs.client.trust import (
    FingerprintChanged,
    FingerprintMemory,
    KeysRefused,
    trusted_signers,
)
from securepacs.crypto import (
    PERMISSION_ADMIN,
    PERMISSION_DOWNLOAD,
    PERMISSION_EDIT,
    PERMISSION_VIEW,
    StudyKey,
    create_account,
    fingerprint,
    seal_grant,
)
from securepacs.crypto.kdf import insecure_kdf_floor_for_tests, new_kdf_params

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from securepacs.crypto import AccountKeys

pytestmark = pytest.mark.usefixtures("cheap_kdf")


def _keys() -> AccountKeys:
    return create_account("pw", kdf=new_kdf_params(opslimit=1, memlimit_kib=8)).keys


@pytest.fixture
def cheap_kdf() -> Iterator[None]:
    """Argon2id at libsodium's minimum: these accounts only need their keys."""
    with insecure_kdf_floor_for_tests():
        yield


STUDY = secrets.token_bytes(16)
OTHER_STUDY = secrets.token_bytes(16)
KEY = StudyKey(secrets.token_bytes(32))


def _endorse(
    granter: AccountKeys, recipient: AccountKeys, permission: int, study: bytes = STUDY
) -> EndorsementView:
    grant = seal_grant(granter, recipient.public, study, KEY, permission, 0)
    return EndorsementView(grant=grant, recipient_keys=recipient.public.encoded)


def test_a_first_fingerprint_is_remembered_and_a_changed_one_refused(tmp_path: Path) -> None:
    ada, mallory = _keys(), _keys()
    seen: list[dict[str, str]] = []
    path = tmp_path / "fingerprints.json"
    memory = FingerprintMemory(path, on_change=seen.append)
    first = memory.identify(" Ada@Example.org ", ada.public.encoded)
    assert (first.email, first.seen, first.fingerprint) == (
        "ada@example.org",
        "new",
        fingerprint(ada.public),
    )
    assert seen == [{"ada@example.org": fingerprint(ada.public)}]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # Another run of the client reads the file: the same keys are "same", others refused.
    again = FingerprintMemory(path)
    assert again.identify("ada@example.org", ada.public.encoded).seen == "same"
    with pytest.raises(FingerprintChanged) as changed:
        again.identify("ada@example.org", mallory.public.encoded)
    assert (changed.value.before, changed.value.now) == (
        fingerprint(ada.public),
        fingerprint(mallory.public),
    )
    assert "Compare the new fingerprint" in str(changed.value)
    # Once checked with the person, forgetting lets the new keys in.
    again.forget("ada@example.org")
    assert again.identify("ada@example.org", mallory.public.encoded).seen == "new"


def test_keys_that_do_not_verify_are_refused_and_not_remembered() -> None:
    ada = _keys()
    broken = bytearray(ada.public.encoded)
    broken[-1] ^= 1
    memory = FingerprintMemory()
    for data in (bytes(broken), b"", b"\x00" * 10):
        with pytest.raises(KeysRefused, match="not valid"):
            memory.identify("ada@example.org", data)
    assert memory.snapshot() == {}


def test_learned_fingerprints_do_not_overwrite_what_was_seen() -> None:
    ada, bob = _keys(), _keys()
    memory = FingerprintMemory(initial={"ada@example.org": fingerprint(ada.public)})
    memory.learn({"ADA@example.org": "00000 00000", "bob@example.org": fingerprint(bob.public)})
    assert memory.recall("ada@example.org") == fingerprint(ada.public)
    assert memory.identify("bob@example.org", bob.public.encoded).seen == "same"


def test_trust_flows_down_edit_and_admin_grants_from_trusted_keys_only() -> None:
    ada, bob, carol, dave, erin, mallory = (_keys() for _ in range(6))
    endorsements = [
        _endorse(ada, bob, PERMISSION_ADMIN),  # Ada made Bob an admin
        _endorse(bob, carol, PERMISSION_EDIT),  # who gave Carol Edit
        _endorse(ada, dave, PERMISSION_DOWNLOAD),  # Download does not let Dave sign
        _endorse(mallory, ada, PERMISSION_ADMIN),  # a grant *to* a trusted person: no upward trust
        _endorse(mallory, erin, PERMISSION_EDIT),  # Mallory is trusted by no one
        _endorse(ada, erin, PERMISSION_EDIT, OTHER_STUDY),  # Edit on another study
    ]
    trusted = trusted_signers({ada.public.ed25519}, endorsements, STUDY)
    assert trusted == {ada.public.ed25519, bob.public.ed25519, carol.public.ed25519}
    # The order the server lists them in does not matter.
    assert trusted_signers({ada.public.ed25519}, reversed(endorsements), STUDY) == trusted
    # Nothing is trusted without an anchor.
    assert trusted_signers(set(), endorsements, STUDY) == set()


def test_endorsements_that_do_not_verify_are_ignored() -> None:
    ada, bob, carol = _keys(), _keys(), _keys()
    good = _endorse(ada, bob, PERMISSION_EDIT)
    tampered = bytearray(good.grant)
    tampered[-1] ^= 1
    cases = [
        EndorsementView(grant=bytes(tampered), recipient_keys=bob.public.encoded),
        # Bob's grant with Carol's keys: the server would pass off Carol as the editor.
        EndorsementView(grant=good.grant, recipient_keys=carol.public.encoded),
        EndorsementView(grant=good.grant, recipient_keys=b"not keys"),
        _endorse(ada, bob, PERMISSION_VIEW),
    ]
    for case in cases:
        assert trusted_signers({ada.public.ed25519}, [case], STUDY) == {ada.public.ed25519}
    assert trusted_signers({ada.public.ed25519}, [good], STUDY) == {
        ada.public.ed25519,
        bob.public.ed25519,
    }
