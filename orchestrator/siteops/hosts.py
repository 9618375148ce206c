"""Onboarding a host: check it over SSH, write it into the inventory, describe it.

``host add`` first checks, with one SSH command and nothing written anywhere,
that the host can be managed: the connection and key work, the login user is
root or may use sudo without a password, and the host runs Debian 12 or 13
with systemd and Python 3. Only then is the host written into ``hosts.yml``
(its SSH host key into ``<inventory>/known_hosts``, accepted on this first
contact and checked strictly afterwards). Paths inside the inventory are
written relative to it (``{{ inventory_dir }}``), so the inventory works from
any clone of the project.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from siteops.errors import HostRefused
from siteops.inventory import (
    HOSTS_FILE,
    hosts_mapping,
    hosts_yaml_text,
    inventory_hosts,
    read_hosts_yaml,
)
from siteops.registry import write_atomically
from siteops.remote import INVENTORY_DIR

KNOWN_HOSTS = "known_hosts"
# Debian releases the roles support (roles/host_baseline/vars/main.yml says the same to Ansible).
SUPPORTED_DEBIAN = ("12", "13")
_HOST_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_ADDRESS = re.compile(r"^[A-Za-z0-9.:-]+$")
_CONNECT_SECONDS = 10

# One SSH command: what the host is, as key=value lines. Nothing is changed there.
PROBE = r"""
echo "uid=$(id -u)"
if [ "$(id -u)" = 0 ]; then echo sudo=root
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then echo sudo=yes
else echo sudo=no; fi
if [ -r /etc/os-release ]; then
  . /etc/os-release
  echo "os_id=${ID:-}"; echo "os_version=${VERSION_ID:-}"; echo "os_name=${PRETTY_NAME:-}"
