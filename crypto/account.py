"""Account keys, key slots, unlocking and re-wrapping (protocol.md §5).

An account owns one random key bundle (X25519, Ed25519 and a symmetric account key). The bundle
never changes; what changes are the key slots that wrap it: one under the password KEK, one per
recovery key, later one per passkey. A password change re-wraps the bundle into a new password
slot, and nothing else moves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, NoReturn

import msgspec

from securepacs.crypto import _labels
from securepacs.crypto._backend import get_backend
from securepacs.crypto._canonical import (
    FORMAT_VERSION,
    decode,
    encode,
    labelled,
    tuple_bytes,
)
from securepacs.crypto._random import SYSTEM_RANDOM, Randomness
from securepacs.crypto.envelope import (
    AccountSecretsPlain,
    KeySlotEnvelope,
    Kind,
    PublicKeysEnvelope,
)
from securepacs.crypto.errors import (
    MalformedEnvelope,
    NoMatchingKey,
    UnsupportedVersion,
)
from securepacs.crypto.kdf import (
    SALT_BYTES,
    KdfParams,
    PasswordKeys,
    check_kdf_params,
    derive_key_bytes,
    derive_password_keys,
    new_kdf_params,
)
from securepacs.crypto.keys import (
    KEY_BYTES,
    AccountKey,
    PasskeyPrfOutput,
    PasswordKek,
    RecoveryKey,
    WrapKey,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = (
    "SLOT_PASSKEY_PRF",
    "SLOT_PASSWORD",
    "SLOT_RECOVERY",
    "AccountKeys",
    "NewAccount",
    "PublicKeys",
    "change_password",
    "create_account",
    "key_uid",
    "open_public_keys",
    "open_slot",
    "seal_slot",
    "slot_info",
    "unlock_with_password",
    "unlock_with_secret",
)

SLOT_PASSWORD: Final = 1
SLOT_RECOVERY: Final = 2
SLOT_PASSKEY_PRF: Final = 3
KEY_UID_BYTES: Final = 16
NONCE_BYTES: Final = 24

# Any scalar maps a low-order point to zero, which libsodium's crypto_scalarmult refuses.
_LOW_ORDER_PROBE: Final = bytes([9] * 32)
_PUBLIC_KEYS_DECODER: Final = msgspec.msgpack.Decoder(PublicKeysEnvelope)
_SECRETS_DECODER: Final = msgspec.msgpack.Decoder(AccountSecretsPlain)
_SLOT_DECODER: Final = msgspec.msgpack.Decoder(KeySlotEnvelope)

SlotSecret = PasswordKek | RecoveryKey | PasskeyPrfOutput


class PublicKeys:
    """An account's verified public keys: what others encrypt to and verify against."""

    __slots__ = ("ed25519", "encoded", "x25519")

    def __init__(self, x25519: bytes, ed25519: bytes, encoded: bytes) -> None:
        self.x25519: Final = x25519
        self.ed25519: Final = ed25519
        self.encoded: Final = encoded

    def __repr__(self) -> str:
        return f"PublicKeys(x25519={self.x25519.hex()}, ed25519={self.ed25519.hex()})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PublicKeys) and other.encoded == self.encoded

    def __hash__(self) -> int:
        return hash(self.encoded)


class AccountKeys:
    """The unlocked account key bundle. Exists only on the client; its repr is redacted."""

    __slots__ = (
        "_account_key",
        "_ed25519_secret",
        "_plain",
        "_x25519_secret",
        "public",
    )

    def __init__(self, plain: AccountSecretsPlain) -> None:
        backend = get_backend()
        ed_public, ed_secret = backend.sign_seed_keypair(plain.ed25519_seed)
        x_public = backend.scalarmult_base(plain.x25519_secret)
        signature = backend.sign_detached(_public_keys_message(x_public, ed_public), ed_secret)
        encoded = encode(
            PublicKeysEnvelope(
                kind=Kind.PUBLIC_KEYS,
                version=FORMAT_VERSION,
                x25519=x_public,
                ed25519=ed_public,
                signature=signature,
            )
        )
        self._plain: Final = plain
        self._x25519_secret: Final = plain.x25519_secret
        self._ed25519_secret: Final = ed_secret
        self._account_key: Final = AccountKey(plain.account_key)
        self.public: Final = PublicKeys(x_public, ed_public, encoded)

    def __repr__(self) -> str:
        return "<AccountKeys redacted>"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("AccountKeys cannot be pickled")

    @property
    def account_key(self) -> AccountKey:
        """The symmetric account key."""
        return self._account_key

    def sign(self, label: str, payload: bytes) -> bytes:
        """Ed25519 signature over ``labelled(label, payload)``; the label keeps purposes apart."""
        return get_backend().sign_detached(labelled(label, payload), self._ed25519_secret)

    def agree(self, peer_public: bytes) -> bytes:
        """X25519 shared secret with ``peer_public``; raises AuthenticationFailed on low order."""
        return get_backend().scalarmult(self._x25519_secret, peer_public)

    def seal_bundle(self) -> bytes:
        """The canonical plaintext that key slots wrap."""
        return encode(self._plain)


