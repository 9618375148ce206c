"""A removed site brought back from its final backup (``siteops restore-site``).

``remove-site`` archives a site's record with the path of its final backup:
the database, all of ``shared/`` (``.env``, uploads, logs) and the release
it ran. Restoring it makes the record active again in a free port block,
with those of its domains no other site serves meanwhile; the site is
converged as a new one, the final backup is put into its new tree
(``siteops-restore SITE ID --whole``), and a second converge brings the
restored ``.env``'s managed blocks (the new ports) and the database role's
password (the restored one) in line. The units restart and the site must
answer through nginx.

Until it succeeds the registry keeps the site archived: a failed or killed
run is finished by running ``restore-site`` again (each step is safe to
repeat).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath
from typing import Any

from siteops.errors import SiteModelError, SiteopsError
from siteops.hostfacts import PLACEHOLDER, running_units
from siteops.layout import layout
from siteops.model import ArchivedSite, HostSites, SiteStatus
from siteops.operations import (
    SERVING_TIMEOUT,
    RunFailed,
    _block_busy,
    _with_status,
    on_host,
    other_hosts_domains,
    outcome,
    reconcile,
    remove,
    write_markdown,
)
from siteops.ports import allocate_block, block_ports
from siteops.registry import Registry, inventory_locked, utc_now
from siteops.remote import root_argv
from siteops.sites import revived_site, taken_blocks
from siteops.target import SITE_PLAYBOOK, OnProgress, Target


class RestoreFailed(SiteopsError):  # noqa: N818 (reads as the condition it reports)
    """Putting the final backup back failed on the host; the site stays archived."""

    code = 1


@dataclass(frozen=True)
class Revived:
    name: str
    backup: str  # the final backup's path on the host
    block: int
    domains: list[str]
    dropped: list[str]  # domains another site serves now
    release: str | None
    code: int  # what nginx answered afterwards
    units: dict[str, Any] = field(default_factory=dict)


def _arrived(sites: HostSites, name: str, arriving: ArchivedSite | None) -> HostSites:
    """``sites`` with ``arriving`` (a site moving here) as its archived record ``name``."""
    if arriving is None:
        return sites
    if name in sites.sites or name in sites.archived:
        raise SiteModelError(f"move-site {name}", [
            f"name: the destination already has {'a' if name in sites.sites else 'an archived'} "
            f"site {name!r}; remove (and forget) it there first"])  # fmt: skip
    data = sites.to_yaml_data()
    data["siteops_archived_sites"][name] = arriving.model_dump(mode="json")
    return HostSites.model_validate(data)


def _domains_elsewhere(target: Target, name: str, moving_from: str | None) -> dict[str, Any]:
    """The domains other hosts serve, but those of ``name`` on the host it moves from."""
    return {domain: owner for domain, owner in other_hosts_domains(target).items()
            if owner != (moving_from, name)}  # fmt: skip


def revive(
    target: Target,
    name: str,
    on_progress: OnProgress,
    *,
    arriving: ArchivedSite | None = None,
    moving_from: str | None = None,
) -> Revived:
    """Bring the archived site ``name`` back from its final backup (see the module).

    ``arriving``: the record of a site moving here from host ``moving_from``
    (its backup already on this host), archived here only while it is
    restored: a failure leaves this host's registry as it was.
    """
    target.check_inventory()
    registry = Registry(target.sites_file)
    # Refused before the host is contacted: not archived, or none of its domains free.
    first = _arrived(registry.load(), name, arriving)
    revived_site(first, name, allocate_block(taken_blocks(first), set()),
                 _domains_elsewhere(target, name, moving_from))  # fmt: skip
    purpose = f"move-site {name}" if arriving else f"restore-site {name}"
    with (
        registry.locked(timeout=target.lock_timeout, purpose=purpose),
        on_host(target, purpose, [name], on_progress) as session,
    ):
        before = reconcile(target, registry, session, on_progress, take_newer=True)
        archived = _arrived(before, name, arriving)
        backup = archived.archived[name].backup if name in archived.archived else ""
        # Clear of the ports the host listens on, as add-site chooses.
        busy: set[int] = set(session.listening)
        try:
            while True:
                block = allocate_block(taken_blocks(archived), busy)
                with inventory_locked(target.inventory, timeout=target.lock_timeout,
                                      purpose=f"{purpose} on {target.host}"):  # fmt: skip
                    updated, dropped = revived_site(
                        archived, name, block, _domains_elsewhere(target, name, moving_from)
                    )
                    registry.save(updated, on_host=session.record_sites)
                on_progress(f"converging {name} in port block {block}")
                new = {"siteops_only": [name], "siteops_new_sites": {name: block_ports(block)}}
                result = target.run(SITE_PLAYBOOK, new, check=False, on_progress=on_progress,
                                    cancel=session.lost)  # fmt: skip
                if not _block_busy(result, busy):
                    break
            if result.exit_code != 0:
                raise RunFailed(
                    f"converging {name!r} failed", result, _again(name, target, moving_from)
                )
            on_progress(f"putting the final backup {backup} back")
            done = session.restore(layout().backup_root, name, PurePosixPath(backup).name,
                                   whole=True)  # fmt: skip
            if done.get("error"):
                raise RestoreFailed(f"putting {backup} back failed: {done['error']}; "
                                    f"{_again(name, target, moving_from)}")  # fmt: skip
            on_progress(f"converging {name} with its restored .env")
            result = target.run(SITE_PLAYBOOK, {"siteops_only": [name]}, check=False,
                                on_progress=on_progress, cancel=session.lost)  # fmt: skip
            if result.exit_code != 0:
                raise RunFailed(
                    f"converging the restored {name!r} failed",
                    result,
                    _again(name, target, moving_from),
                )
        except BaseException:
            # As before: archived again (the next restore-site starts over), or, for a
            # site moving here, not known here at all.
            registry.save(before, on_host=session.record_sites)
            raise
        final = _with_status(updated, [name], SiteStatus.ACTIVE)
        registry.save(final, on_host=session.record_sites)
        write_markdown(target, final)
        site = final.sites[name]
        release = done.get("current")
        wanted = running_units(name, site) if release != PLACEHOLDER else {}
        if wanted:
            session.restart(list(wanted))
        units = session.serving(wanted, SERVING_TIMEOUT) if wanted else {}
        code = session.through_nginx(site.domains.primary)
        session.finish("ok" if 200 <= code < 400 and outcome(result) == "ok" else "failed")
    return Revived(name, backup, block, site.domains.all(), dropped,
                   str(release) if release else None, code, units)  # fmt: skip


def _again(name: str, target: Target, moving_from: str | None) -> str:
    if moving_from:
        return (f"{name} still serves from {moving_from}, and {target.host}'s registry is as "
                f"it was; fix the cause, then run `siteops --host {moving_from} move-site {name} "
                f"--to {target.host}` again")  # fmt: skip
    return (f"the site stays archived; fix the cause, then run `siteops restore-site {name}` "
            "again (safe to repeat)")  # fmt: skip


class MoveFailed(SiteopsError):  # noqa: N818 (reads as the condition it reports)
    """A step of move-site failed; the message says where the site serves from."""

    code = 1


@dataclass(frozen=True)
class Moved:
    name: str
    source: str
    to: str
    address: str  # where the site's domains must point now (the destination's address)
    revived: Revived
    final_backup: str | None  # on the source host, kept


def move(source: Target, to_host: str, name: str, on_progress: OnProgress) -> Moved:
    """Move site ``name`` from ``source``'s host to ``to_host`` (``siteops move-site``).

    A backup of everything a final backup holds is taken on the source host
    and copied to the destination, where the site is restored as
    ``restore-site`` does (a free block there, the same domains) and must
    answer through nginx; only then is it removed from the source host as
    ``remove-site`` does (its final backup kept there, its record archived).
    Until then a failure leaves the site serving from the source host, and
    the destination's registry as it was. Writes the site takes on the source
    host after its backup stay only in the source's final backup.
    """
    source.check_inventory()
    if to_host == source.host:
        raise SiteModelError(f"move-site {name}", [f"to: {name!r} is already on {to_host!r}"])
    dest = replace(source, host=to_host)
    dest.check_inventory()
    here = Registry(source.sites_file).load()
    if name not in here.sites:
        raise SiteModelError(
            f"move-site {name}", [f"site: {name!r} is not an active site of {source.host}"]
        )
    record = here.sites[name].model_dump(mode="json")
    arriving = ArchivedSite.model_validate({"site": record, "archived_at": utc_now(),
                                            "backup": "/pending"})  # fmt: skip
    # Refused before anything is taken: the destination has the name, or a domain of it.
    _arrived(Registry(dest.sites_file).load(), name, arriving)
    purpose = f"move-site {name} --to {to_host}"
    with on_host(source, purpose, [name], on_progress) as session:
        on_progress(f"taking a backup of {name} on {source.host} to move")
        taken = session.move_backup(name)
        if taken.get("error"):
            session.finish("failed")
            raise MoveFailed(
                f"the backup of {name!r} to move failed: {taken['error']}; nothing changed, "
                f"{name} still serves from {source.host}"
            )
        path = str(taken["path"])
        on_progress(f"copying {path} to {to_host}")
        _copy_backup(source, dest, path)
        session.finish("ok")
    arriving = arriving.model_copy(update={"backup": path})
    # A failure here says itself that the site still serves from the source host.
    revived = revive(dest, name, on_progress, arriving=arriving, moving_from=source.host)
    if not 200 <= revived.code < 400:
        raise MoveFailed(
            f"{name} on {to_host} answers {revived.code} through nginx; it still serves from "
            f"{source.host}: fix it on {to_host}, or remove it there "
            f"(`siteops --host {to_host} remove-site {name}`)"
        )
    on_progress(f"removing {name} from {source.host}")
    removed = remove(source, name, dry_run=False, on_progress=on_progress)
    address = str(dest.variables().get("ansible_host") or to_host)
    return Moved(name, source.host, to_host, address, revived, removed.backup)


def _copy_backup(source: Target, dest: Target, path: str) -> None:
    """The backup directory ``path`` from the source host into the same place on ``dest``'s."""
    where = PurePosixPath(path)
    send = root_argv(source.variables(), source.host,
                     ["tar", "-C", str(where.parent), "-cf", "-", where.name])  # fmt: skip
    unpack = 'install -d -m 0700 "$1" && tar -C "$1" -xf -'
    receive = root_argv(dest.variables(), dest.host, ["sh", "-c", unpack, "sh", str(where.parent)])
    with subprocess.Popen(send, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL) as sender:  # fmt: skip
        got = subprocess.run(receive, stdin=sender.stdout, capture_output=True, check=False)
        sent_err = sender.stderr.read() if sender.stderr else b""
        sender.wait()
    if sender.returncode != 0 or got.returncode != 0:
        said = (sent_err or got.stderr).decode("utf-8", "replace").strip()[-500:]
        raise MoveFailed(f"copying {path} to {dest.host} failed: {said or 'tar failed'}; "
                         f"nothing changed, the site still serves from {source.host}")  # fmt: skip
