"""A site's backups from the CLI: take one now, list them, restore one.

The host keeps them (roles/site_backup: ``siteops-backup``, one directory per
backup under the layout's backup root, retention by days and count);
``backup`` starts the site's backup unit, so its result is what ``status``
and ``doctor`` read; ``restore`` takes a backup of the current state first,
then restores the database and ``shared/uploads``, restarts the site's units
and checks the site through nginx. Both hold the host's lock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from siteops.errors import SiteModelError, SiteopsError
from siteops.hostfacts import running_units
from siteops.hostlock import list_backups
from siteops.layout import layout
from siteops.operations import SERVING_TIMEOUT, OnProgress, Target, known_site, site_session


class BackupFailed(SiteopsError):  # noqa: N818 (reads as the condition it reports)
    """A backup or a restore did not succeed on the host; the message says why."""

    code = 1


def backup(target: Target, name: str, on_progress: OnProgress) -> dict[str, Any]:
    """A backup of ``name`` now; its result as the host records it (``backup``, ``message``)."""
    known_site(target, name)
    with site_session(target, f"backup {name}", name, on_progress) as session:
        done = session.backup(layout().backup_root, name)
        session.finish("failed" if done.get("error") else "ok")
    if done.get("error"):
        raise BackupFailed(
            f"the backup of {name!r} failed: {done['error']}; its earlier backups are kept "
            f"(see `siteops backups {name}`)"
        )
    return dict(done.get("last") or {})


def backups(target: Target, name: str) -> dict[str, Any]:
    """The backups of ``name`` on the host, newest first, with its last backup and restore test."""
    known_site(target, name)
    return list_backups(target.variables(), target.host, layout().backup_root, name)


@dataclass(frozen=True)
class Restored:
    name: str
    backup: str
    safety: str  # the backup of the state before the restore
    output: str
    code: int  # what nginx answered afterwards
    units: dict[str, Any] = field(default_factory=dict)


def restore(target: Target, name: str, backup_id: str | None, on_progress: OnProgress) -> Restored:
    """Restore ``name``'s database and uploads from ``backup_id`` (default: its newest backup).

    A backup of the current state is taken first (nothing is restored if it
    fails); afterwards the site's units restart and the site must answer
    through nginx (2xx or 3xx).
    """
    site = known_site(target, name).sites[name]
    listed = list_backups(target.variables(), target.host, layout().backup_root, name)
    found = [b["id"] for b in listed.get("backups", [])]
    if not found:
        raise SiteModelError(f"restore {name}", [f"backup: site {name!r} has no backup yet"])
    chosen = backup_id or found[0]
    if chosen not in found:
        raise SiteModelError(
            f"restore {name}",
            [f"backup: {name!r} has no backup {chosen!r} (see `siteops backups {name}`)"],
        )
    with site_session(target, f"restore {name}", name, on_progress) as session:
        on_progress(f"taking a backup of the current state of {name}")
        first = session.backup(layout().backup_root, name)
        # A raise in the block is logged on the host as failed (siteops.hostlock).
        if first.get("error"):
            raise BackupFailed(
                f"the backup of the current state of {name!r} failed: {first['error']}; "
                "nothing was restored"
            )
        on_progress(f"restoring {name} from {chosen}")
        done = session.restore(name, chosen)
        if done.get("error"):
            raise BackupFailed(
                f"restoring {name!r} from {chosen} failed: {done['error']}; the backup of the "
                f"state before is {first['last'].get('backup')}"
            )
        wanted = running_units(name, site)
        if wanted:
            session.restart(list(wanted))
        units = session.serving(wanted, SERVING_TIMEOUT) if wanted else {}
        code = session.through_nginx(site.domains.primary)
        session.finish("ok" if 200 <= code < 400 else "failed")
    return Restored(name, chosen, str(first["last"].get("backup")), str(done.get("output", "")),
                    code, units)  # fmt: skip
