"""A direct SSH command to an inventory host, for what Ansible cannot stream (``logs -f``).

The connection settings (address, port, user, key, SSH options) are read
from the inventory with ``ansible-inventory``, so ``siteops logs`` reaches the
host exactly as the playbooks do, host-key checking included.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from siteops import yamltext
from siteops.inventory import SITES_FILE
from siteops.layout import layout

# The one Ansible variable siteops itself resolves in host variables (see host_vars).
INVENTORY_DIR = "{{ inventory_dir }}"


class RemoteError(RuntimeError):
    """The host's connection settings cannot be used for a direct SSH command."""


def plain_host_vars(hosts_file: Path, host: str) -> dict[str, Any] | None:
    """The host's variables read from ``hosts.yml`` alone, when nothing else can set one.

    That is an inventory as siteops writes it: every host directly under
    ``all.hosts``, no group or ``all`` variables, no ``group_vars/``, and no file
    in ``host_vars/<host>/`` but ``sites.yml`` (the registry, which sets no
    connection variable). Then this is what ``ansible-inventory --host`` says
    about the connection, without its 0.3 s start. Otherwise None.
    """
    inventory = hosts_file.parent
    if (inventory / "group_vars").exists() or any((inventory / "host_vars").glob(f"{host}.*")):
        return None
    own = inventory / "host_vars" / host
    if own.is_dir() and any(
        p.name != SITES_FILE and not p.name.startswith(".") and not p.name.endswith(".lock")
        for p in own.iterdir()
    ):
        return None
    try:
        data = yamltext.load(hosts_file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    if not isinstance(data, dict) or set(data) != {"all"} or not isinstance(data["all"], dict):
        return None
    if set(data["all"]) != {"hosts"} or not isinstance(data["all"]["hosts"], dict):
        return None
    entry = data["all"]["hosts"].get(host, False)
    if entry is False or not isinstance(entry, dict | None):
        return None
    return dict(entry or {})


def host_vars(hosts_file: Path, host: str) -> dict[str, Any]:
    """The variables of ``host`` as the inventory defines them (see :func:`plain_host_vars`)."""
    data = plain_host_vars(hosts_file, host)
    if data is None:
        data = _inventory_host_vars(hosts_file, host)
    # Paths inside the inventory are written as {{ inventory_dir }}/… (siteops host add).
    here = str(hosts_file.parent.resolve())
    return {k: v.replace(INVENTORY_DIR, here) if isinstance(v, str) else v for k, v in data.items()}


def _inventory_host_vars(hosts_file: Path, host: str) -> dict[str, Any]:
    """``ansible-inventory --host``: every source of variables the inventory has."""
    tool = Path(sys.executable).parent / "ansible-inventory"
    done = subprocess.run(
        [str(tool) if tool.exists() else "ansible-inventory", "-i", str(hosts_file),
         "--host", host],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RemoteError(f"ansible-inventory could not read {host!r}: {done.stderr.strip()}")
    data = json.loads(done.stdout)
    return data if isinstance(data, dict) else {}


def connection_argv(
    variables: Mapping[str, Any], host: str, user: str | None = None, key: Path | None = None
) -> list[str]:
    """``ssh [options] user@address`` as the inventory reaches ``host``.

    ``user`` and ``key`` stand in for the inventory's login (a site's access
    key, roles/site_access): then that key alone is offered.
    """
    connection = variables.get("ansible_connection", "ssh")
    if connection not in ("ssh", "smart", "paramiko"):
        raise RemoteError(
            f"host {host!r} is reached with ansible_connection={connection}; "
            "direct commands need SSH"
        )
    argv = ["ssh", "-o", "BatchMode=yes"]
    if "ansible_port" in variables:
        argv += ["-p", str(variables["ansible_port"])]
    if key is not None:
        argv += ["-i", str(key), "-o", "IdentitiesOnly=yes"]
    elif "ansible_ssh_private_key_file" in variables:
        argv += ["-i", str(variables["ansible_ssh_private_key_file"])]
    argv += shlex.split(str(variables.get("ansible_ssh_common_args", "")))
    argv += shlex.split(str(variables.get("ansible_ssh_extra_args", "")))
    login = user or str(variables.get("ansible_user", "root"))
    return [*argv, f"{login}@{variables.get('ansible_host', host)}"]


def ssh_argv(
    variables: Mapping[str, Any], host: str, remote: Sequence[str], raw_suffix: str = ""
) -> list[str]:
    """``ssh …`` running ``remote`` on the host (through ``sudo -n`` unless the user is root).

    ``raw_suffix`` is appended to the remote command line unquoted, for the
    login shell to expand (``"$SSH_USER_AUTH"``).
    """
    user = str(variables.get("ansible_user", "root"))
    command = list(remote) if user == "root" else ["sudo", "-n", *remote]
    line = shlex.join(command) + (f" {raw_suffix}" if raw_suffix else "")
    return [*connection_argv(variables, host), "--", line]


def root_argv(variables: Mapping[str, Any], host: str, remote: Sequence[str]) -> list[str]:
    """``remote`` run as root on the host: over SSH (:func:`ssh_argv`), or here for a host
    Ansible reaches with ``ansible_connection: local``."""
    if variables.get("ansible_connection") == "local":
        return list(remote)
    return ssh_argv(variables, host, remote)


def log_command(site: str, component: str | None, lines: int, follow: bool) -> list[str]:
    """The remote command that prints (or follows) a site's component logs."""
    logs = layout().logs_dir(site)
    pattern = f"{logs}/{component}*.log" if component else f"{logs}/*.log"
    tail = f"tail -n {int(lines)}{' -F' if follow else ''} -- {pattern}"
    # The glob is expanded by a shell on the host, as root (the logs are the site's).
    return ["sh", "-c", f"set -- {pattern}; [ -e \"$1\" ] || {{ echo 'no logs yet in {logs}' >&2; "
            f"exit 1; }}; exec {tail}"]  # fmt: skip
