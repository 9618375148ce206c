"""Build the record of a new site and add it to a host's sites.

The CLI's ``add-site`` collects a few answers (name, domains, runtime, which
data services, limits, TLS contact) and a free port block; :func:`new_site`
turns them into a full :class:`~siteops.model.Site` with ports and start
commands filled in, and :func:`add_site` checks it against the sites the host
already has. Nothing here touches the host or the file: the caller saves the
result through :mod:`siteops.registry`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from siteops.errors import SiteModelError, describe
from siteops.model import HostSites, Site
from siteops.naming import check_site_name, normalize_domain
from siteops.ports import MAX_BLOCK, default_port, ports_of, range_for_component
from siteops.runtime import Runtime

# The start command of a frontend per runtime, run by systemd in current/ with
# PORT (the component's own port) and HOST=127.0.0.1 set from the site's .env.
# They are starting points: the site's record can name any command.
_FRONTEND_COMMANDS: dict[Runtime, str] = {
    # server.js listens on process.env.PORT.
    Runtime.NODE: "node server.js",
    # Next.js is told the address and port explicitly: `next start` would
    # otherwise listen on every interface.
    Runtime.NEXTJS: "node_modules/.bin/next start --hostname 127.0.0.1 --port {port}",
    # app.py listens on os.environ["PORT"], inside the site's own virtualenv.
    Runtime.PYTHON: ".venv/bin/python app.py",
}
# The api component: JavaScript sites get a Node API next to their frontend,
# every other site (python or static) a Python one.
_NODE_API_COMMAND = "node api.js"
_PYTHON_API_COMMAND = ".venv/bin/python api.py"
_JAVASCRIPT_RUNTIMES = frozenset({Runtime.NODE, Runtime.NEXTJS})


def _runtime(value: str) -> Runtime:
    try:
        return Runtime(value)
    except ValueError:
        choices = ", ".join(r.value for r in Runtime)
        raise ValueError(f"runtime {value!r} is not one of {choices}") from None


def api_command(frontend: Runtime) -> str:
    """The default start command of an api component next to a ``frontend`` of that runtime."""
    return _NODE_API_COMMAND if frontend in _JAVASCRIPT_RUNTIMES else _PYTHON_API_COMMAND


def _components(
    runtime: Runtime, api: bool, block: int, command: str | None
) -> dict[str, dict[str, Any]]:
    frontend: dict[str, Any] = {"runtime": runtime.value}
    if runtime != Runtime.STATIC:
        port = default_port(block, "frontend")
        frontend["port"] = port
        frontend["command"] = command or _FRONTEND_COMMANDS[runtime].format(port=port)
    components = {"frontend": frontend}
    if api:
        javascript = runtime in _JAVASCRIPT_RUNTIMES
        components["api"] = {
            "runtime": (Runtime.NODE if javascript else Runtime.PYTHON).value,
            "port": default_port(block, "api"),
            "command": api_command(runtime),
        }
    return components


@dataclass(frozen=True)
class SiteAnswers:
    """What ``add-site`` asks about a new site (everything but its name).

    The first domain is the primary one, the others are aliases; ``block`` is
    a free port block (:func:`siteops.ports.allocate_block`); ``memory`` and
    ``cpu`` left as ``None`` take the model's defaults; TLS is on exactly when
    ``tls_email`` is given.
    """

    domains: list[str]
    block: int
    runtime: str = Runtime.NODE.value
    api: bool = False
    database: bool = True
    cache: bool = False
    memory: str | None = None
    cpu: str | None = None
    tls_email: str | None = None
    ca_directory: str | None = None
    description: str = ""
    command: str | None = None


def new_site(name: str, answers: SiteAnswers) -> Site:
    """The record of a new site (status ``pending``) from the ``add-site`` answers.

    The frontend gets the first frontend port of the block and the api (when
    asked for) the first API port; a static frontend has neither port nor
    command. ``ca_directory`` (default: Let's Encrypt production) only makes
    sense with ``tls_email``. Raises :class:`~siteops.errors.SiteModelError`
    naming each field that is wrong.
    """
    source = f"new site {name!r}"
    problems: list[str] = []
    try:
        check_site_name(name)
    except ValueError as exc:
        problems.append(f"name: {exc}")
    try:
        kind = _runtime(answers.runtime)
    except ValueError as exc:
        problems.append(f"runtime: {exc}")
        kind = Runtime.STATIC  # not used: the problem is raised below
    if not answers.domains:
        problems.append("domains: at least one domain is required (the first is the primary)")
    if not 0 <= answers.block <= MAX_BLOCK:
        problems.append(
            f"port_block: block {answers.block} is outside 0-{MAX_BLOCK}; "
            "take one from siteops.ports.allocate_block"
        )
    if answers.command is not None and kind == Runtime.STATIC:
        problems.append(
            "components.frontend.command: a static frontend has no command (nginx serves "
            "current/); leave --command out or choose another runtime"
        )
    if answers.ca_directory is not None and answers.tls_email is None:
        problems.append(
            "tls.ca_directory: a CA directory is only used with TLS, which needs a contact "
            "email: give tls_email too, or leave the CA directory out"
        )
    if problems:
        raise SiteModelError(source, problems)

    tls: dict[str, Any] = {"enabled": answers.tls_email is not None}
    if answers.tls_email is not None:
        tls["email"] = answers.tls_email
    if answers.ca_directory is not None:
        tls["ca_directory"] = answers.ca_directory
    limits: dict[str, Any] = {}
    if answers.memory is not None:
        limits["memory"] = answers.memory
    if answers.cpu is not None:
        limits["cpu"] = answers.cpu
    record: dict[str, Any] = {
        "description": answers.description,
        "port_block": answers.block,
        "domains": {"primary": answers.domains[0], "aliases": answers.domains[1:]},
        "components": _components(kind, answers.api, answers.block, answers.command),
        "database": {"enabled": answers.database},
        "cache": {"enabled": answers.cache},
        "limits": limits,
        "tls": tls,
    }
    try:
        return Site.model_validate(record)
    except ValidationError as exc:
        raise SiteModelError(source, describe(exc)) from None


def taken_blocks(sites: HostSites) -> set[int]:
    """The port blocks held by the host's active sites (archived sites hold none)."""
    return {site.port_block for site in sites.sites.values()}


def domain_owners(sites: HostSites) -> dict[str, str]:
    """Every domain (ASCII form) of the host's active sites, mapped to its site."""
    return {domain: name for name, site in sites.sites.items() for domain in site.domains.all()}


def inventory_domain_owners(hosts: Mapping[str, HostSites]) -> dict[str, tuple[str, str]]:
    """Every domain of the active sites of several hosts, mapped to its (host, site)."""
    return {
        domain: (host, name)
        for host, sites in hosts.items()
        for domain, name in domain_owners(sites).items()
    }


def domain_taken(
    domain: str, owner: str | None, other: tuple[str, str] | None, way_out: str
) -> str | None:
    """The refusal of a domain another site serves (``owner`` here, ``other`` = (host, site)
    elsewhere in the inventory), or None when it is free."""
    if owner is not None:
        return (
            f"domains: {domain!r} is already served by site {owner!r}; a domain belongs "
            f"to one site (remove it from {owner!r} first{way_out})"
        )
    if other is not None:
        return (
            f"domains: {domain!r} is already served by site {other[1]!r} on host "
            f"{other[0]!r}; a domain belongs to one site of the inventory (remove it "
            f"there first{way_out})"
        )
    return None


def _normalized(domain: str) -> str:
    try:
        return normalize_domain(domain)
    except ValueError:
        return domain  # new_site reports it with its field


def add_site(
    sites: HostSites,
    name: str,
    answers: SiteAnswers,
    elsewhere: Mapping[str, tuple[str, str]] | None = None,
) -> HostSites:
    """A copy of ``sites`` with the new site ``name`` appended (see :func:`new_site`).

    Refuses, naming the field, a name already used by an active or archived
    site, a domain another site already serves (on this host, or on another
    host of the inventory: ``elsewhere`` maps those domains to their host and
    site, see :func:`inventory_domain_owners`) and a port block another site
    holds; the whole result is validated through the site model again.
    ``sites`` itself is not changed.
    """
    source = f"new site {name!r}"
    problems: list[str] = []
    if name in sites.sites:
        problems.append(
            f"name: site {name!r} already exists on this host; choose another name "
            "(or change the existing site instead)"
        )
    elif name in sites.archived:
        problems.append(
            f"name: {name!r} is the name of an archived site (archived "
            f"{sites.archived[name].archived_at}); `siteops forget-site {name}` frees the name "
            "(its backups stay), or choose another name"
        )
    owners = domain_owners(sites)
    others = elsewhere or {}
    for domain in answers.domains:
        taken = domain_taken(domain, owners.get(_normalized(domain)),
                             others.get(_normalized(domain)), ", or leave it out")  # fmt: skip
        if taken:
            problems.append(taken)
    holders = {site.port_block: other for other, site in sites.sites.items()}
    if answers.block in holders:
        problems.append(
            f"port_block: block {answers.block} is held by site {holders[answers.block]!r}; "
            "use a free block (siteops.ports.allocate_block)"
        )
    if problems:
        raise SiteModelError(source, problems)

    site = new_site(name, answers)
    data = sites.to_yaml_data()
    data["siteops_sites"][name] = site.model_dump(mode="json")
    try:
        return HostSites.model_validate(data)
    except ValidationError as exc:
        raise SiteModelError(source, describe(exc)) from None


def revived_site(
    sites: HostSites,
    name: str,
    block: int,
    elsewhere: Mapping[str, tuple[str, str]] | None = None,
) -> tuple[HostSites, list[str]]:
    """A copy of ``sites`` with the archived site ``name`` active again (``restore-site``).

    Its record as it was removed, status ``pending``, in port ``block`` (each
    component's port moved to the same place in the new block), with those of
    its domains no other site serves meanwhile (here or, per ``elsewhere``, on
    another host of the inventory): the first of them is its primary. Also
    returns the domains left out. Refuses, naming the field, a name that is
    not archived and a site none of whose domains is free.
    """
    source = f"restore-site {name}"
    if name not in sites.archived:
        where = ("is an active site, not a removed one" if name in sites.sites
                 else "is not an archived site of this host")  # fmt: skip
        raise SiteModelError(source, [f"name: {name!r} {where}"])
    record = sites.archived[name].site.model_dump(mode="json")
    owners, others = domain_owners(sites), elsewhere or {}
    wanted = sites.archived[name].site.domains.all()
    free = [d for d in wanted if d not in owners and d not in others]
    if not free:
        raise SiteModelError(source, [
            f"domains: every domain of {name!r} ({', '.join(wanted)}) is served by another "
            "site now; free one of them first"])  # fmt: skip
    record["domains"] = {"primary": free[0], "aliases": free[1:]}
    old = int(record["port_block"])
    record["port_block"] = block
    for component, spec in record["components"].items():
        if spec.get("port") is not None:
            kind = range_for_component(component)
            spec["port"] += ports_of(block, kind).start - ports_of(old, kind).start
    record["status"] = "pending"
    data = sites.to_yaml_data()
    data["siteops_sites"][name] = record
    del data["siteops_archived_sites"][name]
    try:
        return HostSites.model_validate(data), [d for d in wanted if d not in free]
    except ValidationError as exc:
        raise SiteModelError(source, describe(exc)) from None
