"""Every model, imported here so that metadata and Alembic see them all."""

from securepacs.server.db.models.account import Account
from securepacs.server.db.models.email_token import EmailToken
from securepacs.server.db.models.key_slot import KeySlot
from securepacs.server.db.models.session import Session
from securepacs.server.db.models.share import Endorsement, Link, Share
from securepacs.server.db.models.study import Blob, BlobPart, BlobState, Study
from securepacs.server.db.models.two_factor import TwoFactor, TwoFactorRecoveryCode

__all__ = (
    "Account",
    "Blob",
    "BlobPart",
    "BlobState",
    "EmailToken",
    "Endorsement",
    "KeySlot",
    "Link",
    "Session",
    "Share",
    "Study",
    "TwoFactor",
    "TwoFactorRecoveryCode",
)
