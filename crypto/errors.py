"""The error tree of ``securepacs.crypto``: one class per failure layer.

The class name of each error is the ``expect`` value of the test vectors that must raise it, so
the vectors, the spec and the code name failures the same way. Messages are fixed text written
for the person in front of the screen: they never carry a key, a plaintext, a ciphertext, a
filename or a DICOM value, and ``AuthenticationFailed`` never says which check failed.
"""

from __future__ import annotations

__all__ = (
    "AuthenticationFailed",
    "CryptoError",
    "InvalidRecoveryKey",
    "MalformedEnvelope",
    "NoMatchingKey",
    "ParametersRejected",
    "TruncatedStream",
    "UnsupportedVersion",
)


class CryptoError(Exception):
    """Base class: the data handed to the crypto core was not acceptable."""

    code = "crypto_error"
    default_message = "The encrypted data could not be processed."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)


class MalformedEnvelope(CryptoError):
    """The bytes do not parse as the expected format, or are not in canonical form."""

    code = "malformed_envelope"
    default_message = (
        "The encrypted data is damaged or is not a SecurePACS object. "
        "Download it again; if the problem stays, the stored copy is corrupt."
    )


class UnsupportedVersion(CryptoError):
    """The format version or algorithm id is unknown to this implementation."""

    code = "unsupported_version"
    default_message = (
        "This data was written by a newer or unknown version of SecurePACS. "
        "Reload the page or update the client, then try again."
    )


class ParametersRejected(CryptoError):
    """Key-derivation parameters are outside the range this version accepts."""

    code = "parameters_rejected"
    default_message = (
        "The server offered key-derivation settings weaker or heavier than SecurePACS allows. "
        "Do not enter your password again; report this to your administrator."
    )


class AuthenticationFailed(CryptoError):
    """A tag or signature did not verify, or the data belongs to another context."""

    code = "authentication_failed"
    default_message = (
        "The data could not be verified: the key is wrong or the data was altered. "
        "Check the password or key; if it is right, the stored copy was tampered with."
    )


class NoMatchingKey(CryptoError):
    """None of the offered key slots or grants is addressed to the key at hand."""

    code = "no_matching_key"
    default_message = (
        "This key does not belong to this account or was invalidated. "
        "Use another recovery key file or your last working password."
    )


class TruncatedStream(CryptoError):
    """An encrypted stream ended before its final chunk."""

    code = "truncated_stream"
    default_message = (
        "The encrypted file is incomplete: it ends before its last part. "
        "Retry the download; if it persists, upload the study again."
    )


class InvalidRecoveryKey(CryptoError):
    """A recovery key typed or loaded by a person has a typo or is not a recovery key."""

    code = "invalid_recovery_key"
    default_message = (
        "This is not a valid recovery key. Check it against your key file or load the file itself."
    )

    def __init__(self, message: str | None = None, *, group: int | None = None) -> None:
        self.group = group
        if message is None and group is not None:
            message = (
                f"Group {group} of the recovery key has a typo. "
                "Compare it with your key file, character by character."
            )
        super().__init__(message)
