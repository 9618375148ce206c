"""What the CLI's commands do: registry changes under the lock, playbook runs, the markdown.

Each operation follows the same order, so that bad input never reaches the
host and a failed run can be repeated:

1. take the registry lock (a second siteops on the same inventory waits, then
   fails naming the holder) and load ``sites.yml``;
2. check the request against the model; on a problem raise
   :class:`~siteops.errors.SiteModelError` with nothing changed anywhere;
3. save the intended state (``pending`` / ``removing``) atomically;
4. run the playbook for the sites concerned only;
5. record the outcome (``active``, ``failed``, archived) and regenerate the
   markdown registry.

With ``dry_run`` the playbook runs in check and diff mode with the intended
state passed as extra variables, and no file is written.

Each host of an inventory has its own registry and port blocks, but a domain
belongs to one site of the whole inventory: ``add`` also reads the other
hosts' registries, and checks and saves a new site under the inventory's lock
as well, so that two hosts never take the same domain at once.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from siteops import hosts
from siteops.changes import SiteChanges, change_site, describe_changes
from siteops.doctor import Finding, findings
from siteops.errors import HostRefused, SiteModelError
from siteops.hostfacts import (
    FACTS_PLAYBOOK,
    HostFacts,
    facts_request,
    parse_facts,
    proxied_ports,
    running_units,
)
from siteops.hostlock import HostSession, holder_text, host_session
from siteops.inventory import (
    HOSTS_FILE,
    hosts_mapping,
    inventory_hosts,
    load_host_sites,
    load_inventory_sites,
    read_hosts_yaml,
    sites_path,
)
from siteops.layout import layout
from siteops.markdown import render_registry
from siteops.model import ArchivedSite, HostSites, Site, SiteStatus
from siteops.ports import MAX_BLOCKS, allocate_block, block_ports
from siteops.registry import Registry, inventory_locked, render, utc_now, write_atomically
from siteops.release import packed
from siteops.remote import host_vars, ssh_argv
from siteops.revision import Standing, compare, conflict, differences
from siteops.runner import RunResult, StartedRun
from siteops.sites import SiteAnswers, add_site, inventory_domain_owners, taken_blocks
from siteops.target import SITE_PLAYBOOK, OnProgress, Target, apply_playbook

DEPLOY_PLAYBOOK = "deploy.yml"
RELEASE_ARTIFACT = "siteops_release"
RELEASE_STEPS_ARTIFACT = "siteops_release_steps"
REMOVE_PLAYBOOK = "remove-site.yml"
FINAL_BACKUP_ARTIFACT = "siteops_final_backup"
# A host variable naming the ACME CA of new sites on that host when add-site is
# given no --ca-directory (the sandbox names its test CA; a host being tried
# out may name Let's Encrypt's staging CA). Unset: the site model's default.
HOST_CA_DIRECTORY = "siteops_ca_directory"


def host_ca_directory(target: Target) -> str | None:
    """The host's default ACME directory (``siteops_ca_directory``), if its inventory sets one."""
    value = target.variables().get(HOST_CA_DIRECTORY)
    return str(value) if value else None


class RunFailed(RuntimeError):  # noqa: N818 (reads as the condition it reports)
    """A playbook run did not succeed; ``hint`` says how to finish the job."""

    def __init__(self, what: str, result: RunResult, hint: str) -> None:
        self.result = result
        self.hint = hint
        super().__init__(what)


def write_markdown(target: Target, sites: HostSites, facts: HostFacts | None = None) -> Path:
    """Regenerate the host's markdown registry (with live facts when given)."""
    text = render_registry(
        target.host,
        sites,
        None if facts is None else facts.registry_facts(),
        as_of=None if facts is None else utc_now(),
    )
    target.registry_file.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(target.registry_file, text)
    return target.registry_file


def _with_status(sites: HostSites, names: Iterable[str], status: SiteStatus) -> HostSites:
    """``sites`` with the named sites at ``status``; ``sites`` itself when they all are already.

    The usual no-op apply changes no status: no copy of the whole registry to
    validate again (~25 ms with 50 sites).
    """
    names = list(names)
    if all(sites.siteops_sites[name].status == status.value for name in names):
        return sites
    data = sites.to_yaml_data()
    for name in names:
        data["siteops_sites"][name]["status"] = status.value
    return HostSites.model_validate(data)


def outcome(result: RunResult) -> str:
    """A run's result as the host's audit log names it."""
    return {0: "ok", 130: "cancelled"}.get(result.exit_code, "failed")


