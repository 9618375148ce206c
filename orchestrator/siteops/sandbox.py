"""The local sandbox host: a disposable systemd container reached over SSH like a real VPS.

``up`` starts the container from a test-host image of a Debian release
(``testhosts/``: systemd as PID 1, the same flags as the Molecule scenarios;
by default the bare image, which holds only what a provider's minimal VPS
image does, so the roles install everything they use), publishes its
SSH, HTTP and HTTPS ports on 127.0.0.1 only, creates a non-root ``deploy``
user with passwordless sudo that logs in with a key generated for the
sandbox, pins the container's SSH host key, and writes an inventory for it
(``hosts.yml``). The caller then applies the host baseline through it.
``down`` removes the container and its host from the inventory.

Several sandboxes may share one inventory, each its own host (``--host``) and
container: ``up`` adds or updates its own host in ``hosts.yml`` and its own
line in ``known_hosts`` (all use the inventory's one key), and ``down`` takes
only its own host out (its registry and markdown too); the inventory goes
with the last host.

Everything the sandbox needs from the machine (the container engine, the
images and the forward proxy through which its sites' install steps reach
PyPI and the npm registry) comes from the project's own scripts in
``testhosts/``. The proxy and this machine's CA bundle are handed to the
sites' build steps only (``site_release_build_environment``): a real VPS
reaches the registries directly.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from siteops.errors import SiteModelError
from siteops.inventory import (
    HOSTS_FILE,
    hosts_mapping,
    hosts_yaml_text,
    inventory_hosts,
    read_hosts_yaml,
    sites_path,
)
from siteops.registry import inventory_locked, write_atomically

CONTAINER = "siteops-sandbox"
# Debian major version -> suite, for the sandbox's image (the first is the default).
DEBIAN_RELEASES = {"13": "trixie", "12": "bookworm"}
DEFAULT_DEBIAN = next(iter(DEBIAN_RELEASES))
# The machine's CA bundle, and where the sandbox's build steps find a copy.
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
SANDBOX_CA_BUNDLE = "/usr/local/share/siteops-sandbox/ca-bundle.crt"
# The sandbox's test ACME CA (testhosts/pebble.sh): its directory, and the CA
# certbot must trust to reach it.
PEBBLE_DIRECTORY = "https://127.0.0.1:14000/dir"
PEBBLE_LISTENER_CA = "/etc/pebble/ca.pem"
HOST = "sandbox"
DEPLOY_USER = "deploy"
ENGINE_SOCKET = "unix:///run/siteops-engine/docker.sock"
DOCKER = "/usr/bin/docker"
LABEL = "siteops.sandbox"
_BOOT_SECONDS = 60
_SSH_SECONDS = 30

Say = Callable[[str], None]


class SandboxError(RuntimeError):
    """The sandbox could not be started, reached or stopped; the message says why."""


def image(debian: str, baked: bool) -> str:
    """The test-host image of a Debian release: bare, or with siteops' packages baked in."""
    return f"siteops-testhost{'' if baked else '-bare'}:{DEBIAN_RELEASES[debian]}"


@dataclass(frozen=True)
class Ports:
    """The loopback ports the sandbox's SSH, HTTP and HTTPS are published on."""

    ssh: int = 2222
    http: int = 8080
    https: int = 8443


