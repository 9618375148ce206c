"""Read-only facts about a siteops host, printed as one JSON document.

Run by playbooks/facts.yml as root on the managed host (Debian's python3,
standard library only). Reads the host layout (roles/site_layout, as the
playbook has it) and the wanted sites as JSON on standard input:

    {"layout": {"sites_root": ..., "backup_root": ..., "release_log_dir": ...},
     "sites": {"shop": {"domain": "shop.example", "ports": [3100, ...],
                        "units": ["shop-frontend.service", ...],
                        "slice": "shop.slice", "tls": true}}}

and prints the host's listening TCP ports and, per site, the state of its
units, which of its ports listen (and on which address), an HTTP request
through nginx with the site's Host header, certificate dates, disk and memory
use, open database connections and the last backup and restore test. It
changes nothing and prints no secret (it never reads .env).
"""

from __future__ import annotations

import http.client
import json
import os
import pwd
import re
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RELEASES_SHOWN = 50
LIVE = "/etc/letsencrypt/live"
TIMEOUT = 5


@dataclass(frozen=True)
class Layout:
    """Where the host keeps sites, backups and release logs (the request's ``layout``)."""

    sites_root: str
    backup_root: str
    release_log_dir: str
    # A site's nginx config (printf-style from its name); site.yml, which reads
    # only the listening ports, leaves it out.
    nginx_config_format: str = ""


def run(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout if done.returncode == 0 else ""


def listeners() -> tuple[dict[int, list[str]], dict[str, str]]:
    """Listening TCP ports with the addresses they are bound to, and the user owning each
    (from /proc/net)."""
    found: dict[int, set[str]] = {}
    owners: dict[str, str] = {}
    for table, family in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 6)):
        try:
            lines = Path(table).read_text(encoding="ascii").splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 8 or fields[3] != "0A":  # 0A: LISTEN
                continue
            address, port = fields[1].split(":")
            found.setdefault(int(port, 16), set()).add(decode_address(address, family))
            owners[str(int(port, 16))] = user_name(int(fields[7]))
    return {port: sorted(addresses) for port, addresses in sorted(found.items())}, owners


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def decode_address(hexaddr: str, family: int) -> str:
    raw = bytes.fromhex(hexaddr)
    if family == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    return socket.inet_ntop(socket.AF_INET6, words)


def unit_states(units: list[str]) -> dict[str, str]:
    if not units:
        return {}
    out = run(["systemctl", "show", "--property=Id,ActiveState,LoadState", "--", *units])
    states: dict[str, str] = {}
    for block in out.strip().split("\n\n"):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if "Id" in props:
            loaded = props.get("LoadState") != "not-found"
            states[props["Id"]] = props.get("ActiveState", "unknown") if loaded else "absent"
    return {unit: states.get(unit, "absent") for unit in units}


# How long CPU use is sampled (once for every site of the request).
CPU_SAMPLE = 0.5


def _slice_props(slices: list[str], props: str) -> dict[str, dict[str, str]]:
    out = run(["systemctl", "show", f"--property=Id,{props}", "--", *slices])
    found: dict[str, dict[str, str]] = {}
    for block in out.strip().split("\n\n"):
        values = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if "Id" in values:
            found[values["Id"]] = values
    return found


_TICK_NS = 1e9 / os.sysconf("SC_CLK_TCK")


def _process_cpu_ns(groups: dict[str, str]) -> dict[str, int]:
    """CPU time (ns) of the processes now in each slice's cgroup (``groups``: slice -> path).

    Where systemd cannot count a slice's CPU time (cgroup v1 without a
    per-slice cpuacct, as on hybrid hosts), the processes' own times are
    summed (utime + stime of /proc/<pid>/stat).
    """
    totals = dict.fromkeys(groups, 0)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cgroups = (entry / "cgroup").read_text()
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # the process ended meanwhile
        paths = {line.split(":", 2)[2] for line in cgroups.splitlines() if line.count(":") >= 2}
        for name, group in groups.items():
            if any(path == group or path.startswith(group + "/") for path in paths):
                fields = stat.rsplit(")", 1)[1].split()
                totals[name] += int((int(fields[11]) + int(fields[12])) * _TICK_NS)
                break
    return totals