@contextlib.contextmanager
def on_host(
    target: Target, purpose: str, sites: list[str], on_progress: OnProgress
) -> Iterator[HostSession]:
    """Hold the host's lock for the ``with`` block (see :mod:`siteops.hostlock`)."""

    def waiting(holder: Mapping[str, Any] | None) -> None:
        on_progress(f"waiting for the lock of host {target.host}: {holder_text(holder)}")

    with host_session(
        target.variables(), target.host, purpose=purpose, args=target.argv, sites=sites,
        timeout=target.lock_timeout, on_wait=waiting,
    ) as session:  # fmt: skip
        if session.taken_over:
            on_progress(
                f"took over the lock of host {target.host} left by "
                f"{holder_text(session.taken_over)} (that run ended without releasing it)"
            )
        yield session


def reconcile(
    target: Target,
    registry: Registry,
    session: HostSession,
    on_progress: OnProgress,
    *,
    take_newer: bool = False,
    loaded: HostSites | None = None,
) -> HostSites:
    """The sites to converge: this inventory's, once it stands right with the host's record.

    ``current`` and ``new`` go ahead; ``behind`` takes the host's copy when
    ``take_newer`` (add-site), else it and ``diverged`` raise
    :class:`~siteops.revision.RegistryConflict` naming the sites that differ.
    ``loaded``: the registry as the command loaded it while holding its lock
    (the same text), returned as it is rather than loaded again.
    """
    record = session.record
    standing, matched = compare(registry.text(), record)
    if standing in (Standing.NEW, Standing.CURRENT) or record.text is None:
        return registry.load() if loaded is None else loaded
    host_sites = record.sites(target.host, layout().registry_dir)
    lines = differences(registry.load(), host_sites)
    if standing is Standing.BEHIND and take_newer:
        registry.replace_text(record.text)
        write_markdown(target, host_sites)
        on_progress(
            f"this inventory's sites file was behind the host's {record.describe()}; took the "
            f"host's copy first: {'; '.join(lines) or 'no site record differs'}"
        )
        return host_sites
    raise conflict(target.host, standing, matched, record, lines)


def gather_facts(
    target: Target, sites: HostSites, names: Iterable[str], on_progress: OnProgress
) -> HostFacts:
    """Run the read-only facts playbook for the named sites (none: listeners only)."""
    result = target.run(
        FACTS_PLAYBOOK,
        {"siteops_facts_sites": facts_request(sites, names)},
        check=False,
        on_progress=on_progress,
    )
    if result.exit_code != 0:
        raise RunFailed(
            "gathering facts from the host failed",
            result,
            "Check that the host answers (siteops sandbox status, or ssh to it), then retry.",
        )
    return parse_facts(result.artifacts)


@dataclass(frozen=True)
class Added:
    name: str
    site: Site
    result: RunResult
    dry_run: bool


def _refuse_existing(sites: HostSites, name: str) -> None:
    site = sites.sites.get(name)
    if site is not None and site.status in (SiteStatus.PENDING, SiteStatus.FAILED):
        raise SiteModelError(
            f"new site {name!r}",
            [
                f"name: site {name!r} is already in the registry ({site.status!s}: "
                f"its last run did not finish); run `siteops apply {name}` to finish it, "
                f"or `siteops remove-site {name}` to drop it"
            ],
        )


def other_hosts_domains(target: Target) -> dict[str, tuple[str, str]]:
    """The domains the other hosts of the inventory serve, mapped to (host, site)."""
    hosts = load_inventory_sites(target.inventory)
    hosts.pop(target.host, None)
    return inventory_domain_owners(hosts)


def _check_new_site(target: Target, current: HostSites, name: str, answers: SiteAnswers) -> None:
    """Everything about a new site but live listeners, checked without the host."""
    _refuse_existing(current, name)
    block = allocate_block(taken_blocks(current), set())
    add_site(current, name, replace(answers, block=block), other_hosts_domains(target))


BUSY_PORTS_ARTIFACT = "siteops_busy_ports"


def _block_busy(result: RunResult, busy: set[int]) -> bool:
    """Whether the run stopped because ports of the new block listen (added to ``busy``)."""
    ports = result.artifacts.get(BUSY_PORTS_ARTIFACT)
    if result.exit_code == 0 or not isinstance(ports, list) or not ports:
        return False
    found = {int(port) for port in ports}
    if found <= busy:  # the same ports again: no progress, report the failure
        return False
    busy |= found
    return True


