"""No key, plaintext or secret leaks through repr, str, pickling, hashing or an error message.

Keys and the objects that hold them are printed, logged and put in exceptions by code that does
not think about secrecy; every such path must show a redacted form. The error messages of the
whole vector corpus are checked against the vectors' own inputs.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import importlib.util
import json
import pickle
import re
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import securepacs.crypto as c
from securepacs.crypto import keys as keys_module
from securepacs.crypto._random import SeededRandom
from securepacs.crypto.envelope import AccountSecretsPlain, Kind
from securepacs.crypto.kdf import insecure_kdf_floor_for_tests

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

KEY_CLASSES: Final[tuple[type[keys_module._SecretKey], ...]] = tuple(
    cls
    for cls in vars(keys_module).values()
    if isinstance(cls, type) and issubclass(cls, keys_module._SecretKey)
    if cls is not keys_module._SecretKey
)
VECTORS_DIR: Final = Path(__file__).resolve().parents[1] / "vectors"
# Key material as random as real keys: zero-filled keys would "leak" into any repr with zeros.
MATERIAL: Final = st.binary(min_size=1, max_size=16).map(lambda s: hashlib.sha256(s).digest())
HEX: Final = re.compile(r"(?:[0-9a-fA-F]{2})+")
WINDOW: Final = 8


def _rng(name: str) -> SeededRandom:
    return SeededRandom(hashlib.sha256(name.encode()).digest())


# --- what a leak looks like --------------------------------------------------------------------


def _leak_forms(material: bytes) -> set[str]:
    """Whole-value encodings of a secret, and every 4-byte window of it in hex and bytes repr."""
    forms = {
        material.hex(),
        material.hex().upper(),
        base64.b64encode(material).decode(),
        base64.urlsafe_b64encode(material).rstrip(b"=").decode(),
        base64.b32encode(material).decode(),
        repr(material),
        repr(material)[2:-1],
        ", ".join(str(b) for b in material),
    }
    for i in range(len(material) - 3):
        window = material[i : i + 4]
        forms.add(window.hex())
        forms.add(window.hex().upper())
        forms.add(repr(window)[2:-1])
    return forms


def _shown(obj: object) -> list[str]:
    """Every text an object turns into when printed, formatted, logged or put in an error."""
    return [
        repr(obj),
        str(obj),
        f"{obj}",
        f"{obj!r}",
        "%s" % (obj,),  # noqa: UP031 -- the %-formatting path is what is being checked
        repr([obj]),
        repr({"key": obj}),
        str(ValueError(obj)),
    ]


def _assert_redacted(obj: object, secrets: list[bytes]) -> None:
    assert secrets
    for text in _shown(obj):
        raw = text.encode("utf-8", "surrogateescape")
        for secret in secrets:
            assert secret not in raw
            for form in _leak_forms(secret):
                assert form not in text, (type(obj).__name__, form)


def test_leak_check_detects_an_unredacted_object() -> None:
    """The check itself must be able to fail: an object showing its hex or bytes is caught."""
    secret = bytes(range(100, 132))

    class Leaky:
        def __init__(self, shown: str) -> None:
            self.shown = shown

        def __repr__(self) -> str:
            return self.shown

    for shown in (secret.hex(), repr(secret), base64.b64encode(secret).decode(), secret[3:9].hex()):
        with pytest.raises(AssertionError):
            _assert_redacted(Leaky(shown), [secret])
    _assert_redacted(Leaky("<redacted>"), [secret])


# --- key classes -------------------------------------------------------------------------------


def test_key_classes_found() -> None:
    assert len(KEY_CLASSES) == 9


@pytest.mark.parametrize("cls", KEY_CLASSES, ids=lambda cls: cls.__name__)
@settings(max_examples=25, deadline=None)
@given(material=MATERIAL)
def test_key_repr_and_str_are_redacted(cls: type[keys_module._SecretKey], material: bytes) -> None:
    key = cls(material)
    _assert_redacted(key, [material])
    assert repr(key) == str(key) == f"<{cls.__name__} redacted>"


@pytest.mark.parametrize("cls", KEY_CLASSES, ids=lambda cls: cls.__name__)
def test_key_constructor_error_does_not_show_material(cls: type[keys_module._SecretKey]) -> None:
    material = bytes(range(200, 231))
    with pytest.raises(ValueError) as raised:
        cls(material)
    _assert_redacted(raised.value, [material])


@pytest.mark.parametrize("cls", KEY_CLASSES, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_key_pickle_raises_type_error(cls: type[keys_module._SecretKey], protocol: int) -> None:
    with pytest.raises(TypeError, match="pickled"):
        pickle.dumps(cls(bytes(32)), protocol=protocol)


@pytest.mark.parametrize("cls", KEY_CLASSES, ids=lambda cls: cls.__name__)
def test_key_copy_raises_type_error(cls: type[keys_module._SecretKey]) -> None:
    with pytest.raises(TypeError):
        copy.copy(cls(bytes(32)))
    with pytest.raises(TypeError):
        copy.deepcopy(cls(bytes(32)))


@pytest.mark.parametrize("cls", KEY_CLASSES, ids=lambda cls: cls.__name__)
def test_key_hash_raises_type_error(cls: type[keys_module._SecretKey]) -> None:
    key = cls(bytes(32))
    with pytest.raises(TypeError, match="hashable"):
        hash(key)
    with pytest.raises(TypeError):
        {key}  # noqa: B018 -- building the set is the check
    with pytest.raises(TypeError):
        {key: 1}  # noqa: B018


@pytest.mark.parametrize("cls", KEY_CLASSES, ids=lambda cls: cls.__name__)
@settings(max_examples=25, deadline=None)
@given(material=MATERIAL, other=MATERIAL)
def test_key_equality_is_by_value(
    cls: type[keys_module._SecretKey], material: bytes, other: bytes
) -> None:
    key = cls(material)
    assert key == cls(bytes(bytearray(material)))
    assert not key != cls(bytes(bytearray(material)))  # noqa: SIM202 -- checks __ne__
    assert (key == cls(other)) == (material == other)
    assert key != material
    assert key != material.hex()
    for other_cls in KEY_CLASSES:
        if other_cls is not cls:
            assert key != other_cls(material)


# --- objects that hold keys --------------------------------------------------------------------


def _account_plain(seed: bytes) -> AccountSecretsPlain:
    material = hashlib.shake_256(seed).digest(96)
    return AccountSecretsPlain(
        kind=Kind.ACCOUNT_SECRETS,
        version=1,
        x25519_secret=material[:32],
        ed25519_seed=material[32:64],
        account_key=material[64:],
    )


def _plain_secrets(plain: AccountSecretsPlain) -> list[bytes]:
    return [plain.x25519_secret, plain.ed25519_seed, plain.account_key]


@settings(max_examples=15, deadline=None)
@given(seed=st.binary(min_size=1, max_size=16))
def test_account_keys_repr_is_redacted(seed: bytes) -> None:
    plain = _account_plain(seed)
    keys = c.AccountKeys(plain)
    _assert_redacted(keys, _plain_secrets(plain))
    _assert_redacted(keys.account_key, _plain_secrets(plain))
    # The public keys are printable by design, but carry none of the secrets.
    _assert_redacted(keys.public, _plain_secrets(plain))
    assert repr(keys) == str(keys) == "<AccountKeys redacted>"


def _new_account(name: str) -> c.NewAccount:
    with insecure_kdf_floor_for_tests():
        kdf = c.new_kdf_params(_rng(f"kdf/{name}"), opslimit=1, memlimit_kib=8)
        return c.create_account("hunter2 " + name, _rng(name), kdf=kdf)


def _new_account_secrets(new: c.NewAccount) -> list[bytes]:
    return [
        *_plain_secrets(new.keys._plain),
        new.password_keys.auth_key.to_bytes(),
        new.password_keys.kek._material,
    ]


def test_new_account_and_password_keys_reprs_are_redacted() -> None:
    new = _new_account("redaction")
    secrets = _new_account_secrets(new)
    _assert_redacted(new, secrets)
    _assert_redacted(new.password_keys, secrets)
    _assert_redacted(new.password_keys.auth_key, secrets)
    _assert_redacted(new.password_keys.kek, secrets)
    _assert_redacted(new.keys, secrets)
    assert repr(new) == "<NewAccount redacted>"
    assert repr(new.password_keys) == "<PasswordKeys redacted>"


@settings(max_examples=15, deadline=None)
@given(secret=MATERIAL)
def test_link_access_repr_is_redacted(secret: bytes) -> None:
    access = c.link_access(c.LinkSecret(secret), None)
    secrets = [secret, access._wrap_key, access.access_key]
    _assert_redacted(access, secrets)
    assert repr(access) == "<LinkAccess redacted>"


def test_link_access_with_password_repr_is_redacted() -> None:
    secret = bytes(range(32))
    access = c.link_access(c.LinkSecret(secret), "tulip-password")
    _assert_redacted(access, [secret, access._wrap_key, access.access_key])
    for text in _shown(access):
        assert "tulip-password" not in text


def _opened_grant(study_key: bytes) -> c.OpenedGrant:
    granter, recipient = _new_account("granter"), _new_account("recipient")
    grant = c.seal_grant(
        granter.keys,
        recipient.keys.public,
        bytes(range(16)),
        c.StudyKey(study_key),
        c.PERMISSION_DOWNLOAD,
        1_900_000_000,
    )
    return c.open_grant(grant, recipient.keys)


def _opened_link(study_key: bytes) -> c.OpenedLink:
    creator = _new_account("creator")
    access = c.link_access(c.LinkSecret(bytes(32)), None)
    envelope = c.seal_link(
        creator.keys,
        access,
        bytes(16),
        bytes(range(16)),
        c.StudyKey(study_key),
        c.PERMISSION_VIEW,
        0,
    )
    return c.open_link(envelope, bytes(16), access)


@settings(max_examples=10, deadline=None)
@given(study_key=MATERIAL)
def test_opened_grant_and_link_reprs_are_redacted(study_key: bytes) -> None:
    grant = _opened_grant(study_key)
    link = _opened_link(study_key)
    assert grant.study_key == c.StudyKey(study_key)
    assert link.study_key == c.StudyKey(study_key)
    _assert_redacted(grant, [study_key])
    _assert_redacted(link, [study_key])
    _assert_redacted(grant.study_key, [study_key])


def _holders() -> Iterator[tuple[str, Callable[[], object]]]:
    yield "AccountKeys", lambda: c.AccountKeys(_account_plain(b"pickle"))
    yield "NewAccount", lambda: _new_account("pickle")
    yield "PasswordKeys", lambda: _new_account("pickle").password_keys
    yield "OpenedGrant", lambda: _opened_grant(bytes(range(32)))
    yield "OpenedLink", lambda: _opened_link(bytes(range(32)))
    yield "LinkAccess", lambda: c.link_access(c.LinkSecret(bytes(range(32))), None)


@pytest.mark.parametrize(("name", "make"), list(_holders()), ids=[n for n, _ in _holders()])
def test_key_holder_pickle_raises_type_error(name: str, make: Callable[[], object]) -> None:
    # LinkAccess keeps its wrap key as plain bytes rather than a key object, so nothing stops
    # it from being pickled into a cache or a queue: it must refuse like every other holder.
    holder = make()
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        with pytest.raises(TypeError):
            pickle.dumps(holder, protocol=protocol)


# --- error messages of the vector corpus -------------------------------------------------------


def _load_runner() -> Any:
    spec = importlib.util.spec_from_file_location(
        "securepacs_vectors_runner", VECTORS_DIR / "runner.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


OPERATIONS: Final[dict[str, Callable[[dict[str, Any]], dict[str, Any]]]] = _load_runner().OPERATIONS


def _negative_cases() -> list[dict[str, Any]]:
    cases = []
    for path in sorted(VECTORS_DIR.glob("**/*.json")):
        case = json.loads(path.read_text(encoding="utf-8"))
        if case["expect"] != "ok":
            cases.append(case)
    return cases


NEGATIVE_CASES: Final = _negative_cases()


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _forbidden(inputs: dict[str, Any]) -> set[str]:
    """Every 8-character window of every input: hex, passwords, recovery text, fragments.

    Hex inputs are compared case-insensitively. Inputs that are hex-encoded text (key files)
    also contribute their tokens of 8+ letters and digits that contain a digit (key groups,
    Key UIDs), but not their English sentences, which share words with the error messages.
    """
    forbidden: set[str] = set()
    for text in _strings(inputs):
        if HEX.fullmatch(text):
            lowered = text.lower()
            forbidden.update(lowered[i : i + WINDOW] for i in range(len(lowered) - WINDOW + 1))
            try:
                decoded = bytes.fromhex(text).decode("utf-8")
            except UnicodeDecodeError:
                continue
            for token in re.findall(r"[0-9A-Za-z]{8,}", decoded):
                if any(ch.isdigit() for ch in token):
                    forbidden.update(token[i : i + WINDOW] for i in range(len(token) - 7))
        elif len(text) < WINDOW:
            if text:
                forbidden.add(text)
        else:
            forbidden.update(text[i : i + WINDOW] for i in range(len(text) - WINDOW + 1))
    return forbidden


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error and every exception chained to it, shown or suppressed."""
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)


