"""Every derivation label and associated-data namespace, verbatim from docs/protocol.md §3.

A label is used for exactly one purpose. Changing one is a breaking change of the format and
bumps the version that appears in it.
"""

from __future__ import annotations

from typing import Final

# Password hierarchy (protocol.md §4).
AUTH_KEY: Final = "securepacs/v1/auth-key"
PASSWORD_KEK: Final = "securepacs/v1/password-kek"  # noqa: S105 -- a label, not a secret

# Key slots (protocol.md §5).
RECOVERY_KEK: Final = "securepacs/v1/recovery-kek"
RECOVERY_KEY_UID: Final = "securepacs/v1/recovery-key-uid"
RECOVERY_CHECK: Final = "securepacs/v1/recovery-check"
PASSKEY_KEK: Final = "securepacs/v1/passkey-kek"
PASSKEY_KEY_UID: Final = "securepacs/v1/passkey-key-uid"
KEY_SLOT_AD: Final = "securepacs/v1/key-slot"
PUBLIC_KEYS_SIGNATURE: Final = "securepacs/v1/public-keys"
FINGERPRINT: Final = "securepacs/v1/fingerprint"

# Studies (protocol.md §6).
STUDY_KEY_WRAP_AD: Final = "securepacs/v1/study-key-wrap"
OWNER_WRAP_KEY: Final = "securepacs/v1/owner-wrap-key"
STUDY_UID_TAG: Final = "securepacs/v1/study-uid-tag"
METADATA_KEY: Final = "securepacs/v1/metadata-key"
METADATA_AD: Final = "securepacs/v1/metadata"
MANIFEST_KEY: Final = "securepacs/v1/manifest-key"
MANIFEST_AD: Final = "securepacs/v1/manifest"
MANIFEST_SIGNATURE: Final = "securepacs/v1/manifest-signature"
CONTENT_KEY: Final = "securepacs/v1/content-key"

# Grants (protocol.md §8).
GRANT_WRAP_KEY: Final = "securepacs/v1/grant-wrap-key"
GRANT_AD: Final = "securepacs/v1/grant"
GRANT_SIGNATURE: Final = "securepacs/v1/grant-signature"
SHARE_NOTE_KEY: Final = "securepacs/v1/share-note-key"
SHARE_NOTE_AD: Final = "securepacs/v1/share-note"

# Anonymous links (protocol.md §9).
LINK_PASSWORD_SALT: Final = "securepacs/v1/link-password-salt"  # noqa: S105 -- a label
LINK_ROOT: Final = "securepacs/v1/link-root"
LINK_WRAP_KEY: Final = "securepacs/v1/link-wrap-key"
LINK_ACCESS_KEY: Final = "securepacs/v1/link-access-key"
LINK_VERIFIER: Final = "securepacs/v1/link-verifier"
LINK_AD: Final = "securepacs/v1/link"
LINK_SIGNATURE: Final = "securepacs/v1/link-signature"