def add(
    target: Target,
    name: str,
    answers: SiteAnswers,
    *,
    dry_run: bool,
    on_progress: OnProgress,
) -> Added:
    """Add site ``name`` to the registry and converge it (``answers.block`` is chosen here).

    The request is checked against the registry (and the domains of the
    inventory's other hosts) before the host is contacted. The block is the
    lowest one no site holds; the one Ansible run checks first that no process
    on the host listens in it, and if one does, hands the busy ports back and
    stops before any change: the block is then skipped and the run repeated
    (rare: the block is chosen clear of the ports the host listened on when
    the lock was taken). The
    site is saved as ``pending`` before Ansible runs, becomes ``active`` after
    a successful run and ``failed`` otherwise (then :class:`RunFailed` says to
    run ``siteops apply NAME``).
    """
    target.check_inventory()
    if answers.tls_email is not None and answers.ca_directory is None:
        answers = replace(answers, ca_directory=host_ca_directory(target))
    registry = Registry(target.sites_file)
    # Bad input is refused before the lock file is even created; checked again
    # under the locks, against what another run may have added meanwhile.
    _check_new_site(target, registry.load(), name, answers)
    purpose = f"add-site {name}"
    with registry.locked(timeout=target.lock_timeout, purpose=purpose):
        if dry_run:
            return _add_dry_run(target, registry.load(), name, answers, on_progress)
        with on_host(target, purpose, [name], on_progress) as session:
            current = reconcile(target, registry, session, on_progress, take_newer=True)
            _check_new_site(target, current, name, answers)
            # A block none of the host's listening ports is in (PostgreSQL's 5432 is
            # in block 43): the run's own check then finds it free the first time.
            busy: set[int] = set(session.listening)
            while True:
                block = allocate_block(taken_blocks(current), busy)
                chosen = replace(answers, block=block)
                # Another host may have taken one of the domains since: check again, and
                # save while no other host can (its pending site then holds the domains).
                with inventory_locked(target.inventory, timeout=target.lock_timeout,
                                      purpose=f"{purpose} on {target.host}"):  # fmt: skip
                    updated = add_site(current, name, chosen, other_hosts_domains(target))
                    registry.save(updated, on_host=session.record_sites)
                new = {"siteops_only": [name], "siteops_new_sites": {name: block_ports(block)}}
                result = target.run(SITE_PLAYBOOK, new, check=False, on_progress=on_progress,
                                    cancel=session.lost)  # fmt: skip
                if not _block_busy(result, busy):
                    break
            ok = result.exit_code == 0
            final = _with_status(updated, [name], SiteStatus.ACTIVE if ok else SiteStatus.FAILED)
            registry.save(final, on_host=session.record_sites)
            write_markdown(target, final)
            session.finish(outcome(result))
    if not ok:
        raise RunFailed(
            f"adding site {name!r} failed; it is kept in the registry as failed",
            result,
            f"Fix the cause, then run `siteops apply {name}` (safe to repeat), "
            f"or `siteops remove-site {name}` to drop it.",
        )
    return Added(name, final.sites[name], result, dry_run=False)


def _add_dry_run(
    target: Target, current: HostSites, name: str, answers: SiteAnswers, on_progress: OnProgress
) -> Added:
    """Check mode with the intended registry as extra variables; nothing is written."""
    busy: set[int] = set()
    while True:
        block = allocate_block(taken_blocks(current), busy)
        chosen = replace(answers, block=block)
        updated = add_site(current, name, chosen, other_hosts_domains(target))
        result = target.run(
            SITE_PLAYBOOK,
            {
                "siteops_sites": updated.to_yaml_data()["siteops_sites"],
                "siteops_only": [name],
                "siteops_new_sites": {name: block_ports(block)},
            },
            check=True,
            on_progress=on_progress,
        )
        if not _block_busy(result, busy):
            return Added(name, updated.sites[name], result, dry_run=True)


@dataclass(frozen=True)
class Applied:
    names: list[str]
    result: RunResult
    dry_run: bool


def apply(
    target: Target,
    names: list[str],
    *,
    dry_run: bool,
    on_progress: OnProgress,
    run: StartedRun | None = None,
) -> Applied:
    """Converge the registry onto the host: the named sites, or the baseline and every site.

    ``run``: the command's run, started by :meth:`Target.apply_run` before
    this module was imported (the CLI does so); none: started here. It waits,
    before its first task, until the host's lock is held.
    """
    if dry_run:
        return _apply_dry_run(target, names, on_progress)
    if run is None:
        with target.apply_run(names, dry_run=False, on_progress=on_progress) as started:
            assert started is not None  # not a dry run
            return _apply(target, names, started, on_progress)
    return _apply(target, names, run, on_progress)


