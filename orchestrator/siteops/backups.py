"""A site's backups from the CLI: take one now, list them, restore one.

The host keeps them (roles/site_backup: ``siteops-backup``, one directory per
backup under the layout's backup root, retention by days and count);
``backup`` starts the site's backup unit, so its result is what ``status``
and ``doctor`` read; ``restore`` takes a backup of the current state first,
then restores the database and the uploads (``Layout.uploads_dir``), restarts the site's units
and checks the site through nginx. Both hold the host's lock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from siteops.errors import SiteModelError, SiteopsError
from siteops.hostfacts import PLACEHOLDER, running_units
from siteops.hostlock import list_backups, offsite
from siteops.layout import layout
from siteops.operations import SERVING_TIMEOUT, known_site, site_session
from siteops.target import OnProgress, Target


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


def _offsite(target: Target, site: str | None) -> dict[str, Any]:
    answer = offsite(target.variables(), target.host, site)
    if answer.get("off"):
        raise SiteModelError(
            "offsite", [f"offsite copies are off on host {target.host!r}: set "
                        "site_backup_offsite_host (and its password) in the host's variables, "
                        "then `siteops apply`"])  # fmt: skip
    if answer.get("error"):
        raise BackupFailed(f"host {target.host!r}: {answer['error']}")
    return answer


def offsite_backups(target: Target, name: str) -> list[dict[str, Any]]:
    """The offsite snapshots of ``name``, newest first.

    Each: ``snapshot`` (short id), ``id``, ``time``, ``backup`` (its local id), ``kind``.
    """
    known_site(target, name)
    return list(_offsite(target, name).get("snapshots") or [])


def offsite_key(target: Target) -> str:
    """The host's public key, to authorize for the repository's account on the offsite target."""
    return str(_offsite(target, None).get("key") or "")


@dataclass(frozen=True)
class Restored:
    name: str
    backup: str
    safety: str  # the backup of the state before the restore
    output: str
    code: int  # what nginx answered afterwards
    units: dict[str, Any] = field(default_factory=dict)


def restore(
    target: Target,
    name: str,
    backup_id: str | None,
    on_progress: OnProgress,
    *,
    from_offsite: bool = False,
) -> Restored:
    """Restore ``name``'s database and uploads from ``backup_id`` (default: its newest backup).

    With ``from_offsite``, ``backup_id`` names an offsite snapshot (default:
    the newest), which is first put back among the local backups. A backup
    of the current state is taken first (nothing is restored unless it is
    kept locally); afterwards the site's units restart and the site must
    answer through nginx (2xx or 3xx).
    """
    site = known_site(target, name).sites[name]
    if from_offsite:
        snapshots = list(_offsite(target, name).get("snapshots") or [])
        known = {s["snapshot"] for s in snapshots} | {s["id"] for s in snapshots}
        if not snapshots:
            raise SiteModelError(
                f"restore {name}", [f"snapshot: site {name!r} has no offsite snapshot yet"]
            )
        if backup_id and backup_id not in known:
            raise SiteModelError(f"restore {name}", [
                f"snapshot: {name!r} has no offsite snapshot {backup_id!r} "
                f"(see `siteops backups {name} --offsite`)"])  # fmt: skip
        chosen = backup_id or snapshots[0]["snapshot"]
    else:
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
    root = layout().backup_root
    with site_session(target, f"restore {name}", name, on_progress) as session:
        # Fetched first: the backup of the current state next may forget old offsite copies.
        if from_offsite:
            on_progress(f"fetching offsite snapshot {chosen} of {name}")
            fetched = session.fetch_offsite(name, chosen)
            # A raise in the block is logged on the host as failed (siteops.hostlock).
            if fetched.get("error"):
                raise BackupFailed(f"fetching offsite snapshot {chosen} of {name!r} failed: "
                                   f"{fetched['error']}; nothing was restored")  # fmt: skip
            chosen = str(fetched["id"])
        on_progress(f"taking a backup of the current state of {name}")
        # Its retention leaves the backup to restore alone.
        first = session.backup(root, name, keep=chosen)
        if first.get("error") and not first.get("kept"):
            raise BackupFailed(
                f"the backup of the current state of {name!r} failed: {first['error']}; "
                "nothing was restored"
            )
        if first.get("error"):
            on_progress(f"the backup of the current state is kept on the host: {first['error']}")
        on_progress(f"restoring {name} from {chosen}")
        done = session.restore(root, name, chosen)
        if done.get("error"):
            raise BackupFailed(
                f"restoring {name!r} from {chosen} failed: {done['error']}; the backup of the "
                f"state before is {first['last'].get('backup')}"
            )
        # A site still on its placeholder release has no units running to restart.
        wanted = running_units(name, site) if done.get("current") != PLACEHOLDER else {}
        if wanted:
            session.restart(list(wanted))
        units = session.serving(wanted, SERVING_TIMEOUT) if wanted else {}
        code = session.through_nginx(site.domains.primary)
        session.finish("ok" if 200 <= code < 400 else "failed")
    return Restored(name, chosen, str(first["last"].get("backup")), str(done.get("output", "")),
                    code, units)  # fmt: skip
