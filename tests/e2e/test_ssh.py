"""End to end: the sandbox's sshd takes keys only, and a bad SSH setting never locks anyone out.

Its own sandbox (baked image, Debian 13). The tests build on each other in
file order: look at what sshd uses after the baseline, try a password, then
feed the baseline a setting sshd rejects and one that sshd accepts but that
would lock every key out; both runs fail, put the previous file back and leave
the key login working. The next run changes nothing.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO
from tests.e2e.conftest import Host, sandbox_host

NAME = "siteops-e2e-ssh"
SSH_PORT, HTTP_PORT, HTTPS_PORT = 2252, 8110, 8473
CONFIG = "/etc/ssh/sshd_config.d/siteops.conf"
DOCKER = "/usr/bin/docker"
ENGINE = "unix:///run/siteops-engine/docker.sock"


def _task_names(tasks: list[dict[str, Any]]) -> set[str]:
    names: set[str] = set()
    for task in tasks:
        names.add(task["name"])
        for part in ("block", "rescue", "always"):
            names |= _task_names(task.get(part, []))
    return names


SSH_TASKS = _task_names(
    yaml.safe_load((REPO / "roles/host_baseline/tasks/ssh.yml").read_text(encoding="utf-8"))
)


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    yield from sandbox_host(
        tmp_path_factory.mktemp("ssh"), NAME, SSH_PORT, HTTP_PORT, HTTPS_PORT, "--baked"
    )


def docker(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [DOCKER, *args], capture_output=True, check=True, env={**os.environ, "DOCKER_HOST": ENGINE}
    )


def ssh_with(host: Host, *options: str) -> subprocess.CompletedProcess[str]:
    """``ssh deploy@sandbox true`` with the sandbox's key and pinned host key, plus ``options``."""
    keys = host.inventory / ".ssh"
    return subprocess.run(
        ["ssh", "-o", f"UserKnownHostsFile={keys / 'known_hosts'}", "-o", "BatchMode=yes",
         "-o", "IdentitiesOnly=yes", "-i", str(keys / "id_ed25519"), "-p", str(host.ssh_port),
         *options, "deploy@127.0.0.1", "true"],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip


def sshd_settings(host: Host) -> dict[str, str]:
    """What sshd uses (``sshd -T``: lowercase names, one setting a line)."""
    done = host.ssh("sudo -n sshd -T")
    assert done.returncode == 0, done.stderr
    return dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)


def config_bytes() -> bytes:
    return docker("exec", NAME, "cat", CONFIG).stdout