def _apply_purpose(names: list[str]) -> str:
    """What an apply of ``names`` says it is doing (the locks' holder, the audit log)."""
    return f"apply {' '.join(names)}" if names else "apply (all)"


def _apply_dry_run(target: Target, names: list[str], on_progress: OnProgress) -> Applied:
    target.check_inventory()
    registry = Registry(target.sites_file)
    with registry.locked(timeout=target.lock_timeout, purpose=_apply_purpose(names)):
        chosen = _chosen(_known_sites(target, registry.load(), names), names)
        playbook, extravars = apply_playbook(names)
        result = target.run(playbook, extravars, check=True, on_progress=on_progress)
        return Applied(chosen, result, dry_run=True)


def _apply(target: Target, names: list[str], run: StartedRun, on_progress: OnProgress) -> Applied:
    registry = Registry(target.sites_file)
    purpose = _apply_purpose(names)
    with registry.locked(timeout=target.lock_timeout, purpose=purpose):
        loaded = _known_sites(target, registry.load(), names)
        with on_host(target, purpose, names, on_progress) as session:
            current = reconcile(target, registry, session, on_progress, loaded=loaded)
            _known_sites(target, current, names)
            chosen = _chosen(current, names)
            result = run.result(session.lost)
            ok = result.exit_code == 0
            final = _with_status(current, chosen, SiteStatus.ACTIVE if ok else SiteStatus.FAILED)
            # Unchanged (the usual no-op apply): the host has this very text since
            # reconcile, and the markdown registry was written from it.
            if render(final) != registry.text() or not target.registry_file.exists():
                registry.save(final, on_host=session.record_sites)
                write_markdown(target, final)
            session.finish(outcome(result), chosen)
    if not ok:
        again = " ".join(["siteops", "apply", *names])
        raise RunFailed(
            "the run failed; the sites it was for are marked failed",
            result,
            f"Fix the cause, then run `{again}` again (safe to repeat).",
        )
    return Applied(chosen, result, dry_run=False)


@dataclass(frozen=True)
class Set:
    name: str
    changes: list[str]
    result: RunResult | None
    dry_run: bool
    # After a run: each unit that should run, its state and whether its port answers.
    units: Mapping[str, Any] = field(default_factory=dict)


# How long a (re)started unit may take to answer on its port.
SERVING_TIMEOUT = 30.0


def check_schedules(target: Target, name: str, changes: SiteChanges) -> None:
    """Ask the host's systemd whether it reads each added job's schedule (before any change)."""
    variables = target.variables()
    local = variables.get("ansible_connection") == "local"
    problems: list[str] = []
    for job in changes.add_jobs:
        command = ["systemd-analyze", "calendar", "--", job.schedule]
        argv = command if local else ssh_argv(variables, target.host, command)
        done = subprocess.run(argv, capture_output=True, text=True, check=False,
                              stdin=subprocess.DEVNULL)  # fmt: skip
        if done.returncode != 0:
            said = (done.stderr.strip().splitlines() or ["no answer"])[-1]
            problems.append(
                f"jobs.{job.name}.schedule: systemd on {target.host} cannot read "
                f"{job.schedule!r} ({said}); use OnCalendar syntax, e.g. hourly, daily or "
                "*-*-* 03:00:00"
            )
    if problems:
        raise SiteModelError(f"site {name!r}", problems)


def _changed_sites(
    target: Target, current: HostSites, name: str, changes: SiteChanges
) -> HostSites:
    if changes.tls_email is not None or changes.tls:
        changes = replace(changes, default_ca_directory=host_ca_directory(target))
    return change_site(current, name, changes, other_hosts_domains(target))


