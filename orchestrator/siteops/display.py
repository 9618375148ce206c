"""How the CLI shows things: tables, status lines, JSON views (a run's progress: siteops.progress).

Pure formatting: every function takes data and returns text (or writes to the
stream it is given), so it is unit-tested without a host.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from siteops.doctor import Finding
from siteops.hostfacts import HostFacts, process_units, proxied_components, proxied_ports
from siteops.layout import layout
from siteops.markdown import slice_name
from siteops.model import HostSites, Site
from siteops.ports import PortRange, ports_of, spare_port


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table with columns as wide as their widest cell."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(cell.ljust(w) for cell, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(headers), *(line(row) for row in rows)])


def _span(r: range) -> str:
    return f"{r.start}-{r.stop - 1}"


def state_text(site: Site) -> str:
    """The record's status, and what an operator set: ``active, stopped`` or ``…, maintenance``."""
    marks = ["stopped" if site.stopped else "", "maintenance" if site.maintenance.enabled else ""]
    stopped = [c for c, spec in site.components.items() if spec.stopped and not site.stopped]
    marks.append(f"{', '.join(stopped)} stopped" if stopped else "")
    return ", ".join([str(site.status), *filter(None, marks)])


def site_row(name: str, site: Site) -> list[str]:
    frontend = site.components["frontend"]
    return [
        name,
        state_text(site),
        str(site.port_block),
        _span(ports_of(site.port_block, PortRange.FRONTEND)),
        ", ".join(site.domains.all()),
        str(frontend.runtime) + (" +api" if "api" in site.components else ""),
        "yes" if site.database.enabled else "no",
        "yes" if site.cache.enabled else "no",
        "on" if site.tls.enabled else "off",
    ]


SITE_HEADERS = ["SITE", "STATUS", "BLOCK", "PORTS", "DOMAINS", "RUNTIME", "DB", "CACHE", "TLS"]


def sites_table(sites: HostSites) -> str:
    if not sites.sites:
        return "no sites yet (add one with `siteops add-site NAME --domain DOMAIN`)"
    return table(SITE_HEADERS, [site_row(name, site) for name, site in sites.sites.items()])


def hosts_table(hosts: Mapping[str, HostSites]) -> str:
    """``list --all-hosts``: every host's sites, with a HOST column.

    Hosts without sites, and each host's archived sites, are named below the table.
    """
    if not hosts:
        return "no hosts in the inventory's hosts.yml"
    rows = [[host, *site_row(name, site)] for host, sites in hosts.items()
            for name, site in sites.sites.items()]  # fmt: skip
    lines = [table(["HOST", *SITE_HEADERS], rows)] if rows else ["no sites on any host yet"]
    empty = [host for host, sites in hosts.items() if not sites.sites]
    if rows and empty:
        lines.append(f"\nno sites yet on: {', '.join(empty)}")
    archived = [f"{host}: {', '.join(sites.archived)}" for host, sites in hosts.items()
                if sites.archived]  # fmt: skip
    if archived:
        lines.append(f"\narchived: {'; '.join(archived)}")
    return "\n".join(lines)


def sites_view(sites: HostSites) -> dict[str, Any]:
    """``list --json`` of one host: its site records and its archived ones."""
    data = sites.to_yaml_data()
    return {"sites": data["siteops_sites"], "archived": data["siteops_archived_sites"]}


def site_view(name: str, site: Site) -> dict[str, Any]:
    """Everything about one site a person looks for, as plain data (``show --json``)."""
    root = layout().site_root(name)
    return {
        "name": name,
        "state": state_text(site),
        "record": site.model_dump(mode="json"),
        "ports": {r.value: _span(ports_of(site.port_block, r)) for r in PortRange},
        "unix_user": name,
        "slice": slice_name(name),
        "units": process_units(name, site),
        "paths": {
            "root": root,
            "current": f"{root}/current",
            "env": layout().env_path(name),
            "logs": layout().logs_dir(name),
            "nginx": layout().nginx_config_format % name,
        },
        "database": name if site.database.enabled else None,
        # What a deploy switches through: the frontend's and api's spare slots.
        "spare_slots": {
            layout().spare_unit_format % (name, component): spare_port(port)
            for component, port in proxied_components(site).items()
        },
    }


