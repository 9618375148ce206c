"""The sandbox host as the end-to-end tests see it: the CLI, SSH as deploy, HTTP through nginx."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import REPO

SITEOPS = str(Path(sys.executable).parent / "siteops")


def _as_from_a_terminal() -> None:
    """A siteops started here takes Ctrl-C (SIGINT) as it does at a terminal.

    The tests may themselves run with SIGINT ignored (a background job of a
    shell without job control), which their children would inherit.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Host:
    """One sandbox: its own container name, published ports and inventory host.

    Sandboxes made with the same ``root`` share one inventory, each as its own ``host``.
    """

    def __init__(
        self,
        root: Path,
        name: str,
        ssh_port: int,
        http_port: int,
        host: str = "sandbox",
        env: dict[str, str] | None = None,
    ) -> None:
        self.inventory = root / "inventory"
        self.state = root / "state"
        self.name = name
        self.host = host
        self.ssh_port = ssh_port
        self.http_port = http_port
        self.env = {**os.environ, "XDG_STATE_HOME": str(self.state), "SITEOPS_SANDBOX": name,
                    **(env or {})}  # fmt: skip

    @property
    def sites_file(self) -> Path:
        return self.inventory / "host_vars" / self.host / "sites.yml"

    def siteops(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``siteops -i INVENTORY --host HOST ARGS``; with ``check``, it must succeed."""
        done = subprocess.run(
            [SITEOPS, "-i", str(self.inventory), "--host", self.host, *args],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=REPO,
            check=False,
            preexec_fn=_as_from_a_terminal,
        )
        print(
            f"$ siteops --host {self.host} {' '.join(args)} -> {done.returncode}\n"
            f"{done.stdout}{done.stderr[-2000:]}"
        )
        if check:
            assert done.returncode == 0, done.stderr
        return done

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [SITEOPS, "-i", str(self.inventory), "--host", self.host, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
            cwd=REPO,
            preexec_fn=_as_from_a_terminal,
        )

    def ssh(self, command: str) -> subprocess.CompletedProcess[str]:
        key = self.inventory / ".ssh"
        return subprocess.run(
            ["ssh", "-o", f"UserKnownHostsFile={key / 'known_hosts'}", "-o", "BatchMode=yes",
             "-i", str(key / "id_ed25519"), "-p", str(self.ssh_port), "deploy@127.0.0.1", command],
            capture_output=True,
            text=True,
            check=False,
        )  # fmt: skip

    def get(self, domain: str, path: str = "/") -> tuple[int, str]:
        """GET ``path`` through the sandbox's nginx with ``domain`` as Host (0: no answer)."""
        done = subprocess.run(
            ["curl", "-s", "-m", "10", "-H", f"Host: {domain}", "-w", "\n%{http_code}",
             f"http://127.0.0.1:{self.http_port}{path}"],
            capture_output=True,
            text=True,
            check=False,
        )  # fmt: skip
        body, _, code = done.stdout.rpartition("\n")
        return int(code or 0), body


def sandbox_host(
    root: Path,
    name: str,
    ssh_port: int,
    http_port: int,
    https_port: int,
    *up_args: str,
    host: str = "sandbox",
    env: dict[str, str] | None = None,
) -> Iterator[Host]:
    """Bring a sandbox up with the host baseline; remove it afterwards (also when up fails).

    ``up_args`` go to ``sandbox up``: ``--debian 12``, or ``--baked`` for a
    module that does not test installation (faster). ``host`` is its name in
    the inventory ``root/inventory``, which other sandboxes may share; ``env``
    is added to every siteops command's environment.
    """
    box = Host(root, name, ssh_port, http_port, host, env)
    started = time.monotonic()
    try:
        box.siteops(
            "sandbox", "up", "--ssh-port", str(ssh_port), "--http-port", str(http_port),
            "--https-port", str(https_port), *up_args,
        )  # fmt: skip
        print(f"sandbox {name} ({' '.join(up_args) or 'bare, Debian 13'}) up with the host "
              f"baseline: {time.monotonic() - started:.1f}s")  # fmt: skip
        yield box
    finally:
        box.siteops("sandbox", "down", check=False)
