"""Edges of the public API: misuse raises TypeError/ValueError, the KDF floor, slot dispatch.

Bad *data* raises a ``CryptoError`` subclass (the other modules check that); bad *arguments*
from the calling code raise ``TypeError`` or ``ValueError`` before anything is sealed, so a
programming error can never produce an envelope that nobody can open.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Final

import pytest

import securepacs.crypto as c
from securepacs.crypto import keys as keys_module
from securepacs.crypto._random import SeededRandom
from securepacs.crypto.kdf import (
    ARGON2_MAX_MEMORY_KIB,
    ARGON2_MAX_OPSLIMIT,
    ARGON2_MEMORY_KIB,
    ARGON2_OPSLIMIT,
    insecure_kdf_floor_for_tests,
)
from securepacs.crypto.stream import CHUNK_LOG2_MAX, CHUNK_LOG2_MIN, HEADER_BYTES, TAG_BYTES

if TYPE_CHECKING:
    from collections.abc import Callable

PASSWORD: Final = "correct horse battery staple"
KEY_CLASSES: Final = tuple(
    cls
    for cls in vars(keys_module).values()
    if isinstance(cls, type) and issubclass(cls, keys_module._SecretKey)
    if cls is not keys_module._SecretKey
)
BAD_IDS: Final = (b"", b"\x01" * 15, b"\x01" * 17, b"\x01" * 32)


def _rng(name: str) -> SeededRandom:
    return SeededRandom(hashlib.sha256(name.encode()).digest())


def _cheap_kdf(name: str = "kdf") -> c.KdfParams:
    """Argon2id at libsodium's minimum; only valid inside ``insecure_kdf_floor_for_tests``."""
    return c.new_kdf_params(_rng(name), opslimit=1, memlimit_kib=8)


def _new_account(name: str, phrase: str = PASSWORD) -> c.NewAccount:
    with insecure_kdf_floor_for_tests():
        return c.create_account(phrase, _rng(name), kdf=_cheap_kdf(name))


def _study_key(name: str = "study") -> c.StudyKey:
    return c.StudyKey(hashlib.sha256(f"study-key/{name}".encode()).digest())


def _same_account(a: c.AccountKeys, b: c.AccountKeys) -> bool:
    return a.public == b.public and a.account_key == b.account_key


# --- key classes -------------------------------------------------------------------------------


def test_key_classes_cover_every_role() -> None:
    names = {cls.__name__ for cls in KEY_CLASSES}
    assert names == {
        "AuthKey",
        "PasswordKek",
        "RecoveryKey",
        "PasskeyPrfOutput",
        "AccountKey",
        "StudyKey",
        "ContentKey",
        "WrapKey",
        "LinkSecret",
    }


