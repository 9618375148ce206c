"""Day two on a running site: its environment variables and its units, over the host's lock.

``env`` reads a site's ``.env``; ``env set`` / ``env unset`` change the
operator's lines below the roles' managed blocks (a managed key is refused)
and restart the site's units; ``restart`` restarts its units (or one
component's); ``db rotate-password`` gives the site's PostgreSQL role a new
password, generated on the host and written into the roles' DATABASE_URL.
The changes go over the connection that holds the host's lock
(:class:`siteops.hostlock.HostSession`): values travel on its stdin, never in
a command line, and reach no log, runner artifact or registry file; the
audit log masks them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from siteops.errors import SiteModelError
from siteops.hostfacts import process_units, running_units
from siteops.hostlock import HostSession, read_env
from siteops.layout import layout
from siteops.model import HostSites
from siteops.operations import (
    SERVING_TIMEOUT,
    RunFailed,
    known_site,
    outcome,
    site_session,
)
from siteops.runner import RunResult
from siteops.target import SITE_PLAYBOOK, OnProgress, Target

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MASK = "********"


def _check_key(key: str) -> None:
    if not _KEY.match(key):
        raise SiteModelError(
            "env",
            [f"key: {key!r} is not a variable name (letters, digits and _, not first a digit)"],
        )


def parse_assignments(items: Sequence[str]) -> dict[str, str]:
    """``KEY=VALUE`` arguments as a mapping; an error names the key, never the value."""
    assign: dict[str, str] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq:
            raise SiteModelError("env", [f"{key!r}: expected KEY=VALUE"])
        _check_key(key)
        if "\n" in value or "\0" in value:
            raise SiteModelError("env", [f"{key}: a value must be one line (no newline or NUL)"])
        assign[key] = value
    return assign


def units_of(sites: HostSites, name: str, component: str | None) -> list[str]:
    """The site's process units, or only ``component``'s (which must be a process)."""
    site = sites.sites[name]
    if component is None:
        units = process_units(name, site)
        if not units:
            raise SiteModelError("site", [f"site: {name!r} has no process units: nginx serves it"])
        return units
    if component not in site.components:
        raise SiteModelError("component", [f"component: {name!r} has no component {component!r}"])
    units = process_units(name, site.model_copy(update={
        "components": {component: site.components[component]}}))  # fmt: skip
    if not units:
        raise SiteModelError(
            "component", [f"component: {component!r} of {name!r} is static: nginx serves it"]
        )
    return units


def env_entries(target: Target, name: str, *, reveal: bool) -> list[dict[str, Any]]:
    """The site's variables in file order, values masked unless ``reveal``."""
    known_site(target, name)
    entries = read_env(target.variables(), target.host, layout().env_path(name))
    if entries is None:
        raise SiteModelError("env", [f"site {name!r} has no .env on {target.host} yet: apply it"])
    return [{**e, "value": e["value"] if reveal else MASK} for e in entries]


def _with_ports(sites: HostSites, name: str, units: list[str]) -> dict[str, int | None]:
    """Each of the site's ``units`` with its component's port (None: no port)."""
    site = sites.sites[name]
    ports = {layout().unit_name(name, c): spec.port for c, spec in site.components.items()}
    return {unit: ports.get(unit) for unit in units}


def _converged(
    target: Target,
    session: HostSession,
    sites: HostSites,
    name: str,
    changed: list[str],
    on_progress: OnProgress,
) -> Changed:
    """Converge the site alone (its roles restart the units whose .env changed), then wait
    until each unit that runs answers on its port."""
    result = target.run(SITE_PLAYBOOK, {"siteops_only": [name]}, check=False,
                        on_progress=on_progress, cancel=session.lost)  # fmt: skip
    if result.exit_code != 0:
        session.finish(outcome(result))
        raise RunFailed(
            f"the change is on the host, but converging {name!r} failed",
            result,
            f"Fix the cause, then run `siteops apply {name}` (safe to repeat).",
        )
    units = running_units(name, sites.sites[name])
    return Changed(changed, result, session.serving(units, SERVING_TIMEOUT) if units else {})


@dataclass(frozen=True)
class Changed:
    """What a day-two change did: keys changed, the converge run, each unit's state."""

    changed: list[str]
    result: RunResult | None
    units: dict[str, Any]


def change_env(
    target: Target,
    name: str,
    assign: Mapping[str, str],
    unset: Sequence[str],
    on_progress: OnProgress,
) -> Changed:
    """Set and unset the operator's variables; if any changed, converge the site (units restart)."""
    sites = known_site(target, name)
    for key in unset:
        _check_key(key)
    verb = "env set" if assign else "env unset"
    with site_session(target, f"{verb} {name}", name, on_progress) as session:
        done = session.change_env(layout().env_path(name), assign, unset)
        if done.get("refused"):
            session.finish("refused")
            raise SiteModelError(
                "env",
                [f"{key}: managed by siteops (the roles write it); it cannot be set or unset "
                 "here" for key in done["refused"]],
            )  # fmt: skip
        changed = list(done.get("changed") or [])
        if not changed:
            return Changed([], None, {})
        return _converged(target, session, sites, name, changed, on_progress)


def restart(
    target: Target, name: str, component: str | None, on_progress: OnProgress
) -> dict[str, Any]:
    """Restart the site's units (or one component's); each unit's state and port afterwards."""
    sites = known_site(target, name)
    units = _with_ports(sites, name, units_of(sites, name, component))
    site = sites.sites[name]
    if site.stopped or (component and site.components[component].stopped):
        what = f"component {component!r} of {name!r}" if component else f"site {name!r}"
        start = f"siteops start {name}" + (f" -c {component}" if component else "")
        raise SiteModelError(
            "restart", [f"stopped: {what} was stopped by an operator; run `{start}` to start it"]
        )
    purpose = f"restart {name}" + (f" -c {component}" if component else "")
    with site_session(target, purpose, name, on_progress) as session:
        session.restart(list(units))
        return session.serving(units, SERVING_TIMEOUT)


def rotate_db_password(target: Target, name: str, on_progress: OnProgress) -> Changed:
    """A new database password for the site (role and .env), then the site converged."""
    sites = known_site(target, name)
    if not sites.sites[name].database.enabled:
        raise SiteModelError("database", [f"database: site {name!r} has no database"])
    with site_session(target, f"db rotate-password {name}", name, on_progress) as session:
        session.rotate_db_password(layout().env_path(name), name)
        return _converged(target, session, sites, name, ["DATABASE_URL"], on_progress)


def serving_text(units: Mapping[str, Any]) -> str:
    """``shop-frontend.service active on 3100`` for each unit, or why it does not serve."""
    parts = []
    for unit, state in units.items():
        text = f"{unit} {state.get('state')}"
        if state.get("listening") is True:
            text += f" on {state.get('port')}"
        elif state.get("listening") is False:
            text += f", nothing answers on {state.get('port')}"
        parts.append(text)
    return ", ".join(parts) or "no units"
