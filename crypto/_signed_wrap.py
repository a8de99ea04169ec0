"""The mechanics grants and links share: a key wrapped under the header, then signed.

Both envelopes carry a study key encrypted with XChaCha20-Poly1305 whose associated data is the
envelope's header, and an Ed25519 signature over header, nonce and ciphertext (protocol.md §8.3
and §9.3). Only the labels, the header fields and the wrap key differ.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from securepacs.crypto._backend import get_backend
from securepacs.crypto._canonical import labelled, tuple_bytes
from securepacs.crypto.keys import StudyKey

if TYPE_CHECKING:
    from securepacs.crypto._random import Randomness
    from securepacs.crypto.account import AccountKeys

__all__ = ("Header", "open_wrapped", "seal_wrapped", "verify_wrapped")

NONCE_BYTES: Final = 24

Header = tuple[bytes | int, ...]


def seal_wrapped(
    signer: AccountKeys,
    labels: tuple[str, str],
    header: Header,
    study_key: StudyKey,
    wrap_key: bytes,
    rng: Randomness,
) -> tuple[bytes, bytes, bytes]:
    """Encrypt ``study_key`` under ``wrap_key`` and sign; returns (nonce, ciphertext, signature).

    ``labels`` is (associated-data label, signature label).
    """
    ad_label, signature_label = labels
    nonce = rng.take(NONCE_BYTES)
    ciphertext = get_backend().aead_xchacha20poly1305_ietf_encrypt(
        study_key._material, labelled(ad_label, tuple_bytes(*header)), nonce, wrap_key
    )
    signature = signer.sign(signature_label, tuple_bytes(*header, nonce, ciphertext))
    return nonce, ciphertext, signature


def verify_wrapped(
    signature_label: str,
    header: Header,
    nonce: bytes,
    ciphertext: bytes,
    signature: bytes,
    signer: bytes,
) -> None:
    """Verify the signer's Ed25519 signature; raises AuthenticationFailed. Needs no secret."""
    get_backend().sign_verify_detached(
        signature, labelled(signature_label, tuple_bytes(*header, nonce, ciphertext)), signer
    )


def open_wrapped(
    ad_label: str, header: Header, nonce: bytes, ciphertext: bytes, wrap_key: bytes
) -> StudyKey:
    """Decrypt the wrapped study key; raises AuthenticationFailed."""
    plain = get_backend().aead_xchacha20poly1305_ietf_decrypt(
        ciphertext, labelled(ad_label, tuple_bytes(*header)), nonce, wrap_key
    )
    return StudyKey(plain)