def _cpu_ns(props: dict[str, dict[str, str]], slices: list[str]) -> dict[str, int]:
    counted = {
        n: int(v) for n in slices if (v := props.get(n, {}).get("CPUUsageNSec", "")).isdigit()
    }
    groups = {n: props.get(n, {}).get("ControlGroup", "") for n in slices if n not in counted}
    groups = {n: g for n, g in groups.items() if g}
    return {**counted, **(_process_cpu_ns(groups) if groups else {})}


def slice_usage(slices: list[str]) -> dict[str, dict[str, Any]]:
    """Each slice's memory, task count and CPU use (percent of one core over CPU_SAMPLE s)."""
    if not slices:
        return {}
    first = _slice_props(slices, "MemoryCurrent,TasksCurrent,CPUUsageNSec,ControlGroup")
    cpu_first = _cpu_ns(first, slices)
    started = time.monotonic()
    time.sleep(CPU_SAMPLE)
    again = _slice_props(slices, "CPUUsageNSec")
    cpu_second = _cpu_ns({n: {**first.get(n, {}), **again.get(n, {})} for n in slices}, slices)
    elapsed = time.monotonic() - started
    usage: dict[str, dict[str, Any]] = {}
    for name in slices:
        now = first.get(name, {})
        memory, tasks = now.get("MemoryCurrent", ""), now.get("TasksCurrent", "")
        cpu = None
        if name in cpu_first and name in cpu_second:
            used = max(cpu_second[name] - cpu_first[name], 0)
            cpu = round(used / (elapsed * 1e9) * 100, 1)
        usage[name] = {
            "memory_use": human(int(memory)) if memory.isdigit() else None,
            "tasks": int(tasks) if tasks.isdigit() else None,
            "cpu_percent": cpu,
        }
    return usage


def job_runs(jobs: dict[str, str]) -> dict[str, dict[str, str | None]]:
    """Each job's last and next run (its timer) and how its last run ended (its service)."""
    if not jobs:
        return {}
    timers = {job: unit.removesuffix(".service") + ".timer" for job, unit in jobs.items()}
    shown = _slice_props([*timers.values(), *jobs.values()],
                         "LastTriggerUSec,NextElapseUSecRealtime,Result")  # fmt: skip

    def value(unit: str, prop: str) -> str | None:
        found = shown.get(unit, {}).get(prop, "")
        return found if found and found != "n/a" else None

    return {
        job: {
            "last": value(timers[job], "LastTriggerUSec"),
            "next": value(timers[job], "NextElapseUSecRealtime"),
            "result": value(unit, "Result"),
        }
        for job, unit in jobs.items()
    }


def human(size: int) -> str:
    amount = float(size)
    for unit in ("B", "K", "M", "G"):
        if amount < 1024 or unit == "G":
            return f"{amount:.0f}{unit}" if unit == "B" else f"{amount:.1f}{unit}"
        amount /= 1024
    return f"{amount:.1f}T"


def disk_use(layout: Layout, site: str) -> str | None:
    out = run(["du", "-sh", f"{layout.sites_root}/{site}"])
    return out.split()[0] if out else None


def certificate(site: str) -> dict[str, str] | None:
    path = f"{LIVE}/{site}/cert.pem"
    if not Path(path).exists():
        return None
    out = run(
        ["openssl", "x509", "-noout", "-startdate", "-enddate", "-dateopt", "iso_8601", "-in", path]
    )
    dates = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return {
        "issued": dates.get("notBefore", "")[:10],
        "expires": dates.get("notAfter", "")[:10],
    }