def apply_with(host: Host, settings: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``siteops apply`` (baseline, then every site: none here) with ``settings`` as host vars."""
    extra = host.inventory / "host_vars" / "sandbox" / "ssh.yml"
    extra.parent.mkdir(parents=True, exist_ok=True)
    extra.write_text(settings, encoding="utf-8")
    started = time.monotonic()
    try:
        return host.siteops("apply", *args, check=False)
    finally:
        extra.unlink()
        print(f"apply with {settings.strip()!r}: {time.monotonic() - started:.1f}s")


def changed_tasks(stdout: str) -> set[str]:
    """The tasks and handlers reported changed in the log a successful run names in ``stdout``."""
    log = Path(stdout.rsplit("log ", 1)[1].strip())
    changed: set[str] = set()
    for block in re.split(r"\n(?:TASK|RUNNING HANDLER) \[", log.read_text(encoding="utf-8"))[1:]:
        if re.search(r"^changed: ", block, re.M):
            changed.add(block.split("]", 1)[0].split(" : ", 1)[-1])
    return changed


def test_sshd_takes_only_keys_and_modern_algorithms(host: Host) -> None:
    settings = sshd_settings(host)
    print({k: settings[k] for k in ("kexalgorithms", "ciphers", "macs")})
    assert settings["passwordauthentication"] == "no"
    assert settings["kbdinteractiveauthentication"] == "no"
    assert settings["permitemptypasswords"] == "no"
    assert settings["maxauthtries"] == "3"
    assert settings["permitrootlogin"] == "without-password"  # prohibit-password, as sshd -T says
    for forwarding in ("x11forwarding", "allowagentforwarding", "allowtcpforwarding"):
        assert settings[forwarding] == "no"
    kex = settings["kexalgorithms"].split(",")
    assert kex[0] == "mlkem768x25519-sha256"  # Debian 13: OpenSSH 10.0
    assert not [k for k in kex if k.startswith("diffie-hellman")]
    assert not [c for c in settings["ciphers"].split(",") if c.endswith("-cbc")]
    assert not [m for m in settings["macs"].split(",") if "sha1" in m or "md5" in m]
    # A client that offers only an old SHA-1 key exchange is turned away.
    old = ssh_with(host, "-o", "KexAlgorithms=diffie-hellman-group14-sha1")
    assert old.returncode == 255
    assert "no matching key exchange method found" in old.stderr


def test_a_password_is_refused_while_the_key_works(host: Host) -> None:
    docker("exec", NAME, "sh", "-c", "echo deploy:secret | chpasswd")
    assert docker("exec", NAME, "passwd", "-S", "deploy").stdout.split()[1] == b"P"
    done = ssh_with(
        host,
        "-o", "PubkeyAuthentication=no",
        "-o", "PreferredAuthentications=password,keyboard-interactive",
        "-o", "NumberOfPasswordPrompts=0",
    )  # fmt: skip
    print(done.stderr)
    assert done.returncode == 255
    # The methods sshd still offers: the key alone (a password-accepting sshd
    # would list "password" or "keyboard-interactive" here).
    assert "Permission denied (publickey)." in done.stderr
    assert ssh_with(host).returncode == 0


def test_a_setting_sshd_rejects_fails_the_run_and_keeps_the_previous_config(host: Host) -> None:
    before = config_bytes()
    done = apply_with(host, "host_baseline_ssh_max_auth_tries: -5\n")
    assert done.returncode == 2
    assert "MaxAuthTries integer value too small" in done.stderr  # sshd's own words
    assert "sshd was not reloaded" in done.stderr
    assert config_bytes() == before
    assert ssh_with(host).returncode == 0
    assert sshd_settings(host)["maxauthtries"] == "3"


def test_a_setting_that_locks_keys_out_is_rolled_back_after_the_login_proof(host: Host) -> None:
    # sshd accepts MaxAuthTries 0, and then refuses every key: the new login
    # made after the reload fails, and the run puts the previous file back.
    before = config_bytes()
    done = apply_with(host, "host_baseline_ssh_max_auth_tries: 0\n")
    assert done.returncode == 2
    assert f"a new SSH login as deploy@127.0.0.1 port {SSH_PORT}" in done.stderr
    assert "Too many authentication failures" in done.stderr
    assert "sshd reloaded it" in done.stderr
    assert config_bytes() == before
    assert ssh_with(host).returncode == 0
    assert sshd_settings(host)["maxauthtries"] == "3"


def test_a_dry_run_of_another_setting_shows_it_and_touches_nothing(host: Host) -> None:
    before = config_bytes()
    done = apply_with(host, "host_baseline_ssh_max_auth_tries: 4\n", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert re.search(r"[1-9]\d* would change", done.stdout)
    assert "Ensure the siteops sshd settings are written" in changed_tasks(done.stdout)
    assert config_bytes() == before
    assert sshd_settings(host)["maxauthtries"] == "3"


def test_the_next_run_changes_nothing(host: Host) -> None:
    for args in ((), ("--dry-run",)):
        started = time.monotonic()
        done = host.siteops("apply", *args)
        print(f"apply {' '.join(args)}: {time.monotonic() - started:.1f}s")
        assert re.search(r"\b0 (would )?change", done.stdout), done.stdout
        assert not changed_tasks(done.stdout) & SSH_TASKS