def _messages(error: BaseException) -> list[str]:
    texts: list[str] = []
    for item in _chain(error):
        texts += [str(item), repr(item), *(str(arg) for arg in item.args)]
        texts += traceback.format_exception_only(type(item), item)
    return texts


def test_vector_corpus_has_negative_cases() -> None:
    assert len(NEGATIVE_CASES) >= 50
    assert {case["expect"] for case in NEGATIVE_CASES} >= {
        "AuthenticationFailed",
        "MalformedEnvelope",
        "UnsupportedVersion",
        "ParametersRejected",
        "NoMatchingKey",
        "TruncatedStream",
        "InvalidRecoveryKey",
    }


def test_vector_forbidden_windows_catch_an_echoed_input() -> None:
    inputs = {"password": "correct horse", "slot": "00ab" * 20, "text": "ABCDEFGH-12345678"}
    forbidden = _forbidden(inputs)
    assert "00ab00ab" in forbidden
    assert "correct " in forbidden
    assert "GH-12345" in forbidden
    assert not _leaks("The encrypted data could not be processed.", forbidden)
    assert _leaks("bad slot 00AB00AB...", forbidden)
    assert _leaks("password 'correct horse' is wrong", forbidden)


def _leaks(message: str, forbidden: set[str]) -> list[str]:
    lowered = message.lower()
    return sorted(
        piece
        for piece in forbidden
        if piece in message or (HEX.fullmatch(piece) and piece in lowered)
    )


@pytest.mark.parametrize("case", NEGATIVE_CASES, ids=[case["name"] for case in NEGATIVE_CASES])
def test_vector_error_message_contains_no_input(case: dict[str, Any]) -> None:
    with pytest.raises(c.CryptoError) as raised:
        OPERATIONS[case["op"]](case["inputs"])
    assert type(raised.value).__name__ == case["expect"]
    forbidden = _forbidden(case["inputs"])
    for message in _messages(raised.value):
        assert _leaks(message, forbidden) == [], message