@dataclass(frozen=True)
class Sandbox:
    """The sandbox host ``host`` of ``inventory`` (normally ``inventory/sandbox``)."""

    testhosts: Path  # the test-host scripts (siteops.resources.find_testhosts)
    inventory: Path
    name: str = CONTAINER
    host: str = HOST

    @property
    def key(self) -> Path:
        return self.inventory / ".ssh" / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.inventory / ".ssh" / "known_hosts"

    @property
    def hosts_file(self) -> Path:
        return self.inventory / HOSTS_FILE

    @property
    def ca_file(self) -> Path:
        """The root of the sandbox's test CA: what curl and the tests verify its HTTPS with."""
        return self.inventory / "ca" / f"{self.name}.pem"

    def _env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": ENGINE_SOCKET}

    def _docker(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        try:
            done = subprocess.run(
                [DOCKER, *args],
                input=stdin,
                capture_output=True,
                text=True,
                env=self._env(),
                check=False,
            )
        except FileNotFoundError:
            raise SandboxError(
                f"{DOCKER} is missing: run `testhosts/engine.sh start` (it installs the engine)"
            ) from None
        if check and done.returncode != 0:
            raise SandboxError(f"docker {args[0]} failed: {done.stderr.strip() or done.stdout}")
        return done.stdout

    def _script(self, name: str, *args: str) -> str:
        script = self.testhosts / name
        done = subprocess.run(
            ["bash", str(script), *args],
            env=self._env(),
            stdout=subprocess.PIPE,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise SandboxError(f"{script} failed (exit {done.returncode}); see its output above")
        return done.stdout.strip()

    def state(self) -> str | None:
        """The container's state (``running``, ``exited`` …), ``None`` if there is none."""
        try:
            out = self._docker("inspect", "-f", "{{.State.Status}}", self.name, check=False)
        except SandboxError:
            return None
        return out.strip() or None

    def engine_answers(self) -> bool:
        try:
            subprocess.run(
                [DOCKER, "info"], env=self._env(), capture_output=True, check=True, timeout=20
            )
        except (OSError, subprocess.SubprocessError):
            return False
        return True

    def up(
        self,
        ports: Ports,
        say: Say,
        debian: str = DEFAULT_DEBIAN,
        baked: bool = False,
        write_inventory: bool = True,
    ) -> None:
        """Start (or reuse) the sandbox and write its inventory; idempotent.

        ``debian`` (a key of ``DEBIAN_RELEASES``) and ``baked`` pick the image of
        a new container; an existing one keeps its own. Without
        ``write_inventory`` the host is only started and reachable with the
        sandbox key (``.ssh/`` of the inventory), for ``siteops host add``.
        """
        if not self.engine_answers():
            say("starting the container engine (testhosts/engine.sh start)")
            self._script("engine.sh", "start")
        self._script("proxy.sh", "start")
        state = self.state()
        if state is None:
            name = image(debian, baked)
            say(f"building or reusing the image {name} (testhosts/images.sh)")
            self._script("images.sh", DEBIAN_RELEASES[debian])
            self._ensure_key(say)
            say(f"starting {self.name} from {name} (SSH on 127.0.0.1:{ports.ssh})")
            self._docker(*_run_args(self.name, ports, name))
        elif state != "running":
            say(f"starting the existing {self.name}")
            self._docker("start", self.name)
        else:
            say(f"{self.name} is already running")
        self._ensure_key(say)
        self._wait_for_systemd()
        self._bootstrap_deploy_user()
        self._copy_ca_bundle()
        say("running the test ACME CA inside (testhosts/pebble.sh)")
        self._run_pebble()
        published = self._published_ports()
        self._pin_host_key(published.ssh)
        if write_inventory:
            self._write_inventory(published, self._script("proxy.sh", "url"))
        self._wait_for_ssh(published.ssh)
        say(f"{DEPLOY_USER}@127.0.0.1:{published.ssh} answers over SSH with the sandbox key")

    def down(self, say: Say) -> None:
        """Remove the container and its host from the inventory (registry included).

        The other hosts of the inventory stay; with the last one the whole
        inventory goes, key included, unless it is the inventory of a project
        folder (``siteops init``: an ``ansible.cfg`` beside it), where only the
        key goes. A host of ``hosts.yml`` that ``up`` did not write is left alone.
        """
        if self.engine_answers() and self.state() is not None:
            say(f"removing {self.name}")
            self._docker("rm", "-f", self.name)
        else:
            say(f"no {self.name} container")
        if not self.inventory.exists():
            return
        with self._inventory_locked("sandbox down"):
            data = self._hosts_yaml()
            hosts = self._hosts_of(data)
            if self.host in hosts and "siteops_sandbox_http_port" not in (hosts[self.host] or {}):
                say(f"{self.host} in {self.hosts_file} is not a sandbox: left as it is")
                return
            if self.host in hosts:
                del hosts[self.host]
                self._write_hosts(data)
            shutil.rmtree(sites_path(self.inventory, self.host).parent, ignore_errors=True)
            (self.inventory / "registry" / f"{self.host}.md").unlink(missing_ok=True)
            self.ca_file.unlink(missing_ok=True)
            self._write_known_hosts(None)
            left = inventory_hosts(self.hosts_file)
        if left:
            say(f"removed {self.host} from {self.hosts_file}; other hosts kept: {', '.join(left)}")
        elif (self.inventory.resolve().parent / "ansible.cfg").is_file():
            # A project folder's inventory (siteops init): it stays, without the sandbox's key.
            say(f"no sandbox host left in {self.hosts_file}: removed the sandbox key")
            shutil.rmtree(self.key.parent, ignore_errors=True)
        else:
            say(f"removing the sandbox inventory {self.inventory}")
            shutil.rmtree(self.inventory)

    def _ensure_key(self, say: Say) -> None:
        if self.key.exists():
            return
        say(f"generating the sandbox's SSH key {self.key}")
        self.key.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "siteops-sandbox",
             "-f", str(self.key)],
            check=True,
        )  # fmt: skip

    def _wait_for_systemd(self) -> None:
        deadline = time.monotonic() + _BOOT_SECONDS
        state = ""
        while time.monotonic() < deadline:
            state = self._docker(
                "exec", self.name, "systemctl", "is-system-running", check=False
            ).strip()
            if state in ("running", "degraded"):
                return
            time.sleep(0.5)
        raise SandboxError(f"systemd in {self.name} did not finish booting (state {state!r})")

    def _bootstrap_deploy_user(self) -> None:
        public_key = self.key.with_suffix(".pub").read_text(encoding="utf-8").strip()
        script = f"""set -eu
id -u {DEPLOY_USER} >/dev/null 2>&1 || useradd --create-home --shell /bin/bash {DEPLOY_USER}
install -d -m 0700 -o {DEPLOY_USER} -g {DEPLOY_USER} /home/{DEPLOY_USER}/.ssh
printf '%s\\n' '{public_key}' > /home/{DEPLOY_USER}/.ssh/authorized_keys
chown {DEPLOY_USER}:{DEPLOY_USER} /home/{DEPLOY_USER}/.ssh/authorized_keys
chmod 0600 /home/{DEPLOY_USER}/.ssh/authorized_keys
printf '%s\\n' '{DEPLOY_USER} ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/{DEPLOY_USER}
chmod 0440 /etc/sudoers.d/{DEPLOY_USER}
visudo -cq
ssh-keygen -A >/dev/null
# Without host keys (a fresh image) ssh failed at boot until systemd stopped
# trying: clear that before starting it.
systemctl reset-failed ssh.service >/dev/null 2>&1 || true
systemctl enable --now ssh >/dev/null 2>&1
systemctl is-active --quiet ssh
"""
        self._docker("exec", "-i", self.name, "bash", "-s", stdin=script)

    def _copy_ca_bundle(self) -> None:
        """This machine's CA bundle, for the build steps' HTTPS through the proxy."""
        directory = str(PurePosixPath(SANDBOX_CA_BUNDLE).parent)
        self._docker("exec", self.name, "install", "-d", "-m", "0755", directory)
        self._docker("cp", str(CA_BUNDLE), f"{self.name}:{SANDBOX_CA_BUNDLE}")
        self._docker("exec", self.name, "chmod", "0644", SANDBOX_CA_BUNDLE)

    def _run_pebble(self) -> None:
        """Pebble in the sandbox, every name resolving to the sandbox; its root saved here."""
        script = (self.testhosts / "pebble.sh").read_text(encoding="utf-8")
        root = self._docker("exec", "-i", self.name, "bash", "-s", stdin=script)
        self.ca_file.parent.mkdir(parents=True, exist_ok=True)
        self.ca_file.write_text(root, encoding="utf-8")

    def _published_ports(self) -> Ports:
        def port(inner: str) -> int:
            out = self._docker("port", self.name, inner).strip().splitlines()
            if not out:
                raise SandboxError(f"{self.name} does not publish {inner}: run sandbox down, up")
            return int(out[0].rsplit(":", 1)[1])

        return Ports(ssh=port("22/tcp"), http=port("80/tcp"), https=port("443/tcp"))

    def _pin_host_key(self, ssh_port: int) -> None:
        key = self._docker("exec", self.name, "cat", "/etc/ssh/ssh_host_ed25519_key.pub").split()
        with self._inventory_locked("sandbox up"):
            self._write_known_hosts(f"[127.0.0.1]:{ssh_port} {key[0]} {key[1]}")

    def _write_known_hosts(self, entry: str | None) -> None:
        """Put ``entry`` in ``known_hosts`` in place of this host's line (none: remove it).

        A line for the same address goes too; the other sandboxes' lines stay.
        """
        mark = f"siteops-sandbox:{self.host}"
        old = self.known_hosts.read_text("utf-8").splitlines() if self.known_hosts.exists() else []
        address = entry.split()[0] if entry else None
        lines = [line for line in old
                 if line.split()[-1:] != [mark] and line.split()[:1] != [address]]  # fmt: skip
        if entry:
            lines.append(f"{entry} {mark}")
        if lines or self.known_hosts.exists():
            write_atomically(self.known_hosts, "".join(f"{line}\n" for line in lines))

    def _inventory_locked(self, purpose: str) -> AbstractContextManager[None]:
        # Held for a file write or two; a minute is plenty.
        return inventory_locked(self.inventory, timeout=60, purpose=f"{purpose} {self.host}")

    def _hosts_yaml(self) -> dict[str, Any]:
        try:
            return read_hosts_yaml(self.hosts_file)
        except SiteModelError as exc:
            raise SandboxError(f"{self.hosts_file}: {'; '.join(exc.problems)}") from None

    def _write_hosts(self, data: dict[str, Any]) -> None:
        write_atomically(self.hosts_file, hosts_yaml_text(data))

    def _hosts_of(self, data: dict[str, Any]) -> dict[str, Any]:
        """The ``all.hosts`` mapping of the loaded ``hosts.yml`` (created when missing)."""
        try:
            return hosts_mapping(data, str(self.hosts_file))
        except SiteModelError as exc:
            raise SandboxError(f"{self.hosts_file}: {'; '.join(exc.problems)}") from None

    def ssh_args(self, ssh_port: int) -> list[str]:
        return [
            "-o", f"UserKnownHostsFile={self.known_hosts.resolve()}",
            "-o", "StrictHostKeyChecking=yes",
            "-o", "IdentitiesOnly=yes",
            "-o", "BatchMode=yes",
            "-i", str(self.key.resolve()),
            "-p", str(ssh_port),
        ]  # fmt: skip

    def _write_inventory(self, ports: Ports, proxy: str) -> None:
        common = " ".join(self.ssh_args(ports.ssh)[:8])  # the -o options
        host_vars = {
            "ansible_host": "127.0.0.1",
            "ansible_port": ports.ssh,
            "ansible_user": DEPLOY_USER,
            "ansible_become": True,
            "ansible_python_interpreter": "/usr/bin/python3",
            "ansible_ssh_private_key_file": str(self.key.resolve()),
            "ansible_ssh_common_args": common,
            # Where the sandbox's nginx is published on this machine.
            "siteops_sandbox_http_port": ports.http,
            "siteops_sandbox_https_port": ports.https,
            # Certificates come from the sandbox's own test CA (Pebble), which
            # resolves every name to the sandbox; add-site uses it by default.
            "siteops_ca_directory": PEBBLE_DIRECTORY,
            "siteops_sandbox_ca_file": str(self.ca_file.resolve()),
            "letsencrypt_environment": {"REQUESTS_CA_BUNDLE": PEBBLE_LISTENER_CA},
            "letsencrypt_check_address": "127.0.0.1",
            # The sites' install steps (npm ci, pip install) reach the package
            # registries through the test proxy, trusting this machine's CAs.
            "site_release_build_environment": {
                "https_proxy": proxy,
                "HTTPS_PROXY": proxy,
                "PIP_CERT": SANDBOX_CA_BUNDLE,
                "NODE_EXTRA_CA_CERTS": SANDBOX_CA_BUNDLE,
            },
        }
        with self._inventory_locked("sandbox up"):  # the other hosts of hosts.yml stay
            data = self._hosts_yaml()
            self._hosts_of(data)[self.host] = host_vars
            self._write_hosts(data)

    def _wait_for_ssh(self, ssh_port: int) -> None:
        deadline = time.monotonic() + _SSH_SECONDS
        last = ""
        while time.monotonic() < deadline:
            done = subprocess.run(
                ["ssh", *self.ssh_args(ssh_port), f"{DEPLOY_USER}@127.0.0.1", "sudo", "-n", "true"],
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode == 0:
                return
            last = done.stderr.strip()
            time.sleep(0.5)
        raise SandboxError(f"SSH to the sandbox did not answer within {_SSH_SECONDS}s: {last}")

    def published(self) -> Ports | None:
        """The published ports of the running sandbox, ``None`` when it is not running."""
        if self.state() != "running":
            return None
        return self._published_ports()


def _run_args(name: str, ports: Ports, image_name: str) -> list[str]:
    """``docker run`` for the sandbox: the flags proven to boot systemd here (testhosts/)."""
    return [
        "run", "--detach", "--name", name, "--hostname", HOST, "--label", f"{LABEL}={name}",
        "--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN", "--cap-add", "SYS_PTRACE",
        "--security-opt", "seccomp=unconfined", "--cgroupns", "host",
        "--volume", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
        "--tmpfs", "/run", "--tmpfs", "/run/lock",
        "--stop-signal", "SIGRTMIN+3",
        "--publish", f"127.0.0.1:{ports.ssh}:22",
        "--publish", f"127.0.0.1:{ports.http}:80",
        "--publish", f"127.0.0.1:{ports.https}:443",
        image_name, "/lib/systemd/systemd",
    ]  # fmt: skip
