"""What several operators of one host share there: its lock, its registry record, its audit log.

Changing commands take the lock and record their sites file through
:func:`siteops.operations.on_host`; the commands here look at the lock
(``lock status``), release one (``lock release [--force]``), take the host's
copy of the sites file into the inventory (``registry pull``) and read the
audit log (``audit``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from siteops.errors import SiteModelError, SiteopsError
from siteops.hostlock import audit_entries, lock_release, lock_status, read_record
from siteops.layout import layout
from siteops.operations import write_markdown
from siteops.registry import Registry
from siteops.revision import HostRecord, Standing, compare, differences
from siteops.target import Target


def lock_state(target: Target) -> dict[str, Any]:
    """``{"held": bool, "holder"|"left": …}`` for the host's lock."""
    target.check_inventory()
    return lock_status(target.variables(), target.host)


def release_lock(target: Target, *, force: bool) -> dict[str, Any]:
    """Release the host's lock; refused while its holder runs, unless ``force``."""
    target.check_inventory()
    return lock_release(target.variables(), target.host, force=force)


@dataclass(frozen=True)
class Pulled:
    record: HostRecord
    standing: Standing
    changes: list[str]
    written: bool


def registry_pull(target: Target, *, dry_run: bool) -> Pulled:
    """Replace the inventory's sites file with the host's copy (what changes, first)."""
    target.check_inventory()
    registry = Registry(target.sites_file)
    with registry.locked(timeout=target.lock_timeout, purpose="registry pull"):
        record = read_record(target.variables(), target.host)
        if record.text is None:
            raise SiteopsError(
                f"host {target.host!r} has no registry record yet (no siteops run since "
                "siteops began recording them): nothing to pull; the next changing run records one"
            )
        host_sites = record.sites(target.host, layout().registry_dir)
        standing, _ = compare(registry.text(), record)
        try:
            changes = differences(registry.load(), host_sites)
        except SiteModelError:
            changes = ["this inventory's sites file does not load; all of it is replaced"]
        if standing is Standing.CURRENT or dry_run:
            return Pulled(record, standing, changes, written=False)
        registry.replace_text(record.text)
        write_markdown(target, host_sites)
    return Pulled(record, standing, changes, written=True)


_RELATIVE = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``2h``, ``3d``, ``2026-11-28`` or ``2026-11-28T10:00`` (UTC) as an aware datetime."""
    now = now or datetime.now(UTC)
    match = _RELATIVE.match(text.strip())
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise SiteModelError(
            "--since",
            [f"since: {text!r} is neither a duration (30m, 2h, 3d, 1w) nor a date or time "
             "(2026-11-28, 2026-11-28T10:00, UTC)"],
        ) from None  # fmt: skip
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _entry_time(entry: Mapping[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(str(entry.get("time")).replace("Z", "+00:00"))
    except ValueError:
        return None


def audit(target: Target, *, site: str | None, since: datetime | None) -> list[dict[str, Any]]:
    """The host's audit log, oldest first, only ``site``'s and from ``since`` when given."""
    target.check_inventory()
    entries = audit_entries(target.variables(), target.host)
    if site is not None:
        entries = [e for e in entries if site in (e.get("sites") or [])]
    if since is not None:
        entries = [e for e in entries if (t := _entry_time(e)) is not None and t >= since]
    return entries
