"""The inventory's sites file against the registry record the host keeps.

Every changing run records on the host the sites file it converges (its text,
a revision number counting up, and the hashes of the last revisions; see
:mod:`siteops.hostsession`). Before the next run changes anything, the
inventory's file is compared with that record (:func:`compare`):

- ``current``: it is the file the host was last converged from;
- ``behind``: it is a file the host was converged from earlier: another
  inventory copy (another operator) has run since;
  A copy without the file (a fresh clone) counts as behind;
- ``diverged``: the host never saw it (edited by hand, merged in git, or
  the host's record was restored from elsewhere);
- ``new``: the host has no record yet (a new host, or one converged by an
  older siteops).

Only ``current`` and ``new`` are converged. ``add-site`` takes the host's
copy first when its own is ``behind``, since adding a site changes no other;
every other command is refused (:class:`RegistryConflict`) with the sites that
differ and the way out, ``siteops registry pull``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from siteops import yamltext
from siteops.errors import SiteopsError
from siteops.inventory import parse_host_sites
from siteops.model import HostSites


class RegistryConflict(SiteopsError):  # noqa: N818 (reads as the condition it reports)
    """The inventory's sites file is older than the host's record, or diverged from it."""

    code = 4


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class HostRecord:
    """The host's registry record (all empty on a host no siteops run has recorded)."""

    revision: int = 0
    sha256: str | None = None
    text: str | None = None
    at: str | None = None
    by: str | None = None
    command: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> HostRecord:
        return cls(
            revision=int(data.get("revision") or 0),
            sha256=data.get("sha256"),
            text=data.get("text"),
            at=data.get("at"),
            by=data.get("by"),
            command=data.get("command"),
            history=list(data.get("history") or []),
        )

    def sites(self, host: str, directory: str) -> HostSites:
        """The host's copy as sites (``directory``: where the host keeps it, for messages)."""
        return parse_host_sites(
            yamltext.load(self.text or ""), f"host {host}: {directory}/sites.yml"
        )

    def describe(self) -> str:
        return f"revision {self.revision} (`siteops {self.command}` by {self.by} at {self.at})"


class Standing(StrEnum):
    """How the inventory's sites file stands against the host's record."""

    NEW = "new"  # the host has no record yet
    CURRENT = "current"
    BEHIND = "behind"
    DIVERGED = "diverged"


def compare(local_text: str | None, record: HostRecord) -> tuple[Standing, int | None]:
    """The standing of ``local_text`` (None: no file) and the host revision it matches."""
    if record.sha256 is None:
        return Standing.NEW, None
    if local_text is None:  # a copy that never had this host's sites: older than any
        return Standing.BEHIND, 0
    digest = sha256(local_text)
    if digest == record.sha256:
        return Standing.CURRENT, record.revision
    for entry in record.history:
        if entry.get("sha256") == digest:
            return Standing.BEHIND, int(entry.get("revision") or 0)
    return Standing.DIVERGED, None


def differences(local: HostSites, host: HostSites) -> list[str]:
    """One line per site whose record differs between this inventory and the host."""
    lines: list[str] = []
    names = set(local.sites) | set(host.sites) | set(local.archived) | set(host.archived)
    for name in sorted(names):
        mine = local.sites.get(name) or local.archived.get(name)
        theirs = host.sites.get(name) or host.archived.get(name)
        if mine == theirs:
            continue
        if mine is None:
            lines.append(f"{name}: only on the host")
        elif theirs is None:
            lines.append(f"{name}: only in this inventory")
        elif name in host.archived and name not in local.archived:
            lines.append(f"{name}: removed on the host")
        elif name in local.archived and name not in host.archived:
            lines.append(f"{name}: removed in this inventory, not on the host")
        else:
            mine_data = mine.model_dump(mode="json")
            theirs_data = theirs.model_dump(mode="json")
            fields = sorted(k for k in mine_data.keys() | theirs_data.keys()
                            if mine_data.get(k) != theirs_data.get(k))  # fmt: skip
            lines.append(f"{name}: differs ({', '.join(fields)})")
    return lines


def conflict(
    host: str, standing: Standing, matched: int | None, record: HostRecord, lines: list[str]
) -> RegistryConflict:
    """The refusal of a run whose sites file is ``behind`` or ``diverged``."""
    if standing is Standing.BEHIND and not matched:
        why = f"this inventory has no sites file of the host, which is at {record.describe()}"
    elif standing is Standing.BEHIND:
        why = (f"this inventory's sites file is revision {matched}, older than the host's "
               f"{record.describe()}")  # fmt: skip
    else:
        why = (f"this inventory's sites file is not one the host was converged from (the host "
               f"is at {record.describe()}): edited by hand or merged")  # fmt: skip
    sites = "; ".join(lines) if lines else "no site record differs (only the file's text)"
    return RegistryConflict(
        f"refused on host {host!r}, nothing was changed: {why}. Sites that differ: {sites}. "
        f"Run `siteops --host {host} registry pull` to take the host's copy (it shows what "
        "changes), then run the command again."
    )
