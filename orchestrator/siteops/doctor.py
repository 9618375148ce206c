"""The registry held against the host: what `siteops doctor` finds, and how to mend it.

:func:`findings` compares a host's sites (the registry) with what the facts
playbook read on the host (``siteops_facts.py`` per site, ``siteops_doctor.py``
for the whole host) and returns one :class:`Finding` per problem, naming the
site (or none, for the host), what is wrong, why it matters and the command
that fixes it. Pure: no host, no file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from siteops.hostfacts import (
    PLACEHOLDER,
    HostFacts,
    job_timers,
    process_units,
    proxied_ports,
    running_units,
)
from siteops.layout import Layout
from siteops.model import HostSites, Site, SiteStatus
from siteops.ports import BLOCK_SIZE, MAX_BLOCK, RANGE_BASE

CERT_DAYS = 14
BACKUP_AGE = timedelta(days=2)
DISK_PERCENT = 85.0
NOLOGIN = "/usr/sbin/nologin"
REDIS_OWN_USERS = frozenset({"default", "siteops-admin"})
# The host services siteops installs may listen in the port ranges (PostgreSQL's
# 5432 lies in the extra range of block 43, which add-site then skips).
SERVICE_USERS = frozenset({"postgres", "redis"})


@dataclass(frozen=True)
class Finding:
    """One problem: its site (None: the host), what is wrong, why it matters, the fix."""

    site: str | None
    problem: str
    why: str
    fix: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_MEMORY = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SPAN = re.compile(r"(\d+(?:\.\d+)?)(us|ms|s|min)")
_SPAN_US = {"us": 1, "ms": 1_000, "s": 1_000_000, "min": 60_000_000}


def memory_bytes(value: str) -> int:
    return int(value[:-1]) * _MEMORY[value[-1]]


def quota_usec(value: str) -> int | None:
    """systemd's CPUQuotaPerSecUSec (``500ms``, ``1.500000s``, ``infinity``) in microseconds."""
    parts = _SPAN.findall(value)
    if not parts or value == "infinity":
        return None
    return round(sum(float(number) * _SPAN_US[unit] for number, unit in parts))


def _apply(name: str) -> str:
    return f"siteops apply {name}"


def _site_findings(
    name: str, site: Site, raw: Mapping[str, Any], host: Mapping[str, Any], layout: Layout,
    now: datetime,
) -> Iterable[Finding]:  # fmt: skip
    def finding(problem: str, why: str, fix: str | None = None) -> Finding:
        return Finding(name, problem, why, fix or _apply(name))

    if site.status == SiteStatus.REMOVING:
        yield finding("its removal did not finish", "it holds its block and domains, half removed",
                      f"siteops remove-site {name}")  # fmt: skip
        return
    user = host.get("users", {}).get(name)
    if user is None:
        yield finding("has no Unix user", "its units run as that user and cannot start")
    elif user.get("shell") != NOLOGIN:
        yield finding(f"its user has the login shell {user.get('shell')}",
                      "a site's user must not be able to log in")  # fmt: skip
    tree = host.get("trees", {}).get(name)
    if tree is None:
        yield finding(f"has no tree {layout.site_root(name)}", "its releases and .env live there")
    elif (tree.get("owner"), tree.get("mode")) != (name, "0750"):
        yield finding(f"{layout.site_root(name)} is {tree.get('owner')} {tree.get('mode')}, "
                      f"not {name} 0750", "other users could read the site's files")  # fmt: skip
    env = host.get("env", {}).get(name)
    if tree is not None and env is None:
        yield finding("has no .env", "its units read their settings and secrets from it")
    elif env is not None and (env.get("owner"), env.get("mode")) != (name, "0600"):
        yield finding(f".env is {env.get('owner')} {env.get('mode')}, not {name} 0600",
                      "it holds the site's passwords")  # fmt: skip
    yield from _unit_findings(name, site, raw, host)
    yield from _slice_findings(name, site, host, layout)
    serving = set((raw.get("release") or {}).get("serving_ports") or [])
    if serving - set(proxied_ports(site)):
        yield finding(
            f"nginx passes its requests to its spare slot (ports "
            f"{', '.join(map(str, sorted(serving)))})",
            "a deploy or rollback was interrupted during its switch: the spare units do not "
            "start again after a reboot, and the slice may still have twice its limits",
            f"siteops deploy {name} (or rollback): it finishes the interrupted switch first",
        )
    config = f"{name}.conf"
    if host.get("nginx", {}).get("available", {}).get(config) != name:
        yield finding("has no nginx config", "nginx does not serve it")
    elif config not in host.get("nginx", {}).get("enabled", []):
        yield finding("its nginx config is not enabled", "nginx does not serve it")
    firewall = host.get("firewall", {})
    live = firewall.get("live")
    if name not in firewall.get("files", []) or (live is not None and name not in live):
        yield finding("has no port rule in the firewall",
                      "any local user could reach its ports, bypassing nginx")  # fmt: skip
    yield from _data_findings(name, site, host)
    yield from _time_findings(name, site, raw, now)