def change(
    target: Target,
    name: str,
    changes: SiteChanges,
    *,
    dry_run: bool,
    on_progress: OnProgress,
    purpose: str | None = None,
) -> Set:
    """Change site ``name``'s record (``siteops set``) and converge that site alone.

    The change is checked as add-site checks a new site (domains of every
    host of the inventory, the model's rules, a free port for an added
    component) before the host is contacted, and again under the locks. A
    change that leaves the record as it is runs nothing. The site is saved
    before the run and marked ``active`` or ``failed`` after it; a failed run
    is finished by ``siteops apply NAME``; after a good one, each unit that
    should run is waited for until it answers on its port. With ``dry_run``
    the run is check mode with the changed record as extra variables, and
    nothing is written. ``purpose`` names the command in locks and the audit
    log (default ``set NAME``).
    """
    target.check_inventory()
    registry = Registry(target.sites_file)
    _changed_sites(target, registry.load(), name, changes)
    check_schedules(target, name, changes)
    purpose = purpose or f"set {name}"
    drop = {"siteops_drop_databases": [name] if changes.drop_database else []}
    with registry.locked(timeout=target.lock_timeout, purpose=purpose):
        if dry_run:
            current = registry.load()
            updated = _changed_sites(target, current, name, changes)
            lines = describe_changes(current.sites[name], updated.sites[name])
            if not lines:
                return Set(name, [], None, dry_run=True)
            result = target.run(
                SITE_PLAYBOOK,
                {"siteops_sites": updated.to_yaml_data()["siteops_sites"], "siteops_only": [name],
                 **drop},
                check=True, on_progress=on_progress,
            )  # fmt: skip
            return Set(name, lines, result, dry_run=True)
        with on_host(target, purpose, [name], on_progress) as session:
            current = reconcile(target, registry, session, on_progress)
            with inventory_locked(target.inventory, timeout=target.lock_timeout,
                                  purpose=f"{purpose} on {target.host}"):  # fmt: skip
                updated = _changed_sites(target, current, name, changes)
                lines = describe_changes(current.sites[name], updated.sites[name])
                if not lines:
                    session.finish("ok")
                    return Set(name, [], None, dry_run=False)
                registry.save(updated, on_host=session.record_sites)
            extravars = {"siteops_only": [name], **drop}
            result = target.run(SITE_PLAYBOOK, extravars, check=False, on_progress=on_progress,
                                cancel=session.lost)  # fmt: skip
            ok = result.exit_code == 0
            final = _with_status(updated, [name], SiteStatus.ACTIVE if ok else SiteStatus.FAILED)
            registry.save(final, on_host=session.record_sites)
            write_markdown(target, final)
            wanted = running_units(name, final.sites[name]) if ok else {}
            units = session.serving(wanted, SERVING_TIMEOUT) if wanted else {}
            session.finish(outcome(result))
    if not ok:
        raise RunFailed(
            f"changing site {name!r} failed; its new record is kept, marked failed",
            result,
            f"Fix the cause, then run `siteops apply {name}` (safe to repeat), or change "
            f"it back with `siteops set {name} …`.",
        )
    return Set(name, lines, result, dry_run=False, units=units)


def _chosen(current: HostSites, names: list[str]) -> list[str]:
    """The sites a run converges: the named ones, or all but those being removed."""
    return names or [n for n, s in current.sites.items() if s.status != SiteStatus.REMOVING]


def _known_sites(target: Target, current: HostSites, names: list[str]) -> HostSites:
    """``current``, once every name in ``names`` is one of its sites."""
    unknown = [n for n in names if n not in current.sites]
    if unknown:
        raise SiteModelError(
            str(target.sites_file),
            [f"site: {n!r} is not in the registry of {target.host}" for n in unknown],
        )
    return current


@dataclass(frozen=True)
class Removed:
    name: str
    backup: str | None
    result: RunResult
    dry_run: bool


_BACKUP_PATH = re.compile(r"^/[^\s]+$")


def remove(target: Target, name: str, *, dry_run: bool, on_progress: OnProgress) -> Removed:
    """Remove a site after a final backup; archive its record, freeing its block and domains.

    The site is marked ``removing`` before the run and archived only after
    the run succeeded; an interrupted removal is finished by running it again.
    """
    target.check_inventory()
    registry = Registry(target.sites_file)
    purpose = f"remove-site {name}"
    with registry.locked(timeout=target.lock_timeout, purpose=purpose):
        if dry_run:
            _removable(target, registry.load(), name)
            result = target.run(REMOVE_PLAYBOOK, {"site": name}, check=True,
                                on_progress=on_progress)  # fmt: skip
            return Removed(name, None, result, dry_run=True)
        with on_host(target, purpose, [name], on_progress) as session:
            current = reconcile(target, registry, session, on_progress)
            _removable(target, current, name)
            removing = _with_status(current, [name], SiteStatus.REMOVING)
            registry.save(removing, on_host=session.record_sites)
            result = target.run(REMOVE_PLAYBOOK, {"site": name}, check=False,
                                on_progress=on_progress, cancel=session.lost)  # fmt: skip
            backup = result.artifacts.get(FINAL_BACKUP_ARTIFACT)
            done = isinstance(backup, str) and _BACKUP_PATH.match(backup) is not None
            if result.exit_code != 0 or not done:
                write_markdown(target, removing)
                session.finish(outcome(result) if result.exit_code else "failed")
                raise RunFailed(
                    f"removing site {name!r} did not finish; it stays in the registry as removing",
                    result,
                    f"Fix the cause, then run `siteops remove-site {name}` again: it continues "
                    "where it stopped and keeps the final backup it already took.",
                )
            data = removing.to_yaml_data()
            record = data["siteops_sites"].pop(name)
            record["status"] = str(current.sites[name].status)  # as it was before the removal
            data["siteops_archived_sites"][name] = ArchivedSite.model_validate(
                {"site": record, "archived_at": utc_now(), "backup": backup}
            ).model_dump(mode="json")
            final = HostSites.model_validate(data)
            registry.save(final, on_host=session.record_sites)
            write_markdown(target, final)
    return Removed(name, backup, result, dry_run=False)


