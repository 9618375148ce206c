"""Live facts about a host and its sites, as gathered by ``playbooks/facts.yml``.

:func:`facts_request` says what to look at (each site's domain, port block,
units, slice); the playbook runs ``playbooks/files/siteops_facts.py`` on the
host and hands its JSON back through ``set_stats``; :func:`parse_facts` turns
that into :class:`HostFacts`. Nothing here talks to the host: the caller runs
the playbook (see :mod:`siteops.operations`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from siteops.markdown import SiteFacts, slice_name, unit_name
from siteops.model import HostSites, Site
from siteops.ports import block_ports
from siteops.runtime import Runtime

FACTS_PLAYBOOK = "facts.yml"
FACTS_ARTIFACT = "siteops_facts"


def process_units(name: str, site: Site) -> list[str]:
    """The service unit of each process component (static components have none)."""
    return [
        unit_name(name, component_name)
        for component_name, component in site.components.items()
        if component.runtime != Runtime.STATIC
    ]


# The release a new site runs until its first deploy (roles/site_user): its units do not run.
PLACEHOLDER = "placeholder"


def running_units(name: str, site: Site) -> dict[str, int | None]:
    """The units that should run (not stopped by an operator), each with its port (or None)."""
    if site.stopped:
        return {}
    return {
        unit_name(name, component_name): component.port
        for component_name, component in site.components.items()
        if component.runtime != Runtime.STATIC and not component.stopped
    }


def job_timers(name: str, site: Site) -> list[str]:
    """The timer of each scheduled job (``<site>-<job>.timer``)."""
    return [unit_name(name, job).removesuffix(".service") + ".timer" for job in site.jobs]


def site_units(name: str, sites: HostSites) -> list[str]:
    """The systemd units of a site: its process components, job timers, backup timers."""
    return [
        *process_units(name, sites.sites[name]),
        *job_timers(name, sites.sites[name]),
        f"siteops-backup@{name}.timer",
        f"siteops-restore-test@{name}.timer",
    ]


def facts_request(sites: HostSites, names: Iterable[str]) -> dict[str, Any]:
    """The ``siteops_facts_sites`` variable of ``facts.yml`` for the named sites."""
    return {
        name: {
            "domain": sites.sites[name].domains.primary,
            "ports": block_ports(sites.sites[name].port_block),
            "units": site_units(name, sites),
            "slice": slice_name(name),
            "tls": sites.sites[name].tls.enabled,
            "jobs": {job: unit_name(name, job) for job in sites.sites[name].jobs},
        }
        for name in names
    }


@dataclass(frozen=True)
class HostFacts:
    """What the host said: its listening TCP ports, and per site the raw facts.

    A site's facts hold ``units`` (unit → ActiveState, ``absent`` when the
    unit does not exist), ``listeners`` (port → addresses), ``http``
    (``url``, ``status``, maybe ``error``), ``cert_issued``/``cert_expiry``
    (dates or ``None``), ``disk_use``, ``memory_use``, ``cpu_percent`` (of
    one core, sampled for half a second), ``tasks``, ``db_connections``,
    and ``backup``/``restore_test`` (the status files of the backup role, or
    ``None`` before the first run).
    """

    listening: frozenset[int]
    sites: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # The user owning each listening port (port as a string), where the host said.
    owners: Mapping[str, str] = field(default_factory=dict)

    def registry_facts(self) -> dict[str, SiteFacts]:
        """The subset the markdown registry shows, per site."""
        return {
            name: SiteFacts(
                cert_expiry=raw.get("cert_expiry"),
                cert_issued=raw.get("cert_issued"),
                disk_use=raw.get("disk_use"),
                memory_use=raw.get("memory_use"),
                db_connections=raw.get("db_connections"),
                units={
                    unit: state
                    for unit, state in raw.get("units", {}).items()
                    if unit.endswith(".service")
                },
            )
            for name, raw in self.sites.items()
        }


class FactsMissing(RuntimeError):  # noqa: N818 (reads as the condition it reports)
    """The facts playbook ended without handing facts back."""


def parse_facts(artifacts: Mapping[str, Any]) -> HostFacts:
    """:class:`HostFacts` from a facts run's ``RunResult.artifacts``."""
    raw = artifacts.get(FACTS_ARTIFACT)
    if not isinstance(raw, Mapping):
        raise FactsMissing(
            "the host's facts were not handed back (the facts playbook did not finish): "
            "read the log of the run"
        )
    listening = frozenset(int(port) for port in raw.get("listening", []))
    sites = raw.get("sites", {})
    owners = raw.get("owners", {})
    return HostFacts(
        listening=listening,
        sites=sites if isinstance(sites, Mapping) else {},
        owners=owners if isinstance(owners, Mapping) else {},
    )


def proxied_components(site: Site) -> dict[str, int]:
    """The components nginx passes requests to (a frontend or api process), with their ports."""
    return {
        n: c.port
        for n, c in site.components.items()
        if n in ("frontend", "api") and c.runtime != "static" and c.port is not None
    }


def proxied_ports(site: Site) -> list[int]:
    """The ports of :func:`proxied_components`: none for a static site without an api."""
    return list(proxied_components(site).values())