def _unit_findings(
    name: str, site: Site, raw: Mapping[str, Any], host: Mapping[str, Any]
) -> Iterable[Finding]:
    units = host.get("units", {})
    wanted = running_units(name, site)
    deployed = (raw.get("release") or {}).get("current") not in (None, PLACEHOLDER)
    for unit in process_units(name, site):
        state = units.get(unit, {})
        if state.get("LoadState") != "loaded":
            yield Finding(name, f"unit {unit} is missing", "that component does not run",
                          _apply(name))  # fmt: skip
        elif unit in wanted:
            if state.get("UnitFileState") != "enabled":
                yield Finding(name, f"unit {unit} is not enabled",
                              "it would not start after a reboot", _apply(name))  # fmt: skip
            if deployed and state.get("ActiveState") != "active":
                yield Finding(name, f"unit {unit} is {state.get('ActiveState')}",
                              "that component does not answer",
                              f"siteops logs {name}, then siteops restart {name}")  # fmt: skip
        elif state.get("ActiveState") == "active":
            yield Finding(name, f"unit {unit} runs although an operator stopped it",
                          "what an operator stopped must stay stopped", _apply(name))  # fmt: skip
    for timer in [] if site.stopped else job_timers(name, site):
        state = units.get(timer, {})
        if state.get("LoadState") != "loaded":
            yield Finding(name, f"timer {timer} is missing", "that job never runs", _apply(name))
        elif (state.get("UnitFileState"), state.get("ActiveState")) != ("enabled", "active"):
            yield Finding(name, f"timer {timer} is {state.get('UnitFileState')} and "
                          f"{state.get('ActiveState')}", "that job does not run on schedule",
                          _apply(name))  # fmt: skip


def _slice_findings(
    name: str, site: Site, host: Mapping[str, Any], layout: Layout
) -> Iterable[Finding]:
    slice_name = layout.slice_name(name)
    props = host.get("slices", {}).get(slice_name)
    limits = site.limits
    if props is None:
        yield Finding(name, f"has no slice {slice_name}", "its limits do not apply", _apply(name))
        return
    quota = quota_usec(props.get("CPUQuotaPerSecUSec", ""))
    wanted_quota = int(limits.cpu[:-1]) * 10_000
    if props.get("MemoryMax") != str(memory_bytes(limits.memory)):
        yield Finding(name, f"its slice's MemoryMax is {props.get('MemoryMax')}, not "
                      f"{limits.memory}", "the site may use more memory than it is given",
                      _apply(name))  # fmt: skip
    if quota != wanted_quota:
        yield Finding(name, f"its slice's CPU quota is {props.get('CPUQuotaPerSecUSec')}, not "
                      f"{limits.cpu}", "the site may take more CPU than it is given",
                      _apply(name))  # fmt: skip
    if props.get("TasksMax") != str(limits.tasks):
        yield Finding(name, f"its slice's TasksMax is {props.get('TasksMax')}, not "
                      f"{limits.tasks}", "a fork bomb of the site could reach other sites",
                      _apply(name))  # fmt: skip


def _data_findings(name: str, site: Site, host: Mapping[str, Any]) -> Iterable[Finding]:
    postgres = host.get("postgres", {})
    databases, roles = postgres.get("databases"), postgres.get("roles")
    if databases is not None and roles is not None:
        if site.database.enabled and (name not in databases or name not in roles):
            yield Finding(name, "has no database or database role", "its app cannot store data",
                          _apply(name))  # fmt: skip
        elif not site.database.enabled and name in databases:
            yield Finding(name, "has a database although its record has none",
                          "it is neither backed up as the site's nor dropped",
                          f"siteops set {name} --database (keep it), or drop it by hand "
                          "after a backup")  # fmt: skip
    redis = host.get("redis_users")
    if redis is not None:
        if site.cache.enabled and name not in redis:
            yield Finding(name, "has no Redis user", "its app cannot reach its cache",
                          _apply(name))  # fmt: skip
        elif not site.cache.enabled and name in redis:
            yield Finding(name, "has a Redis user although its record has no cache",
                          "a login nobody manages can read the cache", _apply(name))  # fmt: skip