fi
if [ -d /run/systemd/system ]; then echo systemd=yes; else echo systemd=no; fi
if command -v python3 >/dev/null 2>&1; then echo python3=yes; else echo python3=no; fi
awk '/^MemTotal:/ {print "memory_kib=" $2}' /proc/meminfo 2>/dev/null
df -Pk / 2>/dev/null | awk 'NR == 2 {print "disk_kib=" $2; print "disk_free_kib=" $4}'
echo "cpus=$(nproc 2>/dev/null || echo 0)"
"""


@dataclass(frozen=True)
class Login:
    """How to reach a host: ``user@address`` on ``port``, with ``key`` (else SSH's default keys)."""

    user: str
    address: str
    port: int = 22
    key: Path | None = None


def parse_login(spec: str, port: int, key: Path | None) -> Login:
    """``USER@ADDRESS`` (from ``--ssh``) with the port and key, checked."""
    user, at, address = spec.rpartition("@")
    problems = []
    if not at or not user or not address:
        problems.append(f"--ssh: {spec!r} is not USER@ADDRESS (for example admin@203.0.113.10)")
    elif not _USER.match(user):
        problems.append(f"--ssh: {user!r} is not a valid user name")
    elif not _ADDRESS.match(address.strip("[]")):
        problems.append(f"--ssh: {address!r} is not a host name or IP address")
    if not 1 <= port <= 65535:
        problems.append(f"--port: {port} is not a TCP port (1-65535)")
    if key is not None and not key.expanduser().is_file():
        problems.append(f"--key: {key} is not a file")
    if problems:
        raise HostRefused("; ".join(problems))
    return Login(user, address.strip("[]"), port, None if key is None else key.expanduser())


def check_name(hosts_file: Path, name: str) -> None:
    """A new host's name: a valid inventory name that ``hosts.yml`` does not have yet."""
    if not _HOST_NAME.match(name):
        raise HostRefused(
            f"name: {name!r} is not a host name (lowercase letters, digits and hyphens, "
            "1-63 characters, starting and ending with a letter or digit)"
        )
    if name in inventory_hosts(hosts_file):
        raise HostRefused(f"name: {name!r} is already a host of {hosts_file}; choose another name")


def parse_probe(text: str) -> dict[str, str]:
    """The ``key=value`` lines the probe printed."""
    facts: dict[str, str] = {}
    for line in text.splitlines():
        key, eq, value = line.partition("=")
        if eq and key.isidentifier():
            facts[key] = value.strip()
    return facts


def probe_problems(facts: Mapping[str, str], user: str) -> list[str]:
    """What the host lacks for siteops, each as a sentence (none: it can be managed)."""
    problems = []
    if facts.get("sudo") == "no":
        problems.append(
            f"{user} is not root and cannot use sudo without a password "
            f"(add '{user} ALL=(ALL) NOPASSWD:ALL' in /etc/sudoers.d/, or log in as root)"
        )
    name = facts.get("os_name") or "an unknown system (no /etc/os-release)"
    if facts.get("os_id") != "debian" or facts.get("os_version") not in SUPPORTED_DEBIAN:
        problems.append(f"the host runs {name}; siteops supports Debian 12 and 13")
    if facts.get("systemd") != "yes":
        problems.append("systemd is not running as the init system (/run/systemd/system)")
    if facts.get("python3") != "yes":
        problems.append("python3 is missing, which Ansible needs (apt-get install python3)")
    return problems


def connection_problem(login: Login, code: int, stderr: str) -> str:
    """A one-line reason for a failed SSH connection, from ssh's own message."""
    where = f"{login.address}:{login.port}"
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else f"ssh exited with {code}"
    if "Connection refused" in stderr:
        return f"nothing answers SSH at {where} (connection refused)"
    if "timed out" in stderr:
        return f"no answer from {where} within {_CONNECT_SECONDS}s (connection timed out)"
    if "Could not resolve hostname" in stderr:
        return f"{login.address!r} does not resolve to an address"
    if "Permission denied" in stderr:
        key = f"the key {login.key}" if login.key else "your SSH keys"
        return f"{where} refused {login.user} with {key} ({last})"
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in stderr or "Host key verification" in stderr:
        return f"the SSH host key of {where} differs from the one in {KNOWN_HOSTS}: {last}"
    return f"SSH to {login.user}@{where} failed: {last}"


def _ssh_base(login: Login, known_hosts: Path, strict: str) -> list[str]:
    argv = [
        "ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={_CONNECT_SECONDS}",
        "-o", f"StrictHostKeyChecking={strict}", "-o", f"UserKnownHostsFile={known_hosts}",
        "-o", "ControlMaster=no", "-p", str(login.port),
    ]  # fmt: skip
    if login.key is not None:
        argv += ["-o", "IdentitiesOnly=yes", "-i", str(login.key)]
    return argv


@dataclass(frozen=True)
class Probed:
    """What the probe found, and the host key line(s) ssh accepted on this contact."""

    facts: dict[str, str]
    known_hosts: str


def probe(login: Login, known_hosts: Path) -> Probed:
    """Run the probe over SSH; keys already in ``known_hosts`` must match, new ones are accepted.

    Nothing is written to ``known_hosts``: the keys ssh accepted are returned.
    """
    with tempfile.TemporaryDirectory(prefix="siteops-host-") as scratch:
        trial = Path(scratch) / KNOWN_HOSTS
        if known_hosts.is_file():
            shutil.copyfile(known_hosts, trial)
        argv = [*_ssh_base(login, trial, "accept-new"), f"{login.user}@{login.address}", "sh -s"]
        try:
            done = subprocess.run(
                argv, input=PROBE, capture_output=True, text=True, timeout=60, check=False
            )
        except subprocess.TimeoutExpired:
            raise HostRefused(
                f"{login.address}:{login.port} did not finish the check in 60s"
            ) from None
        if done.returncode == 255:
            raise HostRefused(connection_problem(login, done.returncode, done.stderr))
        facts = parse_probe(done.stdout)
        if "uid" not in facts:
            raise HostRefused(
                f"the check on {login.address} printed nothing usable (exit {done.returncode}): "
                f"{done.stderr.strip()[-200:]}"
            )
        return Probed(facts, trial.read_text("utf-8") if trial.is_file() else "")


def _inside(path: Path, folder: Path) -> str | None:
    try:
        return str(path.resolve().relative_to(folder.resolve()))
    except ValueError:
        return None


def key_setting(key: Path, inventory: Path) -> str:
    """The key's path for ``hosts.yml``: relative to the inventory or home when inside them."""
    relative = _inside(key, inventory)
    if relative is not None:
        return f"{INVENTORY_DIR}/{relative}"
    relative = _inside(key, Path.home())
    return f"~/{relative}" if relative is not None else str(key.resolve())


def host_entry(login: Login, inventory: Path) -> dict[str, Any]:
    """The variables of the new host in ``hosts.yml``."""
    entry: dict[str, Any] = {"ansible_host": login.address, "ansible_user": login.user}
    if login.port != 22:
        entry["ansible_port"] = login.port
    if login.user != "root":
        entry["ansible_become"] = True
    entry["ansible_python_interpreter"] = "/usr/bin/python3"
    if login.key is not None:
        entry["ansible_ssh_private_key_file"] = key_setting(login.key, inventory)
    entry["ansible_ssh_common_args"] = (
        f"-o UserKnownHostsFile={INVENTORY_DIR}/{KNOWN_HOSTS} -o StrictHostKeyChecking=yes"
    )
    return entry


def merged_known_hosts(current: str, accepted: str) -> str:
    """``known_hosts`` with the lines ssh accepted added (each line once, order kept)."""
    lines = current.splitlines()
    lines += [line for line in accepted.splitlines() if line.strip() and line not in lines]
    return "".join(f"{line}\n" for line in lines)


def write_host(inventory: Path, name: str, entry: dict[str, Any], accepted: str) -> None:
    """Add ``name`` to ``hosts.yml``, its host keys to ``known_hosts`` (caller holds the lock)."""
    hosts_file = inventory / HOSTS_FILE
    known_hosts = inventory / KNOWN_HOSTS
    current = known_hosts.read_text("utf-8") if known_hosts.is_file() else ""
    write_atomically(known_hosts, merged_known_hosts(current, accepted))
    data = read_hosts_yaml(hosts_file)
    hosts_mapping(data, str(hosts_file))[name] = entry
    write_atomically(hosts_file, hosts_yaml_text(data))


def ssh_login_of(variables: Mapping[str, Any], host: str) -> str:
    """``user@address:port`` of an inventory host, for listings."""
    user = variables.get("ansible_user", "root")
    port = variables.get("ansible_port", 22)
    return f"{user}@{variables.get('ansible_host', host)}:{port}"


def _gib(kib: str | None) -> float | None:
    try:
        return round(int(kib or "") / 1024 / 1024, 1)
    except ValueError:
        return None


def live_view(facts: Mapping[str, str]) -> dict[str, Any]:
    """What ``host show`` prints of the probe: release, CPUs, memory and disk in GiB."""
    return {
        "release": facts.get("os_name") or "unknown",
        "cpus": int(facts["cpus"]) if facts.get("cpus", "").isdigit() else None,
        "memory_gib": _gib(facts.get("memory_kib")),
        "disk_gib": _gib(facts.get("disk_kib")),
        "disk_free_gib": _gib(facts.get("disk_free_kib")),
    }