@pytest.mark.parametrize("cls", KEY_CLASSES, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("size", [0, 1, 16, 31, 33, 64])
def test_key_constructor_wrong_size_raises_value_error(cls: type, size: int) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        cls(b"\x07" * size)


@pytest.mark.parametrize("cls", KEY_CLASSES, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize(
    "material",
    [bytearray(32), memoryview(bytes(32)), "0" * 32, [0] * 32, None, 32],
    ids=["bytearray", "memoryview", "str", "list", "none", "int"],
)
def test_key_constructor_non_bytes_raises_type_error(cls: type, material: object) -> None:
    with pytest.raises(TypeError):
        cls(material)


@pytest.mark.parametrize("cls", KEY_CLASSES, ids=lambda cls: cls.__name__)
def test_key_constructor_accepts_32_bytes(cls: type) -> None:
    key = cls(bytes(range(32)))
    assert key == cls(bytes(range(32)))


# --- passwords ---------------------------------------------------------------------------------


def test_create_account_empty_password_raises_value_error() -> None:
    with insecure_kdf_floor_for_tests(), pytest.raises(ValueError, match="empty"):
        c.create_account("", _rng("empty"), kdf=_cheap_kdf())


@pytest.mark.parametrize("password", [b"password", None, 12345], ids=["bytes", "none", "int"])
def test_derive_password_keys_non_str_password_raises_type_error(password: object) -> None:
    with insecure_kdf_floor_for_tests(), pytest.raises(TypeError):
        c.derive_password_keys(password, _cheap_kdf())  # type: ignore[arg-type]


def test_derive_password_keys_overlong_password_raises_value_error() -> None:
    with insecure_kdf_floor_for_tests():
        params = _cheap_kdf()
        c.derive_password_keys("x" * 4096, params)
        with pytest.raises(ValueError, match="4096"):
            c.derive_password_keys("x" * 4097, params)
        # The limit is on the UTF-8 bytes, not on the characters.
        with pytest.raises(ValueError, match="4096"):
            c.derive_password_keys("\u00e9" * 2049, params)


def test_derive_password_keys_wrong_salt_length_raises_value_error() -> None:
    with insecure_kdf_floor_for_tests():
        for salt in (b"", b"s" * 15, b"s" * 17):
            params = c.KdfParams(alg=1, opslimit=1, memlimit_kib=8, salt=salt)
            with pytest.raises(ValueError):
                c.derive_password_keys(PASSWORD, params)


def test_unlock_with_password_empty_password_raises_value_error() -> None:
    new = _new_account("unlock-empty")
    with insecure_kdf_floor_for_tests(), pytest.raises(ValueError):
        c.unlock_with_password("", new.password_slot)


def test_change_password_empty_password_raises_value_error() -> None:
    new = _new_account("change-empty")
    with insecure_kdf_floor_for_tests(), pytest.raises(ValueError):
        c.change_password(new.keys, "", _rng("x"), kdf=_cheap_kdf())


def test_link_access_empty_password_raises_value_error() -> None:
    secret = c.LinkSecret(bytes(range(32)))
    with pytest.raises(ValueError, match="empty"):
        c.link_access(secret, "")


# --- the KDF floor -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("opslimit", "memlimit_kib"),
    [
        (1, 8),
        (ARGON2_OPSLIMIT - 1, ARGON2_MEMORY_KIB),
        (ARGON2_OPSLIMIT, ARGON2_MEMORY_KIB - 1),
        (0, 0),
    ],
)
def test_kdf_floor_rejects_low_parameters_outside_the_hook(
    opslimit: int, memlimit_kib: int
) -> None:
    with pytest.raises(c.ParametersRejected):
        c.new_kdf_params(_rng("low"), opslimit=opslimit, memlimit_kib=memlimit_kib)
    params = c.KdfParams(alg=1, opslimit=opslimit, memlimit_kib=memlimit_kib, salt=bytes(16))
    with pytest.raises(c.ParametersRejected):
        c.derive_password_keys(PASSWORD, params)


def test_kdf_floor_accepts_v1_defaults_outside_the_hook() -> None:
    params = c.new_kdf_params(_rng("defaults"))
    assert (params.alg, params.opslimit, params.memlimit_kib) == (
        1,
        ARGON2_OPSLIMIT,
        ARGON2_MEMORY_KIB,
    )
    assert len(params.salt) == 16


def test_kdf_floor_accepts_low_parameters_inside_the_hook() -> None:
    with insecure_kdf_floor_for_tests():
        params = c.new_kdf_params(_rng("cheap"), opslimit=1, memlimit_kib=8)
        keys = c.derive_password_keys(PASSWORD, params)
        again = c.derive_password_keys(PASSWORD, params)
    assert keys.auth_key == again.auth_key
    assert keys.kek == again.kek


def test_kdf_floor_is_restored_after_the_hook() -> None:
    with insecure_kdf_floor_for_tests():
        c.new_kdf_params(_rng("in"), opslimit=1, memlimit_kib=8)
    with pytest.raises(c.ParametersRejected):
        c.new_kdf_params(_rng("out"), opslimit=1, memlimit_kib=8)


def test_kdf_floor_is_restored_when_the_hook_body_raises() -> None:
    with pytest.raises(RuntimeError, match="boom"), insecure_kdf_floor_for_tests():
        raise RuntimeError("boom")
    with pytest.raises(c.ParametersRejected):
        c.new_kdf_params(_rng("out"), opslimit=1, memlimit_kib=8)


def test_kdf_hook_cannot_go_below_libsodium_minimum() -> None:
    with insecure_kdf_floor_for_tests(opslimit=0, memlimit_kib=0):
        with pytest.raises(c.ParametersRejected):
            c.new_kdf_params(_rng("zero-ops"), opslimit=0, memlimit_kib=8)
        with pytest.raises(c.ParametersRejected):
            c.new_kdf_params(_rng("tiny-mem"), opslimit=1, memlimit_kib=7)
        c.new_kdf_params(_rng("min"), opslimit=1, memlimit_kib=8)


def test_kdf_hook_with_custom_floor_rejects_below_it() -> None:
    with insecure_kdf_floor_for_tests(opslimit=2, memlimit_kib=16):
        with pytest.raises(c.ParametersRejected):
            c.new_kdf_params(_rng("a"), opslimit=1, memlimit_kib=16)
        with pytest.raises(c.ParametersRejected):
            c.new_kdf_params(_rng("b"), opslimit=2, memlimit_kib=15)
        c.new_kdf_params(_rng("c"), opslimit=2, memlimit_kib=16)


@pytest.mark.parametrize(
    ("opslimit", "memlimit_kib"),
    [(ARGON2_MAX_OPSLIMIT + 1, 8), (1, ARGON2_MAX_MEMORY_KIB + 1), (2**32 - 1, 2**32 - 1)],
)
def test_kdf_ceiling_applies_inside_the_hook(opslimit: int, memlimit_kib: int) -> None:
    with insecure_kdf_floor_for_tests(), pytest.raises(c.ParametersRejected):
        c.new_kdf_params(_rng("huge"), opslimit=opslimit, memlimit_kib=memlimit_kib)


@pytest.mark.parametrize("alg", [0, 2, 13])
def test_kdf_unknown_algorithm_raises_unsupported_version(alg: int) -> None:
    params = c.KdfParams(
        alg=alg, opslimit=ARGON2_OPSLIMIT, memlimit_kib=ARGON2_MEMORY_KIB, salt=bytes(16)
    )
    with pytest.raises(c.UnsupportedVersion):
        c.derive_password_keys(PASSWORD, params)


def test_unlock_with_password_cheap_slot_outside_the_hook_raises_parameters_rejected() -> None:
    new = _new_account("downgrade")
    with pytest.raises(c.ParametersRejected):
        c.unlock_with_password(PASSWORD, new.password_slot)


def test_create_account_without_kdf_uses_v1_defaults() -> None:
    new = c.create_account(PASSWORD, _rng("default-account"))
    kdf = c.slot_info(new.password_slot).kdf
    assert kdf is not None
    assert (kdf.alg, kdf.opslimit, kdf.memlimit_kib) == (1, ARGON2_OPSLIMIT, ARGON2_MEMORY_KIB)


# --- key slots ---------------------------------------------------------------------------------


def _recovery(name: str) -> c.RecoveryKey:
    return c.new_recovery_key(_rng(f"recovery/{name}"))


def _passkey(name: str) -> c.PasskeyPrfOutput:
    return c.PasskeyPrfOutput(hashlib.sha256(f"prf/{name}".encode()).digest())


def test_seal_slot_password_without_kdf_raises_value_error() -> None:
    new = _new_account("slot-no-kdf")
    with pytest.raises(ValueError, match="KdfParams"):
        c.seal_slot(new.keys, new.password_keys.kek, _rng("n"))


@pytest.mark.parametrize("kind", ["recovery", "passkey"])
def test_seal_slot_secret_slot_with_kdf_raises_value_error(kind: str) -> None:
    new = _new_account("slot-with-kdf")
    secret = _recovery("a") if kind == "recovery" else _passkey("a")
    with insecure_kdf_floor_for_tests(), pytest.raises(ValueError, match="KdfParams"):
        c.seal_slot(new.keys, secret, _rng("n"), kdf=_cheap_kdf())


def test_seal_slot_and_open_slot_password_round_trip() -> None:
    new = _new_account("slot-password")
    with insecure_kdf_floor_for_tests():
        params = _cheap_kdf("second")
        password_keys = c.derive_password_keys("second password", params)
        slot = c.seal_slot(new.keys, password_keys.kek, _rng("seal"), kdf=params)
    info = c.slot_info(slot)
    assert info.slot_type == c.SLOT_PASSWORD
    assert info.kdf == params
    assert info.key_uid == b""
    assert _same_account(c.open_slot(slot, password_keys.kek), new.keys)
    with insecure_kdf_floor_for_tests():
        unlocked, unlocked_keys = c.unlock_with_password("second password", slot)
    assert _same_account(unlocked, new.keys)
    assert unlocked_keys.auth_key == password_keys.auth_key


@pytest.mark.parametrize("kind", ["recovery", "passkey"])
def test_seal_slot_and_open_slot_secret_round_trip(kind: str) -> None:
    new = _new_account(f"slot-{kind}")
    secret: c.RecoveryKey | c.PasskeyPrfOutput = (
        _recovery(kind) if kind == "recovery" else _passkey(kind)
    )
    slot = c.seal_slot(new.keys, secret, _rng("seal"))
    info = c.slot_info(slot)
    assert info.slot_type == (c.SLOT_RECOVERY if kind == "recovery" else c.SLOT_PASSKEY_PRF)
    assert info.kdf is None
    assert info.key_uid == c.key_uid(secret)
    assert _same_account(c.open_slot(slot, secret), new.keys)
    assert _same_account(c.unlock_with_secret([new.password_slot, slot], secret), new.keys)


def test_key_uid_formatted_is_the_slot_key_uid_in_hex() -> None:
    key = _recovery("uid")
    assert c.format_key_uid(key) == c.key_uid(key).hex()
    assert len(c.key_uid(key)) == 16
    # The same 32 bytes as a passkey output get another Key UID: the label differs.
    assert c.key_uid(c.PasskeyPrfOutput(key._material)) != c.key_uid(key)


@pytest.mark.parametrize("kind", ["recovery", "passkey"])
def test_unlock_with_password_on_secret_slot_raises_no_matching_key(kind: str) -> None:
    new = _new_account("unlock-on-secret")
    secret = _recovery(kind) if kind == "recovery" else _passkey(kind)
    slot = c.seal_slot(new.keys, secret, _rng("seal"))
    with insecure_kdf_floor_for_tests(), pytest.raises(c.NoMatchingKey):
        c.unlock_with_password(PASSWORD, slot)


def test_open_slot_with_secret_of_another_type_raises_no_matching_key() -> None:
    new = _new_account("cross-type")
    recovery, passkey = _recovery("x"), _passkey("x")
    slots: dict[str, bytes] = {
        "password": new.password_slot,
        "recovery": c.seal_slot(new.keys, recovery, _rng("r")),
        "passkey": c.seal_slot(new.keys, passkey, _rng("p")),
    }
    secrets: dict[str, c.PasswordKek | c.RecoveryKey | c.PasskeyPrfOutput] = {
        "password": new.password_keys.kek,
        "recovery": recovery,
        "passkey": passkey,
    }
    for slot_kind, slot in slots.items():
        for secret_kind, secret in secrets.items():
            if slot_kind == secret_kind:
                assert _same_account(c.open_slot(slot, secret), new.keys)
            else:
                with pytest.raises(c.NoMatchingKey):
                    c.open_slot(slot, secret)


@pytest.mark.parametrize("kind", ["recovery", "passkey"])
def test_open_slot_with_another_secret_of_same_type_raises_no_matching_key(kind: str) -> None:
    new = _new_account("other-secret")
    mine: c.RecoveryKey | c.PasskeyPrfOutput
    other: c.RecoveryKey | c.PasskeyPrfOutput
    if kind == "recovery":
        mine, other = _recovery("mine"), _recovery("other")
    else:
        mine, other = _passkey("mine"), _passkey("other")
    slot = c.seal_slot(new.keys, mine, _rng("seal"))
    with pytest.raises(c.NoMatchingKey):
        c.open_slot(slot, other)
    with pytest.raises(c.NoMatchingKey):
        c.unlock_with_secret([new.password_slot, slot], other)


def test_unlock_with_secret_without_slots_raises_no_matching_key() -> None:
    with pytest.raises(c.NoMatchingKey):
        c.unlock_with_secret([], _recovery("none"))


def test_unlock_with_secret_picks_its_own_slot_among_several() -> None:
    first, second = _new_account("first"), _new_account("second")
    key_a, key_b = _recovery("a"), _recovery("b")
    slots = [
        first.password_slot,
        c.seal_slot(first.keys, key_a, _rng("a")),
        c.seal_slot(second.keys, key_b, _rng("b")),
    ]
    assert _same_account(c.unlock_with_secret(slots, key_a), first.keys)
    assert _same_account(c.unlock_with_secret(slots, key_b), second.keys)


def test_open_password_slot_with_wrong_kek_raises_authentication_failed() -> None:
    new = _new_account("wrong-kek")
    other = _new_account("wrong-kek-other", phrase="another password")
    with pytest.raises(c.AuthenticationFailed):
        c.open_slot(new.password_slot, other.password_keys.kek)


def test_unlock_with_password_wrong_password_raises_authentication_failed() -> None:
    new = _new_account("wrong-password")
    with insecure_kdf_floor_for_tests(), pytest.raises(c.AuthenticationFailed):
        c.unlock_with_password(PASSWORD + "!", new.password_slot)


def test_unlock_with_password_normalises_to_nfc() -> None:
    new = _new_account("nfc", phrase="Cafe\u0301")
    with insecure_kdf_floor_for_tests():
        keys, _ = c.unlock_with_password("Caf\u00e9", new.password_slot)
    assert _same_account(keys, new.keys)


# --- change_password ---------------------------------------------------------------------------


def test_change_password_keeps_keys_and_old_slot_keeps_old_password() -> None:
    new = _new_account("change")
    with insecure_kdf_floor_for_tests():
        new_params = _cheap_kdf("change-new")
        password_keys, new_slot = c.change_password(
            new.keys, "new password", _rng("change-seal"), kdf=new_params
        )
        via_new, new_unlock_keys = c.unlock_with_password("new password", new_slot)
        via_old, old_unlock_keys = c.unlock_with_password(PASSWORD, new.password_slot)
        with pytest.raises(c.AuthenticationFailed):
            c.unlock_with_password(PASSWORD, new_slot)
        with pytest.raises(c.AuthenticationFailed):
            c.unlock_with_password("new password", new.password_slot)
    assert via_new.public == new.keys.public
    assert via_old.public == new.keys.public
    assert _same_account(via_new, new.keys)
    assert _same_account(via_old, new.keys)
    assert new_unlock_keys.auth_key == password_keys.auth_key
    assert old_unlock_keys.auth_key == new.password_keys.auth_key
    assert password_keys.auth_key != new.password_keys.auth_key
    new_kdf, old_kdf = c.slot_info(new_slot).kdf, c.slot_info(new.password_slot).kdf
    assert new_kdf == new_params
    assert old_kdf is not None
    assert new_kdf.salt != old_kdf.salt


def test_change_password_to_same_password_with_new_salt_changes_auth_key() -> None:
    new = _new_account("same-password")
    with insecure_kdf_floor_for_tests():
        password_keys, slot = c.change_password(
            new.keys, PASSWORD, _rng("same-seal"), kdf=_cheap_kdf("same-new-salt")
        )
        keys, _ = c.unlock_with_password(PASSWORD, slot)
    assert password_keys.auth_key != new.password_keys.auth_key
    assert _same_account(keys, new.keys)


# --- permissions, ids, expiry ------------------------------------------------------------------


@pytest.mark.parametrize("permission", [0, 5, -1, 255, 2**40])
def test_seal_grant_unknown_permission_raises_value_error(permission: int) -> None:
    granter, recipient = _new_account("granter"), _new_account("recipient")
    with pytest.raises(ValueError, match="permission"):
        c.seal_grant(granter.keys, recipient.keys.public, bytes(16), _study_key(), permission, 0)


@pytest.mark.parametrize("permission", [0, 5, -1, 255, 2**40])
def test_seal_link_unknown_permission_raises_value_error(permission: int) -> None:
    creator = _new_account("creator")
    access = c.link_access(c.new_link_secret(_rng("secret")), None)
    with pytest.raises(ValueError, match="permission"):
        c.seal_link(creator.keys, access, bytes(16), bytes(16), _study_key(), permission, 0)


@pytest.mark.parametrize("expires_at", [-1, 2**63, 2**64])
def test_seal_grant_out_of_range_expiry_raises_value_error(expires_at: int) -> None:
    granter, recipient = _new_account("granter"), _new_account("recipient")
    with pytest.raises(ValueError, match="expires_at"):
        c.seal_grant(
            granter.keys,
            recipient.keys.public,
            bytes(16),
            _study_key(),
            c.PERMISSION_VIEW,
            expires_at,
        )


@pytest.mark.parametrize("expires_at", [-1, 2**63, 2**64])
def test_seal_link_out_of_range_expiry_raises_value_error(expires_at: int) -> None:
    # Like seal_grant: an expiry the envelope format cannot carry is the caller's mistake, and
    # must not produce a signed link envelope that open_link then rejects as malformed.
    creator = _new_account("creator")
    access = c.link_access(c.new_link_secret(_rng("secret")), None)
    with pytest.raises(ValueError, match="expires_at"):
        c.seal_link(
            creator.keys,
            access,
            bytes(16),
            bytes(16),
            _study_key(),
            c.PERMISSION_VIEW,
            expires_at,
        )


def _study_id_users() -> list[tuple[str, Callable[[bytes], object]]]:
    account = _new_account("ids")
    recipient = _new_account("ids-recipient")
    access = c.link_access(c.new_link_secret(_rng("ids-secret")), None)
    key = _study_key()
    return [
        ("wrap_study_key", lambda sid: c.wrap_study_key(account.keys.account_key, sid, key)),
        ("seal_metadata", lambda sid: c.seal_metadata(key, sid, b"{}")),
        ("seal_note", lambda sid: c.seal_note(key, sid, bytes(16), "note")),
        ("seal_manifest", lambda sid: c.seal_manifest(key, sid, 1, [], account.keys)),
        (
            "seal_grant",
            lambda sid: c.seal_grant(
                account.keys, recipient.keys.public, sid, key, c.PERMISSION_VIEW, 0
            ),
        ),
        (
            "seal_link",
            lambda sid: c.seal_link(
                account.keys, access, bytes(16), sid, key, c.PERMISSION_VIEW, 0
            ),
        ),
    ]


@pytest.mark.parametrize("study_id", BAD_IDS, ids=lambda b: f"{len(b)}-bytes")
def test_sealers_bad_study_id_length_raise_value_error(study_id: bytes) -> None:
    for name, seal in _study_id_users():
        with pytest.raises(ValueError, match="16 bytes"):
            seal(study_id)
        # The same call with a well-formed id succeeds, so the length is what was refused.
        assert isinstance(seal(bytes(16)), bytes), name


@pytest.mark.parametrize("link_id", BAD_IDS, ids=lambda b: f"{len(b)}-bytes")
def test_seal_link_bad_link_id_length_raises_value_error(link_id: bytes) -> None:
    creator = _new_account("creator")
    access = c.link_access(c.new_link_secret(_rng("secret")), None)
    with pytest.raises(ValueError, match="16 bytes"):
        c.seal_link(creator.keys, access, link_id, bytes(16), _study_key(), c.PERMISSION_VIEW, 0)


def test_seal_metadata_over_one_mebibyte_raises_value_error() -> None:
    key = _study_key()
    sealed = c.seal_metadata(key, bytes(16), bytes(1024 * 1024))
    assert c.open_metadata(key, bytes(16), sealed) == bytes(1024 * 1024)
    with pytest.raises(ValueError, match="1 MiB"):
        c.seal_metadata(key, bytes(16), bytes(1024 * 1024 + 1))


@pytest.mark.parametrize("share_id", BAD_IDS, ids=lambda b: f"{len(b)}-bytes")
def test_seal_note_bad_share_id_length_raises_value_error(share_id: bytes) -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        c.seal_note(_study_key(), bytes(16), share_id, "note")


def test_seal_note_empty_text_raises_value_error() -> None:
    with pytest.raises(ValueError, match="empty"):
        c.seal_note(_study_key(), bytes(16), bytes(16), "")


@pytest.mark.parametrize(
    ("unit", "width"),
    [("a", 1), ("\u00e9", 2), ("\u20ac", 3), ("\U0001f600", 4)],
    ids=["ascii", "2-byte", "3-byte", "4-byte"],
)
def test_seal_note_over_4096_utf8_bytes_raises_value_error(unit: str, width: int) -> None:
    key = _study_key()
    # The limit is on the UTF-8 bytes, not on the characters.
    full = unit * (c.MAX_NOTE_BYTES // width) + "a" * (c.MAX_NOTE_BYTES % width)
    assert len(full.encode("utf-8")) == c.MAX_NOTE_BYTES == 4096
    sealed = c.seal_note(key, bytes(16), bytes(16), full)
    assert c.open_note(key, bytes(16), bytes(16), sealed) == full
    for over in (full + "a", unit + full):
        with pytest.raises(ValueError, match="4096 bytes"):
            c.seal_note(key, bytes(16), bytes(16), over)


@pytest.mark.parametrize("text", ["\ud800", "Befund \udcff secret"], ids=["alone", "inside"])
def test_seal_note_lone_surrogate_raises_value_error_without_quoting_it(text: str) -> None:
    with pytest.raises(ValueError, match="surrogate") as raised:
        c.seal_note(_study_key(), bytes(16), bytes(16), text)
    assert "secret" not in str(raised.value)
    assert "\\u" not in repr(raised.value)
    assert raised.value.__cause__ is None
    assert raised.value.__suppress_context__


@pytest.mark.parametrize("text", [b"note", None, 42], ids=["bytes", "none", "int"])
def test_seal_note_non_str_text_raises_type_error(text: object) -> None:
    with pytest.raises(TypeError):
        c.seal_note(_study_key(), bytes(16), bytes(16), text)  # type: ignore[arg-type]


@pytest.mark.parametrize("uid", ["", "1.2.x", "1.2.3 4", "1" * 65, "\u0661.2"])
def test_study_uid_tag_not_a_dicom_uid_raises_value_error(uid: str) -> None:
    account_key = _new_account("uid-tag").keys.account_key
    with pytest.raises(ValueError, match="StudyInstanceUID"):
        c.study_uid_tag(account_key, uid)


def test_study_uid_tag_ignores_dicom_padding() -> None:
    account_key = _new_account("uid-tag").keys.account_key
    tag = c.study_uid_tag(account_key, "1.2.840.10008")
    assert c.study_uid_tag(account_key, "1.2.840.10008\x00") == tag
    assert c.study_uid_tag(account_key, "1.2.840.10008 ") == tag
    assert c.study_uid_tag(account_key, "1.2.840.10009") != tag


@pytest.mark.parametrize(
    ("version", "entry"),
    [
        (0, c.ManifestEntry(bytes(16), 1, 41, bytes(32), "1.2", "1.2.3")),
        (2**32, c.ManifestEntry(bytes(16), 1, 41, bytes(32), "1.2", "1.2.3")),
        (1, c.ManifestEntry(bytes(16), -1, 41, bytes(32), "1.2", "1.2.3")),
        (1, c.ManifestEntry(bytes(15), 1, 41, bytes(32), "1.2", "1.2.3")),
        (1, c.ManifestEntry(bytes(16), 1, 41, bytes(31), "1.2", "1.2.3")),
        (1, c.ManifestEntry(bytes(16), 1, 41, bytes(32), "1" * 65, "1.2.3")),
        (1, c.ManifestEntry(bytes(16), 1, 41, bytes(32), "1.2", "1.2.x")),
    ],
    ids=["version-0", "version-2^32", "negative-size", "file-id", "hash", "long-uid", "bad-uid"],
)
def test_seal_manifest_out_of_range_raises_value_error(
    version: int, entry: c.ManifestEntry
) -> None:
    signer = _new_account("manifest-range").keys
    with pytest.raises(ValueError, match="out of range"):
        c.seal_manifest(_study_key(), bytes(16), version, [entry], signer)


@pytest.mark.parametrize("size", [0, 31, 33])
def test_link_verifier_wrong_access_key_size_raises_value_error(size: int) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        c.link_verifier(bytes(size))


# --- streams -----------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_log2", [-1, 0, CHUNK_LOG2_MIN - 1, CHUNK_LOG2_MAX + 1, 64])
def test_stream_sealer_chunk_log2_out_of_range_raises_value_error(chunk_log2: int) -> None:
    with pytest.raises(ValueError, match="chunk_log2"):
        c.StreamSealer(_study_key(), bytes(16), chunk_log2)
    with pytest.raises(ValueError, match="chunk_log2"):
        c.StreamSealer.new(_study_key(), _rng("file"), chunk_log2=chunk_log2)


@pytest.mark.parametrize("chunk_log2", [CHUNK_LOG2_MIN, CHUNK_LOG2_MAX])
def test_stream_sealer_chunk_log2_bounds_are_accepted(chunk_log2: int) -> None:
    sealer = c.StreamSealer(_study_key(), bytes(16), chunk_log2)
    assert sealer.chunk_size == 1 << chunk_log2
    assert sealer.header[6] == chunk_log2


@pytest.mark.parametrize("file_id", BAD_IDS, ids=lambda b: f"{len(b)}-bytes")
def test_stream_sealer_bad_file_id_length_raises_value_error(file_id: bytes) -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        c.StreamSealer(_study_key(), file_id, CHUNK_LOG2_MIN)


def test_stream_seal_chunk_misuse_raises_value_error() -> None:
    sealer = c.StreamSealer(_study_key(), bytes(16), CHUNK_LOG2_MIN)
    size = sealer.chunk_size
    with pytest.raises(ValueError, match="last chunk"):
        sealer.seal_chunk(0, bytes(size - 1), last=False)
    with pytest.raises(ValueError, match="last chunk"):
        sealer.seal_chunk(0, bytes(size + 1), last=True)
    with pytest.raises(ValueError, match="only chunk"):
        sealer.seal_chunk(1, b"", last=True)
    assert len(sealer.seal_chunk(0, b"", last=True)) == TAG_BYTES
    assert len(sealer.seal_chunk(0, bytes(size), last=False)) == size + TAG_BYTES


def test_stream_opener_index_misuse_raises() -> None:
    key = _study_key()
    sealed = b"".join(c.StreamSealer(key, bytes(16), CHUNK_LOG2_MIN).seal([bytes(5000)]))
    opener = c.StreamOpener(key, bytes(16), sealed[:HEADER_BYTES])
    assert opener.chunk_count(len(sealed)) == 2
    for index in (-1, 2, 2**40):
        with pytest.raises(IndexError):
            opener.chunk_span(index, len(sealed))
    for index in (-1, 2**32):
        with pytest.raises(ValueError, match="chunk index"):
            opener.open_chunk(index, sealed[HEADER_BYTES:], last=True)


# --- other argument types ----------------------------------------------------------------------


def test_envelope_decoders_non_bytes_raise_type_error() -> None:
    new = _new_account("types")
    data = bytearray(new.keys.public.encoded)
    with pytest.raises(TypeError):
        c.open_public_keys(data)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        c.slot_info(bytearray(new.password_slot))  # type: ignore[arg-type]


def test_parse_recovery_text_non_str_raises_type_error() -> None:
    text = c.recovery_text(_recovery("types"))
    with pytest.raises(TypeError):
        c.parse_recovery_text(text.encode())  # type: ignore[arg-type]


def test_open_grant_by_non_recipient_raises_no_matching_key() -> None:
    granter, recipient, third = (_new_account(n) for n in ("g", "r", "t"))
    grant = c.seal_grant(
        granter.keys, recipient.keys.public, bytes(16), _study_key(), c.PERMISSION_VIEW, 0
    )
    assert c.open_grant(grant, recipient.keys).study_key == _study_key()
    with pytest.raises(c.NoMatchingKey):
        c.open_grant(grant, third.keys)
    with pytest.raises(c.NoMatchingKey):
        c.open_grant(grant, granter.keys)


def test_open_manifest_without_trusted_signers_raises_authentication_failed() -> None:
    signer = _new_account("signer")
    sealed = c.seal_manifest(_study_key(), bytes(16), 1, [], signer.keys)
    opened = c.open_manifest(_study_key(), bytes(16), sealed, {signer.keys.public.ed25519})
    assert opened.entries == ()
    with pytest.raises(c.AuthenticationFailed):
        c.open_manifest(_study_key(), bytes(16), sealed, set())


def test_fingerprint_is_eight_groups_of_five_digits() -> None:
    fingerprint = c.fingerprint(_new_account("fp").keys.public)
    groups = fingerprint.split(" ")
    assert len(groups) == 8
    assert all(len(g) == 5 and g.isdigit() for g in groups)
    assert fingerprint != c.fingerprint(_new_account("fp-other").keys.public)