def _time_findings(
    name: str, site: Site, raw: Mapping[str, Any], now: datetime
) -> Iterable[Finding]:
    if site.tls.enabled:
        expiry = raw.get("cert_expiry")
        if not expiry:
            yield Finding(name, "has no certificate although TLS is on",
                          "browsers get no HTTPS for it", _apply(name))  # fmt: skip
        elif date.fromisoformat(expiry) < (now + timedelta(days=CERT_DAYS)).date():
            yield Finding(name, f"its certificate expires on {expiry}",
                          f"less than {CERT_DAYS} days left: renewal is not working",
                          "sudo certbot renew on the host (port 80 must reach nginx)")  # fmt: skip
    backup = raw.get("backup")
    start_backup = f"sudo systemctl start siteops-backup@{name}.service on the host"
    if not backup:
        yield Finding(name, "has no backup yet", "nothing can be restored if it breaks",
                      start_backup)  # fmt: skip
    elif backup.get("result") != "ok":
        yield Finding(name, f"its last backup failed: {backup.get('message') or '?'}",
                      "its newest data is not backed up", start_backup)  # fmt: skip
    elif _age(backup.get("at"), now) > BACKUP_AGE:
        yield Finding(name, f"its last backup is from {backup.get('at')}",
                      "more than 2 days of data would be lost",
                      f"check siteops-backup@{name}.timer; then {start_backup}")  # fmt: skip
    test = raw.get("restore_test")
    if test and test.get("result") != "ok":
        yield Finding(name, f"its last restore test failed: {test.get('message') or '?'}",
                      "its backups may not restore",
                      f"sudo systemctl start siteops-restore-test@{name}.service; read its "
                      "journal")  # fmt: skip


def _age(when: Any, now: datetime) -> timedelta:
    try:
        at = datetime.fromisoformat(str(when).replace("Z", "+00:00"))
    except ValueError:
        return timedelta.max
    return now - at


_OUTSIDE = "siteops registry pull (if another operator added it), else remove it by hand"


def _host_findings(
    sites: HostSites, facts: HostFacts, host: Mapping[str, Any], layout: Layout
) -> Iterable[Finding]:
    known = set(sites.sites)

    def orphan(what: str, why: str) -> Finding:
        return Finding(None, what, why, _OUTSIDE)

    for user in sorted(set(host.get("users", {})) - known):
        yield orphan(f"user {user} lives under {layout.sites_root} but no site is named so",
                     "an account nobody manages")  # fmt: skip
    for tree in sorted(set(host.get("trees", {})) - known):
        yield orphan(f"{layout.site_root(tree)} belongs to no site of the registry",
                     "files nobody backs up or removes")  # fmt: skip
    for unit, site in sorted(host.get("component_units", {}).items()):
        if site not in known:
            yield orphan(f"unit {unit} is of site {site}, which is not in the registry",
                         "a process nobody manages")  # fmt: skip
    for config, site in sorted(host.get("nginx", {}).get("available", {}).items()):
        if site not in known:
            yield orphan(f"nginx config {config} is of site {site}, not in the registry",
                         "nginx serves names nobody manages")  # fmt: skip
    for rule in sorted(set(host.get("firewall", {}).get("files", [])) - known):
        yield orphan(f"firewall rule {rule}.nft belongs to no site of the registry",
                     "it holds a port block no site uses")  # fmt: skip
    postgres = host.get("postgres", {})
    for database in sorted(set(postgres.get("databases") or []) - known):
        yield orphan(f"database {database} belongs to no site of the registry",
                     "data nobody backs up")  # fmt: skip
    for user in sorted(set(host.get("redis_users") or []) - known - REDIS_OWN_USERS):
        yield orphan(f"Redis user {user} belongs to no site of the registry",
                     "a cache login nobody manages")  # fmt: skip
    held = {site.port_block for site in sites.sites.values()}
    owners = facts.owners
    for port in sorted(facts.listening):
        block = _block_of(port)
        if block is not None and block not in held and owners.get(str(port)) not in SERVICE_USERS:
            yield Finding(None, f"port {port} ({owners.get(str(port), '?')}) listens in block "
                          f"{block}, which no site holds", "no new site can get that block",
                          "stop that process, or move it out of 3100-3999, 4000-4899 and "
                          "5000-5899")  # fmt: skip
    for path, percent in sorted(host.get("disk", {}).items()):
        if percent > DISK_PERCENT:
            yield Finding(None, f"{path} is {percent}% full",
                          "backups and uploads fail when it is full",
                          "free space (old releases, logs), or grow the disk")  # fmt: skip
    for unit in host.get("failed_units", []):
        yield Finding(None, f"unit {unit} failed", "a service of the host is down",
                      f"journalctl -u {unit}; then systemctl reset-failed {unit}")  # fmt: skip


def _block_of(port: int) -> int | None:
    for start in RANGE_BASE.values():
        block, offset = divmod(port - start, BLOCK_SIZE)
        if port >= start and 0 <= block <= MAX_BLOCK and offset < BLOCK_SIZE:
            return block
    return None


def findings(
    sites: HostSites,
    facts: HostFacts,
    host: Mapping[str, Any],
    layout: Layout,
    names: Iterable[str],
    *,
    whole_host: bool,
    now: datetime | None = None,
) -> list[Finding]:
    """Every problem of the named sites, and of the host when ``whole_host``."""
    moment = now or datetime.now(UTC)
    out: list[Finding] = []
    for name in names:
        raw = facts.sites.get(name, {})
        out.extend(_site_findings(name, sites.sites[name], raw, host, layout, moment))
    if whole_host:
        out.extend(_host_findings(sites, facts, host, layout))
    return out