def show_text(view: Mapping[str, Any]) -> str:
    record = view["record"]
    lines = [
        f"{view['name']} ({view['state']}): {record['description'] or 'no description'}",
        f"  domains:   {record['domains']['primary']}"
        + "".join(f", {alias}" for alias in record["domains"]["aliases"]),
        f"  block:     {record['port_block']} (frontend {view['ports']['frontend']}, "
        f"api {view['ports']['api']}, extra {view['ports']['extra']})",
    ]
    for component, spec in record["components"].items():
        port = spec["port"] if spec["port"] is not None else "—"
        command = spec["command"] or "(static: nginx serves current/)"
        lines.append(f"  {component + ':':<10} {spec['runtime']} port {port}: {command}")
    for job, spec in record["jobs"].items():
        lines.append(f"  job {job}: {spec['schedule']}: {spec['command']}")
    limits = record["limits"]
    tls = f"on, {record['tls']['email']}" if record["tls"]["enabled"] else "off"
    lines += [
        f"  limits:    memory {limits['memory']}, cpu {limits['cpu']}, tasks {limits['tasks']} "
        f"({view['slice']})",
        f"  database:  {view['database'] or 'none'}"
        f"; cache: {'redis user ' + view['name'] if record['cache']['enabled'] else 'none'}",
        f"  tls:       {tls}",
        f"  user:      {view['unix_user']} (nologin); units: {', '.join(view['units']) or 'none'}",
    ]
    if view["spare_slots"]:
        lines.append(
            "  switch:    through the spare slots "
            + ", ".join(f"{unit} (port {port})" for unit, port in view["spare_slots"].items())
            + "; only during a deploy or rollback"
        )
    lines += [f"  {key + ':':<10} {value}" for key, value in view["paths"].items()]
    return "\n".join(lines)


def _backup_line(label: str, record: Mapping[str, Any] | None) -> str:
    if not record:
        return f"{label}: none yet"
    text = f"{label}: {record.get('result', '?')} at {record.get('at', '?')}"
    if record.get("message"):
        text += f" ({record['message']})"
    return text


def status_view(sites: HostSites, facts: HostFacts) -> dict[str, Any]:
    """``status --json``: each site's record status next to what the host says."""
    return {
        name: {
            "status": str(sites.sites[name].status),
            "stopped": sites.sites[name].stopped,
            "maintenance": sites.sites[name].maintenance.enabled,
            **dict(raw),
        }
        for name, raw in facts.sites.items()
    }


def _job_lines(site: Site, raw: Mapping[str, Any]) -> list[str]:
    runs = raw.get("jobs") or {}
    lines = []
    for name, job in site.jobs.items():
        run = runs.get(name) or {}
        last = run.get("last") or "never"
        if run.get("last") and run.get("result"):
            last += f" ({run['result']})"
        lines.append(f"  job {name} ({job.schedule}): last {last}, next {run.get('next') or '?'}")
    return lines


def serving_text(current: str | None, serving: Sequence[int], main: Sequence[int]) -> str:
    """Which release serves and from which slot (``serving``: the ports nginx passes to).

    A frontend or api has a main slot (its own port, ``main``) and a spare one
    that runs only while a deploy or rollback switches releases.
    """
    if not main:
        return f"{current or 'none'} (static: nginx serves it)"
    if not serving:
        return f"{current or 'none'} (no upstream in the nginx config)"
    slot = "main slot" if set(serving) <= set(main) else "spare slot: a switch is under way"
    return f"{current or 'none'} from the {slot} (ports {', '.join(map(str, serving))})"