class NewAccount:
    """What registration produces: the bundle, its public keys and the first password slot."""

    __slots__ = ("keys", "password_keys", "password_slot")

    def __init__(self, keys: AccountKeys, password_keys: PasswordKeys, password_slot: bytes):
        self.keys: Final = keys
        self.password_keys: Final = password_keys
        self.password_slot: Final = password_slot

    def __repr__(self) -> str:
        return "<NewAccount redacted>"


def open_public_keys(data: bytes) -> PublicKeys:
    """Decode an account's public keys and check their self-signature. protocol.md §5.1.

    Raises:
        MalformedEnvelope, UnsupportedVersion: not a canonical v1 public-keys envelope.
        AuthenticationFailed: the X25519 key is not signed by the Ed25519 key, or is of low
            order (every shared secret with it would be zero).
    """
    env = decode(data, _PUBLIC_KEYS_DECODER, Kind.PUBLIC_KEYS)
    backend = get_backend()
    backend.sign_verify_detached(
        env.signature, _public_keys_message(env.x25519, env.ed25519), env.ed25519
    )
    # A low-order X25519 key makes every shared secret zero; refuse it here, not at first use.
    backend.scalarmult(_LOW_ORDER_PROBE, env.x25519)
    return PublicKeys(env.x25519, env.ed25519, data)


def _public_keys_message(x25519: bytes, ed25519: bytes) -> bytes:
    header = tuple_bytes(Kind.PUBLIC_KEYS, FORMAT_VERSION, x25519, ed25519)
    return labelled(_labels.PUBLIC_KEYS_SIGNATURE, header)


def _new_bundle(rng: Randomness) -> AccountKeys:
    return AccountKeys(
        AccountSecretsPlain(
            kind=Kind.ACCOUNT_SECRETS,
            version=FORMAT_VERSION,
            x25519_secret=rng.take(KEY_BYTES),
            ed25519_seed=rng.take(KEY_BYTES),
            account_key=rng.take(KEY_BYTES),
        )
    )


def key_uid(secret: RecoveryKey | PasskeyPrfOutput) -> bytes:
    """The 16-byte Key UID that names a recovery key or passkey without revealing it."""
    label = _labels.RECOVERY_KEY_UID if isinstance(secret, RecoveryKey) else _labels.PASSKEY_KEY_UID
    return derive_key_bytes(secret._material, label)[:KEY_UID_BYTES]


def _slot_wrap_key(secret: SlotSecret) -> WrapKey:
    if isinstance(secret, PasswordKek):
        return WrapKey(secret._material)
    label = _labels.RECOVERY_KEK if isinstance(secret, RecoveryKey) else _labels.PASSKEY_KEK
    return WrapKey(derive_key_bytes(secret._material, label))


def _slot_type(secret: SlotSecret) -> int:
    if isinstance(secret, PasswordKek):
        return SLOT_PASSWORD
    return SLOT_RECOVERY if isinstance(secret, RecoveryKey) else SLOT_PASSKEY_PRF


def _slot_ad(slot_type: int, kdf: KdfParams | None, uid: bytes) -> bytes:
    header = tuple_bytes(Kind.KEY_SLOT, FORMAT_VERSION, slot_type, kdf, uid)
    return labelled(_labels.KEY_SLOT_AD, header)


def seal_slot(
    keys: AccountKeys,
    secret: SlotSecret,
    rng: Randomness = SYSTEM_RANDOM,
    *,
    kdf: KdfParams | None = None,
) -> bytes:
    """Wrap the account bundle under one unlocking secret. protocol.md §5.3.

    A password slot must carry the KDF parameters that produced ``secret``; the others must not.
    """
    slot_type = _slot_type(secret)
    if (slot_type == SLOT_PASSWORD) != (kdf is not None):
        raise ValueError("a password slot needs its KdfParams, other slots take none")
    if kdf is not None:
        # Never write a slot that readers would refuse (parameters travel inside the slot).
        if len(kdf.salt) != SALT_BYTES:
            raise ValueError("the Argon2id salt is 16 bytes")
        check_kdf_params(kdf)
    uid = b"" if isinstance(secret, PasswordKek) else key_uid(secret)
    nonce = rng.take(NONCE_BYTES)
    ciphertext = get_backend().aead_xchacha20poly1305_ietf_encrypt(
        keys.seal_bundle(),
        _slot_ad(slot_type, kdf, uid),
        nonce,
        _slot_wrap_key(secret)._material,
    )
    return encode(
        KeySlotEnvelope(
            kind=Kind.KEY_SLOT,
            version=FORMAT_VERSION,
            slot_type=slot_type,
            kdf=kdf,
            key_uid=uid,
            nonce=nonce,
            ciphertext=ciphertext,
        )
    )