def forget(target: Target, name: str, on_progress: OnProgress) -> ArchivedSite:
    """Delete the archived record of a removed site, so that its name can be used again.

    Nothing on the host changes: its backups, the final one included, stay
    where they are, under their retention (a final backup is never pruned).
    """
    target.check_inventory()
    registry = Registry(target.sites_file)
    purpose = f"forget-site {name}"
    with (
        registry.locked(timeout=target.lock_timeout, purpose=purpose),
        on_host(target, purpose, [name], on_progress) as session,
    ):
        current = reconcile(target, registry, session, on_progress)
        if name not in current.archived:
            where = ("is an active site: `siteops remove-site` archives it first"
                     if name in current.sites else "is not an archived site")  # fmt: skip
            session.finish("refused")
            raise SiteModelError(
                str(target.sites_file), [f"site: {name!r} {where} on host {target.host}"]
            )
        data = current.to_yaml_data()
        del data["siteops_archived_sites"][name]
        final = HostSites.model_validate(data)
        registry.save(final, on_host=session.record_sites)
        write_markdown(target, final)
    return current.archived[name]


def _removable(target: Target, current: HostSites, name: str) -> None:
    if name not in current.sites:
        where = "was already removed (archived)" if name in current.archived else "is unknown"
        raise SiteModelError(
            str(target.sites_file), [f"site: {name!r} {where} on host {target.host}"]
        )


def status(
    target: Target, names: list[str], on_progress: OnProgress
) -> tuple[HostSites, HostFacts]:
    """The registry and live facts of the named sites (all when none is named)."""
    target.check_inventory()
    sites = Registry(target.sites_file).load()
    unknown = [n for n in names if n not in sites.sites]
    if unknown:
        raise SiteModelError(
            str(target.sites_file),
            [f"site: {n!r} is not in the registry of {target.host}" for n in unknown],
        )
    return sites, gather_facts(target, sites, names or list(sites.sites), on_progress)


DOCTOR_ARTIFACT = "siteops_doctor"


def doctor(target: Target, names: list[str], on_progress: OnProgress) -> list[Finding]:
    """What differs between the registry and the host: the named sites, or every site and
    the host as a whole (orphans, listeners, disk, failed units). Reads only."""
    target.check_inventory()
    sites = Registry(target.sites_file).load()
    _known_sites(target, sites, names)
    chosen = names or list(sites.sites)
    result = target.run(
        FACTS_PLAYBOOK,
        {"siteops_facts_sites": facts_request(sites, chosen), "siteops_facts_doctor": True},
        check=False,
        on_progress=on_progress,
    )
    if result.exit_code != 0:
        raise RunFailed(
            "reading the host for the doctor failed",
            result,
            "Check that the host answers (siteops sandbox status, or ssh to it), then retry.",
        )
    host = result.artifacts.get(DOCTOR_ARTIFACT)
    return findings(
        sites,
        parse_facts(result.artifacts),
        host if isinstance(host, Mapping) else {},
        layout(),
        chosen,
        whole_host=not names,
    )


def registry_markdown(target: Target, *, refresh: bool, on_progress: OnProgress) -> Path:
    """Regenerate the markdown registry, with live facts from the host when ``refresh``."""
    sites = Registry(target.sites_file).load()
    facts = None
    if refresh:
        target.check_inventory()
        facts = gather_facts(target, sites, list(sites.sites), on_progress)
    return write_markdown(target, sites, facts)


