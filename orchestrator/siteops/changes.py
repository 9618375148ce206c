"""Change an existing site's record: what ``siteops set`` asks for, checked as add-site is.

:func:`change_site` applies a :class:`SiteChanges` to one site of a host's
sites and returns the new sites, validated through the site model again; it
refuses, naming the field and the rule, a domain another site serves (here or
on another host of the inventory), removing the primary or the last domain,
a component name already taken or a full port range, a static extra
component, removing the frontend, and turning the database off while it
exists (unless the caller will drop it). :func:`describe_changes` says what
differs between two records of a site, one line per field. Nothing here
touches the host or a file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from siteops.access import check_access_key, check_access_name, key_blob, key_fingerprint
from siteops.errors import SiteModelError, describe
from siteops.model import HostSites, Site, SiteStatus
from siteops.naming import check_component_name, normalize_domain
from siteops.ports import ports_of, range_for_component
from siteops.runtime import Runtime
from siteops.sites import api_command, domain_owners, domain_taken


@dataclass(frozen=True)
class NewComponent:
    """A component ``set --add-component`` adds: it gets the next free port of its range."""

    name: str
    runtime: str
    command: str | None = None


@dataclass(frozen=True)
class NewJob:
    """A scheduled job ``set --add-job`` adds (schedule: systemd OnCalendar)."""

    name: str
    schedule: str
    command: str


@dataclass(frozen=True)
class SiteChanges:
    """What to change on a site; ``None`` (or empty) leaves that field as it is.

    ``tls_email`` turns TLS on unless ``tls`` is ``False`` (as add-site's
    ``--tls-email`` does). ``database=False`` is refused while the site has a
    database unless ``drop_database`` (the caller takes a backup and drops it).
    """

    add_domains: tuple[str, ...] = ()
    remove_domains: tuple[str, ...] = ()
    primary: str | None = None
    memory: str | None = None
    cpu: str | None = None
    tasks: int | None = None
    tls: bool | None = None
    tls_email: str | None = None
    ca_directory: str | None = None
    add_components: tuple[NewComponent, ...] = ()
    remove_components: tuple[str, ...] = ()
    add_jobs: tuple[NewJob, ...] = ()
    remove_jobs: tuple[str, ...] = ()
    cache: bool | None = None
    database: bool | None = None
    drop_database: bool = False
    description: str | None = None
    # siteops stop / start: the whole site (start also starts each stopped
    # component), or single components.
    stopped: bool | None = None
    stop_components: tuple[str, ...] = ()
    start_components: tuple[str, ...] = ()
    # siteops maintenance on|off [--message]: the message goes with "on".
    maintenance: bool | None = None
    maintenance_message: str | None = None
    # siteops access grant / revoke: {name: public key line} and names.
    grant_access: tuple[tuple[str, str], ...] = ()
    revoke_access: tuple[str, ...] = ()
    # Filled in by the caller: the host's default ACME directory for TLS turned on.
    default_ca_directory: str | None = field(default=None, compare=False)

    def empty(self) -> bool:
        return self == SiteChanges()


def _domain(value: str, problems: list[str], what: str) -> str | None:
    try:
        return normalize_domain(value)
    except ValueError as exc:
        problems.append(f"{what}: {exc}")
        return None


def _domains(
    sites: HostSites,
    name: str,
    changes: SiteChanges,
    elsewhere: Mapping[str, tuple[str, str]],
    problems: list[str],
) -> dict[str, Any]:
    current = sites.sites[name].domains
    names = current.all()
    owners = domain_owners(sites)
    for value in changes.add_domains:
        domain = _domain(value, problems, "domains")
        if domain is None:
            continue
        taken = domain_taken(domain, owners.get(domain), elsewhere.get(domain), "")
        if owners.get(domain) == name or domain in names:
            problems.append(f"domains: {domain!r} is already a domain of site {name!r}")
        elif taken:
            problems.append(taken)
        else:
            names.append(domain)
    primary = current.primary
    if changes.primary is not None:
        wanted = _domain(changes.primary, problems, "domains.primary")
        if wanted is not None and wanted not in names:
            problems.append(
                f"domains.primary: {wanted!r} is not a domain of site {name!r}; add it with "
                "--add-domain in the same command, or name one of its domains"
            )
        elif wanted is not None:
            primary = wanted
    for value in changes.remove_domains:
        domain = _domain(value, problems, "domains")
        if domain is None:
            continue
        if domain not in names:
            problems.append(f"domains: {domain!r} is not a domain of site {name!r}")
        elif domain == primary:
            problems.append(
                f"domains: {domain!r} is the primary domain of site {name!r}; make another "
                "domain primary first (--primary), or in the same command"
            )
        else:
            names.remove(domain)
    return {"primary": primary, "aliases": [d for d in names if d != primary]}


def _free_port(site: Site, component: str, taken: set[int]) -> int | None:
    for port in ports_of(site.port_block, range_for_component(component)):
        if port not in taken:
            return port
    return None


def _components(site: Site, name: str, changes: SiteChanges, problems: list[str]) -> dict[str, Any]:
    components = {key: value.model_dump(mode="json") for key, value in site.components.items()}
    for component in changes.remove_components:
        if component == "frontend":
            problems.append(
                f"components: the frontend of site {name!r} cannot be removed (every site "
                "has one; change its runtime by removing and adding the site)"
            )
        elif component not in components:
            problems.append(f"components: site {name!r} has no component {component!r}")
        else:
            del components[component]
    for new in changes.add_components:
        try:
            check_component_name(new.name)
        except ValueError as exc:
            problems.append(f"components (name): {exc}")
            continue
        if new.name in components:
            problems.append(
                f"components: site {name!r} already has a component {new.name!r}; remove it "
                "first (--remove-component) or choose another name"
            )
            continue
        try:
            runtime = Runtime(new.runtime)
        except ValueError:
            choices = ", ".join(r.value for r in Runtime if r != Runtime.STATIC)
            problems.append(
                f"components.{new.name}.runtime: {new.runtime!r} is not one of {choices}"
            )
            continue
        if runtime == Runtime.STATIC:
            problems.append(
                f"components.{new.name}.runtime: an added component runs a process; only the "
                "frontend can be static (nginx serves current/)"
            )
            continue
        command = new.command
        if command is None and new.name == "api":
            command = api_command(Runtime(site.components["frontend"].runtime))
        if command is None:
            problems.append(
                f"components.{new.name}.command: a {runtime} component needs a start command "
                "(--command), run in current/ with PORT set"
            )
            continue
        taken = {c["port"] for c in components.values() if c.get("port") is not None}
        port = _free_port(site, new.name, taken)
        if port is None:
            span = ports_of(site.port_block, range_for_component(new.name))
            problems.append(
                f"components.{new.name}.port: the {range_for_component(new.name)} range of "
                f"block {site.port_block} ({span.start}-{span.stop - 1}) is full; remove a "
                "component of that range first"
            )
            continue
        components[new.name] = {"runtime": runtime.value, "port": port, "command": command}
    return components


def _tls(site: Site, changes: SiteChanges, problems: list[str]) -> dict[str, Any]:
    tls = site.tls.model_dump(mode="json")
    if changes.tls_email is not None:
        tls["email"] = changes.tls_email
    if changes.ca_directory is not None:
        tls["ca_directory"] = changes.ca_directory
    enabled = changes.tls
    if enabled is None and changes.tls_email is not None:
        enabled = True
    if enabled is True and not site.tls.enabled:
        if changes.ca_directory is None and changes.default_ca_directory is not None:
            tls["ca_directory"] = changes.default_ca_directory
        if tls.get("email") is None:
            problems.append(
                "tls.email: turning TLS on needs a contact address for the CA (--tls-email)"
            )
    if enabled is not None:
        tls["enabled"] = enabled
    return tls


def _database(site: Site, name: str, changes: SiteChanges, problems: list[str]) -> dict[str, Any]:
    database = site.database.model_dump(mode="json")
    if changes.drop_database and not (changes.database is False and site.database.enabled):
        problems.append(
            "database: --drop-database only goes with --no-database on a site that has one"
        )
    if changes.database is False and site.database.enabled and not changes.drop_database:
        problems.append(
            f"database: site {name!r} has a database; turning it off drops it and its data: "
            "add --drop-database (a backup of it is taken first and kept)"
        )
    if changes.database is not None:
        database["enabled"] = changes.database
    return database


def _running(record: dict[str, Any], name: str, changes: SiteChanges, problems: list[str]) -> None:
    components = record["components"]
    if changes.stopped is not None:
        record["stopped"] = changes.stopped
        if not changes.stopped:
            for component in components.values():
                component["stopped"] = False
    for wanted, stop in [(changes.stop_components, True), (changes.start_components, False)]:
        for component in wanted:
            if component not in components:
                problems.append(f"components: site {name!r} has no component {component!r}")
            elif components[component]["runtime"] == Runtime.STATIC.value:
                problems.append(
                    f"components.{component}: a static component has no unit to stop or start "
                    f"(nginx serves it; stop the site instead)"
                )
            else:
                components[component]["stopped"] = stop


def _jobs(record: dict[str, Any], name: str, changes: SiteChanges, problems: list[str]) -> None:
    jobs = record["jobs"]
    for job in changes.remove_jobs:
        if job not in jobs:
            problems.append(f"jobs: site {name!r} has no job {job!r}")
        else:
            del jobs[job]
    for new in changes.add_jobs:
        try:
            check_component_name(new.name)
        except ValueError as exc:
            problems.append(f"jobs (name): {exc}".replace("component name", "job name"))
            continue
        if new.name in jobs:
            problems.append(
                f"jobs: site {name!r} already has a job {new.name!r}; remove it first "
                "(--remove-job) or choose another name"
            )
            continue
        jobs[new.name] = {"schedule": new.schedule, "command": new.command}


def _access(record: dict[str, Any], name: str, changes: SiteChanges, problems: list[str]) -> None:
    access = record["access"]
    for grant in changes.revoke_access:
        if grant not in access:
            problems.append(f"access: site {name!r} has no access named {grant!r}")
        else:
            del access[grant]
    for grant, key in changes.grant_access:
        try:
            check_access_name(grant)
            line = check_access_key(key)
        except ValueError as exc:
            problems.append(f"access.{grant}: {exc}")
            continue
        if grant in access and key_blob(access[grant]["key"]) != key_blob(line):
            problems.append(
                f"access: site {name!r} already grants access to {grant!r} with another key; "
                f"revoke it first (siteops access revoke {name} --name {grant})"
            )
            continue
        access.setdefault(grant, {"key": line})


def change_site(
    sites: HostSites,
    name: str,
    changes: SiteChanges,
    elsewhere: Mapping[str, tuple[str, str]] | None = None,
) -> HostSites:
    """A copy of ``sites`` with ``changes`` applied to site ``name`` (see :class:`SiteChanges`).

    Raises :class:`~siteops.errors.SiteModelError` naming every field that is
    wrong; ``sites`` itself is not changed.
    """
    source = f"site {name!r}"
    if name not in sites.sites:
        where = "was removed (archived)" if name in sites.archived else "is not in the registry"
        raise SiteModelError(source, [f"site: {name!r} {where}"])
    site = sites.sites[name]
    if site.status == SiteStatus.REMOVING:
        raise SiteModelError(
            source,
            [f"status: site {name!r} is being removed; finish with `siteops remove-site {name}`"],
        )
    if changes.empty():
        raise SiteModelError(source, ["set: nothing to change; give at least one option"])
    problems: list[str] = []
    record = site.model_dump(mode="json")
    record["domains"] = _domains(sites, name, changes, elsewhere or {}, problems)
    record["components"] = _components(site, name, changes, problems)
    record["tls"] = _tls(site, changes, problems)
    record["database"] = _database(site, name, changes, problems)
    if changes.cache is not None:
        record["cache"]["enabled"] = changes.cache
    for key in ("memory", "cpu", "tasks"):
        value = getattr(changes, key)
        if value is not None:
            record["limits"][key] = value
    if changes.description is not None:
        record["description"] = changes.description
    _running(record, name, changes, problems)
    _jobs(record, name, changes, problems)
    _access(record, name, changes, problems)
    if changes.maintenance is not None:
        record["maintenance"] = {
            "enabled": changes.maintenance,
            "message": (changes.maintenance_message or "") if changes.maintenance else "",
        }
    if problems:
        raise SiteModelError(source, problems)
    data = sites.to_yaml_data()
    data["siteops_sites"][name] = record
    try:
        return HostSites.model_validate(data)
    except ValidationError as exc:
        raise SiteModelError(source, describe(exc)) from None


def _flat(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and key not in ("components", "jobs", "access"):
            out.update(_flat(value, f"{path}."))
        else:
            out[path] = value
    return out


def _component_text(value: Mapping[str, Any]) -> str:
    port = f" on {value['port']}" if value.get("port") else ""
    command = f": {value['command']}" if value.get("command") else ""
    stopped = ", stopped" if value.get("stopped") else ""
    return f"{value['runtime']}{port}{command}{stopped}"


def describe_changes(before: Site, after: Site) -> list[str]:
    """What differs between two records of one site, one ``field: old -> new`` line each."""
    old = _flat(before.model_dump(mode="json", exclude={"status"}))
    new = _flat(after.model_dump(mode="json", exclude={"status"}))
    lines: list[str] = []
    for key in new:
        if key in ("components", "jobs", "access"):
            continue
        if old.get(key) != new[key]:
            lines.append(f"{key}: {_value(old.get(key))} -> {_value(new[key])}")
    gone = [c for c in old["components"] if c not in new["components"]]
    for component in gone:
        lines.append(
            f"components.{component}: removed ({_component_text(old['components'][component])})"
        )
    for component, value in new["components"].items():
        if old["components"].get(component) != value:
            verb = "added" if component not in old["components"] else "changed"
            lines.append(f"components.{component}: {verb} ({_component_text(value)})")
    for job in [j for j in old["jobs"] if j not in new["jobs"]]:
        lines.append(f"jobs.{job}: removed")
    for job, value in new["jobs"].items():
        if old["jobs"].get(job) != value:
            lines.append(f"jobs.{job}: added ({value['schedule']}: {value['command']})")
    for grant in [g for g in old["access"] if g not in new["access"]]:
        lines.append(f"access.{grant}: revoked ({key_fingerprint(old['access'][grant]['key'])})")
    for grant, value in new["access"].items():
        if grant not in old["access"]:
            lines.append(f"access.{grant}: granted ({key_fingerprint(value['key'])})")
    return lines


def _value(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    if value == "":
        return "''"
    return str(value)
