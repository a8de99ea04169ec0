"""The sharing commands of the CLI: share, link, shares, unshare (protocol.md §15).

Each unlocks the account keys (the study key is sealed here, never on the server). A
recipient's fingerprint is printed the first time this device sees it, to be compared with
them, and a changed one stops the share.
"""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from securepacs.client.cli_studies import (
    Session,
    StudyCommandError,
    pick_study,
    say,
    secret_line,
)
from securepacs.client.sharing import (
    PERMISSION_LABELS,
    ShareProblem,
    Sharing,
    expiry_of_date,
    permission_of,
)
from securepacs.client.trust import FingerprintChanged, FingerprintMemory, KeysRefused

if TYPE_CHECKING:
    import argparse

    from securepacs.client.accounts import Unlocked

__all__ = ("add_share_commands",)


def _sharing(s: Session, unlocked: Unlocked) -> Sharing:
    memory = FingerprintMemory(s.config_dir / "fingerprints.json")
    return Sharing(s.flows.api, unlocked.keys, memory, s.server)


def _expiry(typed: str | None) -> int:
    if typed is None:
        return 0
    try:
        day = date.fromisoformat(typed)
    except ValueError:
        raise StudyCommandError(f"'{typed}' is not a date. Use YYYY-MM-DD.") from None
    try:
        return expiry_of_date(day)
    except ShareProblem as error:
        raise StudyCommandError(str(error)) from None


def _when(seconds: int) -> str:
    if seconds == 0:
        return "never"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M UTC")


async def cmd_share(s: Session, a: argparse.Namespace) -> None:
    """Share a study with a person, by email."""
    unlocked, row = await pick_study(s, a.study)
    sharing = _sharing(s, unlocked)
    permission = _permission(a.perm)
    try:
        result = await sharing.share(
            row.study_id, a.to, permission, _expiry(a.expires), a.message or ""
        )
    except (ShareProblem, FingerprintChanged, KeysRefused) as error:
        raise StudyCommandError(str(error)) from None
    share = result.share
    label = PERMISSION_LABELS[permission]
    if result.recipient is None:
        say(
            f"Shared with {share.recipient_email} ({label}), pending: they have no account yet. "
            "The share completes the next time you use SecurePACS after they have registered."
        )
    else:
        say(f"Shared with {share.recipient_email} ({label}); share id {share.share_id}.")
        if result.recipient.seen == "new":
            say(
                f"Their key fingerprint: {result.recipient.fingerprint}\n"
                "Compare it with them in person or by phone; a later change will be flagged."
            )
    say(f"Expires: {_when(share.expires_at)}")


def _permission(name: str) -> int:
    try:
        return permission_of(name)
    except ShareProblem as error:
        raise StudyCommandError(str(error)) from None


async def cmd_link(s: Session, a: argparse.Namespace) -> None:
    """Create an anonymous link to a study; the URL is shown once."""
    unlocked, row = await pick_study(s, a.study)
    password = None
    if a.password:
        password = secret_line("Link password: ")
        if not password:
            raise StudyCommandError("The link password cannot be empty.")
    try:
        created = await _sharing(s, unlocked).create_link(
            row.study_id, _permission(a.perm), _expiry(a.expires), password
        )
    except ShareProblem as error:
        raise StudyCommandError(str(error)) from None
    say(created.url)
    print(  # noqa: T201
        f"Link {created.link.link_id} ({PERMISSION_LABELS[created.link.permission]}, expires "
        f"{_when(created.link.expires_at)}). This is the only time the link is shown: pass it "
        "on through a secure channel. Anyone with it can open the study"
        + (" with the password." if password else "."),
        file=sys.stderr,
    )


async def cmd_shares(s: Session, a: argparse.Namespace) -> None:
    """Who a study is shared with, and its links."""
    _, row = await pick_study(s, a.study)
    # pick_study's worklist load has already completed pending shares (and said so).
    listing = await s.flows.api.shares(row.study_id)
    if not listing.shares and not listing.links:
        say("This study is not shared.")
    for share in listing.shares:
        state = " (pending)" if share.pending else ""
        say(
            f"{share.share_id}  {share.recipient_email}{state}  "
            f"{PERMISSION_LABELS[share.permission]}  expires {_when(share.expires_at)}  "
            f"created {_when(share.created_at)} by {share.created_by}"
        )
    for link in listing.links:
        say(
            f"{link.link_id}  anonymous link  {PERMISSION_LABELS[link.permission]}  "
            f"expires {_when(link.expires_at)}  created {_when(link.created_at)} by "
            f"{link.created_by}"
        )


async def cmd_unshare(s: Session, a: argparse.Namespace) -> None:
    """Revoke a share or a link, by the id `securepacs shares` shows."""
    unlocked = await s.unlock()
    typed = a.share.strip().lower()
    if len(typed) != 32 or any(c not in "0123456789abcdef" for c in typed):
        raise StudyCommandError(
            f"'{a.share}' is not a share id. `securepacs shares STUDY` lists the ids."
        )
    try:
        what = await _sharing(s, unlocked).unshare(typed)
    except ShareProblem as error:
        raise StudyCommandError(str(error)) from None
    say(f"The {what} is revoked; access ends now.")


async def cmd_trust(s: Session, a: argparse.Namespace) -> None:
    """Accept a person's changed keys after comparing their fingerprint with them."""
    unlocked = await s.unlock()
    try:
        now = await _sharing(s, unlocked).accept_keys(a.email, a.fingerprint)
    except (ShareProblem, KeysRefused) as error:
        raise StudyCommandError(str(error)) from None
    say(f"The keys of {a.email.strip().lower()} (fingerprint {now}) are trusted on this device.")


def add_share_commands(sub: Any) -> None:
    """Register the sharing commands on the CLI's subparsers."""
    perms = ["view", "download", "edit", "admin"]
    p = sub.add_parser("share", help="share a study with a person")
    p.add_argument("study", help="study id (the first digits are enough)")
    p.add_argument("--to", required=True, help="the recipient's email")
    p.add_argument("--perm", required=True, choices=perms, help="what they may do")
    p.add_argument("--expires", help="last day of access (YYYY-MM-DD, UTC)")
    p.add_argument("--message", help="a short note, without patient identifiers")
    p.set_defaults(run=cmd_share)
    p = sub.add_parser("link", help="create an anonymous link to a study")
    p.add_argument("study")
    p.add_argument("--perm", default="view", choices=perms[:2], help="default: view")
    p.add_argument("--expires", help="last day the link works (YYYY-MM-DD, UTC)")
    p.add_argument("--password", action="store_true", help="ask for a link password")
    p.set_defaults(run=cmd_link)
    p = sub.add_parser("shares", help="list a study's shares and links")
    p.add_argument("study")
    p.set_defaults(run=cmd_shares)
    p = sub.add_parser("trust", help="accept a person's changed keys, after comparing them")
    p.add_argument("email")
    p.add_argument("fingerprint", help="the fingerprint you compared with them, in quotes")
    p.set_defaults(run=cmd_trust)
    p = sub.add_parser("unshare", help="revoke a share or a link")
    p.add_argument("share", help="the share or link id that `securepacs shares` shows")
    p.set_defaults(run=cmd_unshare)