@dataclass(frozen=True)
class Released:
    name: str
    release_id: str | None
    message: str
    result: RunResult

    @property
    def steps(self) -> list[str]:
        """What the switch said before its last line: the release hook's output, the slots."""
        steps = self.result.artifacts.get(RELEASE_STEPS_ARTIFACT) or []
        return [str(line) for line in steps] if isinstance(steps, list) else []


def known_site(target: Target, name: str) -> HostSites:
    target.check_inventory()
    sites = Registry(target.sites_file).load()
    if name not in sites.sites:
        raise SiteModelError(
            str(target.sites_file), [f"site: {name!r} is not in the registry of {target.host}"]
        )
    return sites


def _running_site(target: Target, name: str, verb: str) -> Site:
    """The record of ``name``; a site an operator stopped is refused (no health check passes)."""
    site = known_site(target, name).sites[name]
    if site.stopped:
        raise SiteModelError(
            str(target.sites_file),
            [f"stopped: site {name!r} was stopped by an operator; `siteops start {name}`, "
             f"then {verb} again"],
        )  # fmt: skip
    return site


@contextlib.contextmanager
def site_session(
    target: Target, purpose: str, name: str, on_progress: OnProgress
) -> Iterator[HostSession]:
    """The host's lock for a run that changes no record, from a sites file the host knows."""
    registry = Registry(target.sites_file)
    with on_host(target, purpose, [name], on_progress) as session:
        reconcile(target, registry, session, on_progress)
        yield session


def deploy(
    target: Target,
    name: str,
    source: str,
    ref: str | None,
    *,
    health: tuple[str, int],
    on_progress: OnProgress,
) -> Released:
    """Pack ``source`` here, then deploy it on the host as a new release of ``name``.

    The host switches ``current`` only after the release is built, and back
    again if the health check fails. The run holds the host's lock (a second
    siteops waits for it); the registry itself is not locked: a deploy changes
    no record.
    """
    _running_site(target, name, "deploy")
    with packed(source, ref) as release, site_session(target, f"deploy {name}", name,
                                                   on_progress) as session:  # fmt: skip
        result = target.run(
            DEPLOY_PLAYBOOK,
            {
                "site": name,
                "archive": str(release.archive),
                "release": release.release_id,
                "source": release.source,
                "ref": release.ref,
                "health_path": health[0],
                "health_timeout": health[1],
            },
            check=False,
            on_progress=on_progress,
            cancel=session.lost,
        )
        session.finish(outcome(result))
    if result.exit_code != 0:
        raise RunFailed(
            f"release {release.release_id} of {name!r} was not deployed; "
            "the site serves what it served before",
            result,
            f"See `siteops logs {name}` and `siteops releases {name}`; fix the release "
            "and deploy again.",
        )
    message = str(result.artifacts.get(RELEASE_ARTIFACT, ""))
    return Released(name, release.release_id, message, result)


def rollback(
    target: Target,
    name: str,
    to: str | None,
    *,
    health: tuple[str, int],
    on_progress: OnProgress,
    with_database: bool = False,
) -> Released:
    """Switch ``name`` back to the previous good release (or ``to``); the one left is marked bad.

    ``with_database``: first a backup of the current state, then the database
    snapshot taken before the release being left is restored.
    """
    site = _running_site(target, name, "roll back")
    if with_database and not site.database.enabled:
        raise SiteModelError(
            str(target.sites_file), [f"database: site {name!r} has no database to roll back"]
        )
    extravars: dict[str, Any] = {
        "site": name,
        "release_action": "rollback",
        "health_path": health[0],
        "health_timeout": health[1],
        "with_database": with_database,
    }
    if to:
        extravars["to"] = to
    with site_session(target, f"rollback {name}", name, on_progress) as session:
        result = target.run(DEPLOY_PLAYBOOK, extravars, check=False, on_progress=on_progress,
                            cancel=session.lost)  # fmt: skip
        session.finish(outcome(result))
    if result.exit_code != 0:
        raise RunFailed(
            f"rolling back {name!r} failed",
            result,
            f"See `siteops releases {name}` for the releases on the host.",
        )
    return Released(name, to, str(result.artifacts.get(RELEASE_ARTIFACT, "")), result)


