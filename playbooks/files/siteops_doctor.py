"""What a siteops host has, for `siteops doctor` to hold against the registry; one JSON document.

Run by playbooks/facts.yml (with siteops_facts_doctor) as root on the managed
host (Debian's python3, standard library only), beside siteops_facts.py. Reads
on standard input:

    {"layout": {"sites_root": ..., "backup_root": ..., "env_file": ...,
                "firewall_dir": ..., "redis_acl_file": ..., "unit_marker": ...},
     "sites": {"shop": {"slice": "shop.slice", "units": ["shop-frontend.service"]}}}

and prints, for the whole host: the users living under the sites root, the
trees there (owner and mode), every component unit file siteops wrote (by
site), the nginx configs, firewall rule files and live rules, databases and
login roles, Redis ACL users, disk use and failed units; for the named sites:
their .env's owner and mode, their units' states and their slices' limits.
It changes nothing and reads no secret (never a .env's content).
"""

from __future__ import annotations

import json
import os
import pwd
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

NGINX = Path("/etc/nginx")
UNITS = Path("/etc/systemd/system")


def run(argv: list[str]) -> str | None:
    """The command's output, or None when it cannot run or fails."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def owner_mode(path: Path) -> dict[str, Any] | None:
    try:
        stat = path.lstat()
    except OSError:
        return None
    try:
        owner = pwd.getpwuid(stat.st_uid).pw_name
    except KeyError:
        owner = str(stat.st_uid)
    return {"owner": owner, "mode": f"{stat.st_mode & 0o7777:04o}", "dir": path.is_dir()}


def users(root: str) -> dict[str, dict[str, str]]:
    """Accounts whose home is a tree under the sites root."""
    return {
        entry.pw_name: {"home": entry.pw_dir, "shell": entry.pw_shell}
        for entry in pwd.getpwall()
        if entry.pw_dir.startswith(root.rstrip("/") + "/")
    }


def trees(root: str) -> dict[str, Any]:
    base = Path(root)
    if not base.is_dir():
        return {}
    return {child.name: owner_mode(child) for child in sorted(base.iterdir())}


def component_units(marker: str) -> dict[str, str]:
    """Every unit file whose first line is siteops' marker, with the site it names."""
    found: dict[str, str] = {}
    for path in sorted(UNITS.glob("*.service")):
        try:
            with path.open(encoding="utf-8", errors="replace") as handle:
                first = handle.readline().rstrip("\n")
        except OSError:
            continue
        if first.startswith(marker + " "):
            found[path.name] = first[len(marker) + 1 :].strip()
    return found


def show(names: list[str], props: str) -> dict[str, dict[str, str]]:
    if not names:
        return {}
    out = run(["systemctl", "show", f"--property=Id,{props}", "--", *names]) or ""
    found: dict[str, dict[str, str]] = {}
    for block in out.strip().split("\n\n"):
        values = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if "Id" in values:
            found[values["Id"]] = values
    return found


NGINX_HEADER = re.compile(r"^# nginx config of siteops site (\S+)\.$", re.MULTILINE)


def nginx() -> dict[str, Any]:
    """Site configs (by the site their header names) in sites-available, and what is enabled."""
    available: dict[str, str] = {}
    for path in sorted((NGINX / "sites-available").glob("*.conf")):
        try:
            head = path.read_text(encoding="utf-8", errors="replace")[:400]
        except OSError:
            continue
        match = NGINX_HEADER.search(head)
        if match:
            available[path.name] = match.group(1)
    enabled = sorted(p.name for p in (NGINX / "sites-enabled").glob("*.conf"))
    return {"available": available, "enabled": enabled}


def firewall(directory: str) -> dict[str, Any]:
    files = sorted(p.stem for p in Path(directory, "nftables.d").glob("*.nft"))
    ruleset = run(["nft", "list", "ruleset"])
    live = sorted(set(re.findall(r'comment "siteops ([^"]+)"', ruleset))) if ruleset else None
    return {"files": files, "live": live}


def postgres() -> dict[str, Any]:
    def query(sql: str) -> list[str] | None:
        out = run(["runuser", "-u", "postgres", "--", "psql", "-X", "-tA", "-c", sql])
        return None if out is None else [line for line in out.splitlines() if line]

    return {
        "databases": query(
            "SELECT datname FROM pg_database WHERE NOT datistemplate AND datname <> 'postgres'"
        ),
        "roles": query("SELECT rolname FROM pg_roles WHERE rolcanlogin AND rolname <> 'postgres'"),
    }


def redis_users(acl_file: str) -> list[str] | None:
    try:
        text = Path(acl_file).read_text(encoding="utf-8")
    except OSError:
        return None
    return sorted(line.split()[1] for line in text.splitlines() if line.startswith("user "))


def disk(paths: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for path in paths:
        try:
            stat = os.statvfs(path)
        except OSError:
            continue
        total = stat.f_blocks * stat.f_frsize
        free = stat.f_bavail * stat.f_frsize
        if total:
            out[path] = round((total - free) / total * 100, 1)
    return out


def failed_units() -> list[str]:
    out = run(["systemctl", "list-units", "--failed", "--plain", "--no-legend", "--no-pager"])
    return sorted(line.split()[0] for line in (out or "").splitlines() if line.strip())


def main() -> None:
    request = json.load(sys.stdin)
    layout = request["layout"]
    wanted: dict[str, Any] = request.get("sites", {})
    root = layout["sites_root"]
    units = sorted({unit for spec in wanted.values() for unit in spec["units"]})
    slices = sorted(spec["slice"] for spec in wanted.values())
    report = {
        "users": users(root),
        "trees": trees(root),
        "env": {name: owner_mode(Path(root, name, layout["env_file"])) for name in wanted},
        "component_units": component_units(layout["unit_marker"]),
        "units": show(units, "LoadState,ActiveState,UnitFileState"),
        "slices": show(slices, "MemoryMax,CPUQuotaPerSecUSec,TasksMax"),
        "nginx": nginx(),
        "firewall": firewall(layout["firewall_dir"]),
        "postgres": postgres(),
        "redis_users": redis_users(layout["redis_acl_file"]),
        "disk": disk(["/", root, layout["backup_root"]]),
        "failed_units": failed_units(),
    }
    json.dump(report, sys.stdout, sort_keys=True)


if __name__ == "__main__":
    main()