def http_check(domain: str, tls: bool) -> dict[str, Any]:
    """GET / through nginx on this host with the site's Host header (and SNI for HTTPS)."""
    scheme = "https" if tls else "http"
    try:
        if tls:
            context = ssl.create_default_context()
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                "127.0.0.1", 443, timeout=TIMEOUT, context=context
            )
            # Verify the certificate for the site's name, not for 127.0.0.1.
            conn.sock = context.wrap_socket(
                socket.create_connection(("127.0.0.1", 443), timeout=TIMEOUT),
                server_hostname=domain,
            )
        else:
            conn = http.client.HTTPConnection("127.0.0.1", 80, timeout=TIMEOUT)
        conn.request("GET", "/", headers={"Host": domain, "User-Agent": "siteops-status"})
        status = conn.getresponse().status
        conn.close()
    except (OSError, http.client.HTTPException) as exc:
        return {"url": f"{scheme}://{domain}/", "status": None, "error": str(exc)[:200]}
    return {"url": f"{scheme}://{domain}/", "status": status}


def db_connections() -> dict[str, int]:
    out = run(
        [
            "runuser",
            "-u",
            "postgres",
            "--",
            "psql",
            "-X",
            "-tA",
            "-F",
            " ",
            "-c",
            "SELECT usename, count(*) FROM pg_stat_activity WHERE usename IS NOT NULL "
            "GROUP BY usename",
        ]
    )
    counts: dict[str, int] = {}
    for line in out.splitlines():
        name, _, count = line.partition(" ")
        if count.isdigit():
            counts[name] = int(count)
    return counts


def status_file(layout: Layout, site: str, name: str) -> dict[str, Any] | None:
    path = Path(f"{layout.backup_root}/{site}/status/{name}.json")
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def releases(layout: Layout, site: str) -> dict[str, Any]:
    """The release ``current`` points at and the newest records of the site's release log."""
    try:
        current: str | None = Path(f"{layout.sites_root}/{site}/current").readlink().name
    except OSError:
        current = None
    records: list[dict[str, Any]] = []
    try:
        lines = Path(f"{layout.release_log_dir}/{site}.jsonl").read_text("utf-8").splitlines()
    except OSError:
        lines = []
    for line in lines[-RELEASES_SHOWN:]:
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return {"current": current, "log": records, "serving_ports": serving_ports(layout, site)}


def serving_ports(layout: Layout, site: str) -> list[int]:
    """The ports nginx passes the site's requests to (its upstreams' servers), as configured."""
    if not layout.nginx_config_format:
        return []
    try:
        text = Path(layout.nginx_config_format % site).read_text("utf-8")
    except OSError:
        return []
    return [int(port) for port in re.findall(r"^\s*server 127\.0\.0\.1:(\d+)\b", text, re.M)]


def main() -> None:
    request = json.load(sys.stdin)
    layout = Layout(**request["layout"])
    wanted = request.get("sites", {})
    listening, owners = listeners()
    connections = db_connections() if wanted else {}
    usage = slice_usage(sorted({spec["slice"] for spec in wanted.values()}))
    sites: dict[str, Any] = {}
    for name, spec in wanted.items():
        cert = certificate(name)
        own_ports = {str(port): listening[port] for port in spec["ports"] if port in listening}
        sites[name] = {
            "units": unit_states(spec["units"]),
            "listeners": own_ports,
            "http": http_check(spec["domain"], bool(spec["tls"]) and cert is not None),
            "cert_issued": cert["issued"] if cert else None,
            "cert_expiry": cert["expires"] if cert else None,
            "disk_use": disk_use(layout, name),
            **usage.get(spec["slice"], {}),
            "db_connections": connections.get(name, 0),
            "backup": status_file(layout, name, "backup"),
            "restore_test": status_file(layout, name, "restore-test"),
            "release": releases(layout, name),
            "jobs": job_runs(spec.get("jobs") or {}),
        }
    json.dump({"listening": sorted(listening), "owners": owners, "sites": sites}, sys.stdout,
              sort_keys=True)  # fmt: skip


if __name__ == "__main__":
    main()