def releases(target: Target, name: str, on_progress: OnProgress) -> dict[str, Any]:
    """The current release of ``name`` and its release log, as the host records them."""
    sites = known_site(target, name)
    facts = gather_facts(target, sites, [name], on_progress)
    release = facts.sites.get(name, {}).get("release") or {}
    return {
        "current": release.get("current"),
        "serving_ports": list(release.get("serving_ports", [])),
        "main_ports": proxied_ports(sites.sites[name]),
        "log": list(release.get("log", [])),
    }


HOST_PLAYBOOK = "host.yml"


@dataclass(frozen=True)
class HostAdded:
    name: str
    entry: dict[str, Any]
    facts: dict[str, str]
    result: RunResult | None


def baseline(target: Target, purpose: str, on_progress: OnProgress) -> RunResult:
    """Apply the host baseline (``host.yml``) under the host's lock; no site record changes."""
    with on_host(target, purpose, [], on_progress) as session:
        result = target.run(HOST_PLAYBOOK, {}, check=False, on_progress=on_progress,
                            cancel=session.lost)  # fmt: skip
        session.finish(outcome(result))
    return result


def add_host(
    target: Target, login: hosts.Login, *, dry_run: bool, on_progress: OnProgress
) -> HostAdded:
    """Check host ``target.host`` over SSH, write it into the inventory, apply the baseline.

    Nothing is written before every check passed (name, connection, sudo,
    Debian 12/13, systemd, Python); with ``dry_run`` nothing is written at all.
    A failed baseline leaves the host in the inventory: ``siteops apply``
    finishes it.
    """
    hosts_file = target.hosts_file
    hosts.check_name(hosts_file, target.host)
    known_hosts = target.inventory / hosts.KNOWN_HOSTS
    probed = hosts.probe(login, known_hosts)
    problems = hosts.probe_problems(probed.facts, login.user)
    if problems:
        raise HostRefused(f"{login.user}@{login.address}: " + "; ".join(problems))
    entry = hosts.host_entry(login, target.inventory)
    if dry_run:
        return HostAdded(target.host, entry, probed.facts, None)
    target.inventory.mkdir(parents=True, exist_ok=True)
    purpose = f"host add {target.host}"
    with inventory_locked(target.inventory, timeout=target.lock_timeout, purpose=purpose):
        hosts.check_name(hosts_file, target.host)  # another run may have added it meanwhile
        hosts.write_host(target.inventory, target.host, entry, probed.known_hosts)
    result = baseline(target, purpose, on_progress)
    if result.exit_code != 0:
        raise RunFailed(
            f"host {target.host!r} was added to {hosts_file}, but its baseline failed",
            result,
            f"Fix the cause, then run `siteops --host {target.host} apply` (safe to repeat).",
        )
    return HostAdded(target.host, entry, probed.facts, result)


def _host_summary(inventory: Path, name: str, variables: dict[str, Any]) -> dict[str, Any]:
    """One host's login and sites, from its variables and its registry."""
    sites = load_host_sites(sites_path(inventory, name))
    return {
        "host": name,
        "ssh": hosts.ssh_login_of(variables, name),
        "sandbox": "siteops_sandbox_http_port" in variables,
        "sites": sorted(sites.sites),
        "free_blocks": MAX_BLOCKS - len(taken_blocks(sites)),
    }


def host_summaries(inventory: Path) -> list[dict[str, Any]]:
    """Every host of the inventory with its login and its sites (from the files only)."""
    hosts_file = inventory / HOSTS_FILE
    data = read_hosts_yaml(hosts_file)
    entries = hosts_mapping(data, str(hosts_file)) if data else {}
    return [
        _host_summary(inventory, name, entries.get(name) or {})
        for name in inventory_hosts(hosts_file)
    ]


def show_host(target: Target) -> dict[str, Any]:
    """One host: its login, Debian release, memory, disk, sites and free port blocks (live)."""
    target.check_inventory()
    if target.host not in inventory_hosts(target.hosts_file):
        raise HostRefused(f"host: {target.host!r} is not a host of {target.hosts_file}")
    variables = host_vars(target.hosts_file, target.host)
    summary = _host_summary(target.inventory, target.host, variables)
    argv = ssh_argv(variables, target.host, ["sh", "-s"])
    done = subprocess.run(argv, input=hosts.PROBE, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        login = hosts.Login(str(variables.get("ansible_user", "root")),
                            str(variables.get("ansible_host", target.host)),
                            int(variables.get("ansible_port", 22)))  # fmt: skip
        raise HostRefused(hosts.connection_problem(login, done.returncode, done.stderr))
    facts = hosts.parse_probe(done.stdout)
    return {**summary, **hosts.live_view(facts)}