def _known(value: Any, suffix: str = "") -> str:
    return "?" if value is None else f"{value}{suffix}"


def usage_line(site: Site, raw: Mapping[str, Any]) -> str:
    """Disk, then memory, CPU and tasks against the slice's limits, then db connections."""
    parts = [
        f"disk: {raw.get('disk_use') or '?'}",
        f"memory: {raw.get('memory_use') or '?'} of {site.limits.memory}",
        f"cpu: {_known(raw.get('cpu_percent'), '%')} of {site.limits.cpu}",
        f"tasks: {_known(raw.get('tasks'))} of {site.limits.tasks}",
    ]
    if site.database.enabled:
        parts.append(
            f"db connections: {raw.get('db_connections', 0)}/{site.database.connection_limit}"
        )
    return ", ".join(parts)


def status_text(sites: HostSites, facts: HostFacts) -> str:
    if not facts.sites:
        return "no sites yet"
    blocks: list[str] = []
    for name, raw in facts.sites.items():
        site = sites.sites[name]
        http = raw.get("http") or {}
        answer = http.get("status") or f"no answer ({http.get('error', 'unknown')})"
        units = raw.get("units") or {}
        listeners = raw.get("listeners") or {}
        release = raw.get("release") or {}
        cert = (
            f"expires {raw['cert_expiry']} (issued {raw.get('cert_issued')})"
            if raw.get("cert_expiry")
            else ("none yet" if site.tls.enabled else "off")
        )
        blocks.append(
            "\n".join(
                [
                    f"{name} ({state_text(site)}): {http.get('url', '?')} -> {answer}",
                    "  units:       " + (", ".join(f"{u} {s}" for u, s in units.items()) or "none"),
                    "  listening:   "
                    + (
                        ", ".join(f"{p} on {'/'.join(a)}" for p, a in listeners.items())
                        or "nothing in its block"
                    ),
                    "  release:     "
                    + serving_text(
                        release.get("current"),
                        release.get("serving_ports") or [],
                        proxied_ports(site),
                    ),
                    f"  certificate: {cert}",
                    "  " + usage_line(site, raw),
                    *_job_lines(site, raw),
                    "  " + _backup_line("last backup", raw.get("backup")),
                    "  " + _backup_line("restore test", raw.get("restore_test")),
                ]
            )
        )
    return "\n\n".join(blocks)


def audit_table(entries: Sequence[Mapping[str, Any]]) -> str:
    """The audit log as a table, oldest first."""
    rows = []
    for entry in entries:
        who = entry.get("operator") or {}
        key = f" {who['key']}" if who.get("key") else ""
        rows.append([
            str(entry.get("time", "")),
            f"{who.get('user')}@{who.get('machine')}{key}",
            " ".join(["siteops", *map(str, entry.get("args") or [])])
            if entry.get("args") else str(entry.get("command", "")),
            ",".join(map(str, entry.get("sites") or [])) or "-",
            str(entry.get("result", "")),
            f"{entry.get('duration_s', '')}s",
            str(entry.get("revision") if entry.get("revision") is not None else "-"),
        ])  # fmt: skip
    if not rows:
        return "the audit log is empty"
    return table(["TIME", "OPERATOR", "COMMAND", "SITES", "RESULT", "TOOK", "REVISION"], rows)


def doctor_text(host: str, found: Sequence[Finding]) -> str:
    """Each finding as ``site: problem`` with its why and fix; a line when there is none."""
    if not found:
        return f"{host}: no findings; the host matches its registry"
    lines = []
    for finding in found:
        lines += [
            f"{finding.site or f'host {host}'}: {finding.problem}",
            f"  why: {finding.why}",
            f"  fix: {finding.fix}",
        ]
    count = len(found)
    lines.append(f"{count} finding{'s' if count != 1 else ''} on {host}")
    return "\n".join(lines)
