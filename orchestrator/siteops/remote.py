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

from siteops.layout import layout

# The one Ansible variable siteops itself resolves in host variables (see host_vars).
INVENTORY_DIR = "{{ inventory_dir }}"


class RemoteError(RuntimeError):
    """The host's connection settings cannot be used for a direct SSH command."""


def host_vars(hosts_file: Path, host: str) -> dict[str, Any]:
    """The variables of ``host`` as the inventory defines them."""
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
    if not isinstance(data, dict):
        return {}
    # Paths inside the inventory are written as {{ inventory_dir }}/… (siteops host add).
    here = str(hosts_file.parent.resolve())
    return {k: v.replace(INVENTORY_DIR, here) if isinstance(v, str) else v for k, v in data.items()}


def ssh_argv(
    variables: Mapping[str, Any], host: str, remote: Sequence[str], raw_suffix: str = ""
) -> list[str]:
    """``ssh …`` running ``remote`` on the host (through ``sudo -n`` unless the user is root).

    ``raw_suffix`` is appended to the remote command line unquoted, for the
    login shell to expand (``"$SSH_USER_AUTH"``).
    """
    connection = variables.get("ansible_connection", "ssh")
    if connection not in ("ssh", "smart", "paramiko"):
        raise RemoteError(
            f"host {host!r} is reached with ansible_connection={connection}; "
            "direct commands need SSH"
        )
    user = str(variables.get("ansible_user", "root"))
    argv = ["ssh", "-o", "BatchMode=yes"]
    if "ansible_port" in variables:
        argv += ["-p", str(variables["ansible_port"])]
    if "ansible_ssh_private_key_file" in variables:
        argv += ["-i", str(variables["ansible_ssh_private_key_file"])]
    argv += shlex.split(str(variables.get("ansible_ssh_common_args", "")))
    argv += shlex.split(str(variables.get("ansible_ssh_extra_args", "")))
    address = str(variables.get("ansible_host", host))
    command = list(remote) if user == "root" else ["sudo", "-n", *remote]
    line = shlex.join(command) + (f" {raw_suffix}" if raw_suffix else "")
    return [*argv, f"{user}@{address}", "--", line]


def log_command(site: str, component: str | None, lines: int, follow: bool) -> list[str]:
    """The remote command that prints (or follows) a site's component logs."""
    logs = layout().logs_dir(site)
    pattern = f"{logs}/{component}*.log" if component else f"{logs}/*.log"
    tail = f"tail -n {int(lines)}{' -F' if follow else ''} -- {pattern}"
    # The glob is expanded by a shell on the host, as root (the logs are the site's).
    return ["sh", "-c", f"set -- {pattern}; [ -e \"$1\" ] || {{ echo 'no logs yet in {logs}' >&2; "
            f"exit 1; }}; exec {tail}"]  # fmt: skip