def slot_info(data: bytes) -> KeySlotEnvelope:
    """Decode a key slot's public header, validating its shape. protocol.md §5.3.

    Raises:
        MalformedEnvelope: fields inconsistent with the slot type.
        UnsupportedVersion: unknown slot type or KDF algorithm.
    """
    env = decode(data, _SLOT_DECODER, Kind.KEY_SLOT)
    if env.slot_type == SLOT_PASSWORD:
        if env.kdf is None or env.key_uid:
            raise MalformedEnvelope
    elif env.slot_type in (SLOT_RECOVERY, SLOT_PASSKEY_PRF):
        if env.kdf is not None or len(env.key_uid) != KEY_UID_BYTES:
            raise MalformedEnvelope
    else:
        raise UnsupportedVersion
    return env


def open_slot(data: bytes, secret: SlotSecret) -> AccountKeys:
    """Unwrap the account bundle from one key slot. protocol.md §5.3.

    Raises:
        MalformedEnvelope, UnsupportedVersion: the slot does not parse.
        NoMatchingKey: the slot is for another kind of secret or another recovery key.
        AuthenticationFailed: wrong password or tampered slot.
    """
    env = slot_info(data)
    if env.slot_type != _slot_type(secret):
        raise NoMatchingKey
    if not isinstance(secret, PasswordKek) and env.key_uid != key_uid(secret):
        raise NoMatchingKey
    plain = get_backend().aead_xchacha20poly1305_ietf_decrypt(
        env.ciphertext,
        _slot_ad(env.slot_type, env.kdf, env.key_uid),
        env.nonce,
        _slot_wrap_key(secret)._material,
    )
    try:
        bundle = decode(plain, _SECRETS_DECODER, Kind.ACCOUNT_SECRETS)
    except (MalformedEnvelope, UnsupportedVersion):
        # Authenticated but unparseable means a buggy writer, not an attacker; still refuse.
        raise MalformedEnvelope from None
    return AccountKeys(bundle)


def create_account(
    password: str, rng: Randomness = SYSTEM_RANDOM, *, kdf: KdfParams | None = None
) -> NewAccount:
    """Generate a fresh key bundle and its password slot. protocol.md §5.

    Returns the bundle, the password-derived keys (the authentication key goes to the server)
    and the encoded password slot. The KDF parameters are in the slot.
    """
    params = kdf if kdf is not None else new_kdf_params(rng)
    password_keys = derive_password_keys(password, params)
    keys = _new_bundle(rng)
    slot = seal_slot(keys, password_keys.kek, rng, kdf=params)
    return NewAccount(keys, password_keys, slot)


def unlock_with_password(password: str, slot: bytes) -> tuple[AccountKeys, PasswordKeys]:
    """Derive the password keys from the slot's own parameters and open it.

    Raises:
        ParametersRejected: the slot's KDF parameters are below the floor (a downgrade).
        AuthenticationFailed: wrong password or tampered slot.
    """
    env = slot_info(slot)
    if env.kdf is None:
        raise NoMatchingKey
    check_kdf_params(env.kdf)
    password_keys = derive_password_keys(password, env.kdf)
    return open_slot(slot, password_keys.kek), password_keys


def unlock_with_secret(
    slots: Iterable[bytes], secret: RecoveryKey | PasskeyPrfOutput
) -> AccountKeys:
    """Open the slot addressed to a recovery key or passkey among an account's slots.

    Raises:
        NoMatchingKey: no slot carries this key's Key UID (wrong key, or it was invalidated).
        AuthenticationFailed: the matching slot was tampered with.
    """
    uid = key_uid(secret)
    wanted = SLOT_RECOVERY if isinstance(secret, RecoveryKey) else SLOT_PASSKEY_PRF
    for slot in slots:
        try:
            env = slot_info(slot)
        except (MalformedEnvelope, UnsupportedVersion):
            # A slot from a newer client (or a damaged one) must not hide the slot we can open.
            continue
        if env.slot_type == wanted and env.key_uid == uid:
            return open_slot(slot, secret)
    raise NoMatchingKey


def change_password(
    keys: AccountKeys,
    new_password: str,
    rng: Randomness = SYSTEM_RANDOM,
    *,
    kdf: KdfParams | None = None,
) -> tuple[PasswordKeys, bytes]:
    """Re-wrap the bundle under a new password: new salt, new slot, same keys. protocol.md §5.4."""
    params = kdf if kdf is not None else new_kdf_params(rng)
    password_keys = derive_password_keys(new_password, params)
    return password_keys, seal_slot(keys, password_keys.kek, rng, kdf=params)
