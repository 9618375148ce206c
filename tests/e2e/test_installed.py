"""siteops as a user installs it: the wheel in a fresh virtualenv, a project folder of their own.

Nothing here uses the checkout at run time: the wheel is built from it, then
installed into a new virtualenv outside it (no ``-e``, no ``SITEOPS_PROJECT``),
and every command runs in a folder made by ``siteops init``. A sandbox is
started from that install as a bare container and onboarded with ``siteops
host add`` as a real VPS would be; a site is added and deployed, and plain
``ansible-playbook siteops.hosting.site`` then finds nothing to change. The
test host starts from the baked image: installation itself is what
test_real_hosts.py tests.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

CONTAINER = "siteops-e2e-installed"
HOST = "box"
SSH_PORT, HTTP_PORT, HTTPS_PORT = 2312, 8170, 8533


class Installed:
    """The installed siteops, run in the project folder ``project``."""

    def __init__(self, venv: Path, project: Path, state: Path) -> None:
        self.venv = venv
        self.project = project
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("SITEOPS_", "ANSIBLE_", "VIRTUAL_ENV", "PYTHON"))}  # fmt: skip
        env["PATH"] = os.pathsep.join([str(venv / "bin"), "/usr/sbin", "/usr/bin", "/sbin", "/bin"])
        env["XDG_STATE_HOME"] = str(state)
        # A new user's home: no collection that Molecule or ansible-galaxy put in ~/.ansible.
        env["HOME"] = str(state / "home")
        (state / "home").mkdir(parents=True, exist_ok=True)
        env["SITEOPS_SANDBOX"] = CONTAINER
        self.env = env

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, env=self.env, cwd=self.project, check=False
        )
        print(
            f"$ {' '.join(argv)} -> {done.returncode}\n{done.stdout[-3000:]}{done.stderr[-2000:]}"
        )
        if check:
            assert done.returncode == 0, done.stderr
        return done

    def siteops(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(str(self.venv / "bin" / "siteops"), *args, check=check)

    @property
    def inventory(self) -> Path:
        return self.project / "inventory"

    def snapshot(self) -> dict[str, bytes]:
        """Every file of the project folder with its content (to prove nothing changed)."""
        return {str(p.relative_to(self.project)): p.read_bytes()
                for p in sorted(self.project.rglob("*")) if p.is_file()}  # fmt: skip


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    root = tmp_path_factory.mktemp("installed")
    wheels = root / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(REPO)],
        check=True,
    )
    [wheel] = wheels.glob("siteops-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
         "-c", str(REPO / "constraints.txt"), str(wheel)],
        check=True, cwd=root,
    )  # fmt: skip
    tool = Installed(venv, root / "project", root / "state")
    tool.project.mkdir()
    try:
        yield tool
    finally:
        tool.siteops("--host", HOST, "sandbox", "down", check=False)


def test_the_install_runs_outside_the_checkout(installed: Installed) -> None:
    done = installed.run(
        str(installed.venv / "bin" / "python"), "-c",
        "import siteops.resources as r; print(r.find_collection(), r.installed_collection())",
    )  # fmt: skip
    found, where = done.stdout.split()
    assert found == where
    assert not Path(found).is_relative_to(REPO)
    # Plain Ansible finds the same copy: the one the wheel put in the virtualenv.
    listed = installed.run(
        str(installed.venv / "bin" / "ansible-galaxy"), "collection", "list", "siteops.hosting"
    )
    assert f"# {Path(found).parents[1]}\n" in listed.stdout


def test_init_makes_the_project_and_refuses_a_second_time(installed: Installed) -> None:
    installed.siteops("init")
    assert (installed.project / "ansible.cfg").is_file()
    assert (installed.inventory / "hosts.yml").is_file()
    before = installed.snapshot()
    again = installed.siteops("init", check=False)
    assert again.returncode == 2
    assert len(again.stderr.strip().splitlines()) == 1
    assert "not empty" in again.stderr
    assert installed.snapshot() == before


def test_the_collection_builds_and_installs_with_ansible_galaxy(
    installed: Installed, tmp_path: Path
) -> None:
    galaxy = str(installed.venv / "bin" / "ansible-galaxy")
    installed.run(galaxy, "collection", "build", "--output-path", str(tmp_path), str(REPO))
    [built] = tmp_path.glob("siteops-hosting-*.tar.gz")
    # --force: the wheel already installed siteops.hosting where Ansible looks.
    installed.run(galaxy, "collection", "install", "--force", "-p", str(tmp_path / "c"), str(built))
    root = tmp_path / "c" / "ansible_collections" / "siteops" / "hosting"
    assert (root / "roles" / "nginx_site" / "tasks" / "main.yml").is_file()
    assert (root / "playbooks" / "site.yml").is_file()
    assert not (root / "orchestrator").exists()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def container(installed: Installed) -> Path:
    """The sandbox container, started bare of any inventory entry; its key's path."""
    installed.siteops("init", "--force")
    done = installed.siteops(
        "--host", HOST, "sandbox", "up", "--container-only", "--baked",
        "--ssh-port", str(SSH_PORT), "--http-port", str(HTTP_PORT),
        "--https-port", str(HTTPS_PORT),
    )  # fmt: skip
    assert f"siteops host add {HOST} --ssh deploy@127.0.0.1 --port {SSH_PORT}" in done.stdout
    assert yaml.safe_load((installed.inventory / "hosts.yml").read_text())["all"]["hosts"] == {}
    return installed.inventory / ".ssh" / "id_ed25519"


def test_host_add_refuses_what_cannot_be_managed_and_changes_nothing(
    installed: Installed, container: Path
) -> None:
    # A login user without sudo, with the sandbox key.
    setup = (
        "id -u plain >/dev/null 2>&1 || useradd --create-home --shell /bin/sh plain; "
        "install -d -m 0700 -o plain -g plain /home/plain/.ssh; "
        "install -m 0600 -o plain -g plain /home/deploy/.ssh/authorized_keys /home/plain/.ssh/"
    )
    installed.run("docker", "exec", CONTAINER, "sh", "-c", setup)
    before = installed.snapshot()
    cases = [
        (["--ssh", "plain@127.0.0.1", "--port", str(SSH_PORT), "--key", str(container)],
         "plain is not root and cannot use sudo without a password"),
        (["--ssh", "deploy@127.0.0.1", "--port", str(_free_port()), "--key", str(container)],
         "nothing answers SSH at 127.0.0.1:"),
    ]  # fmt: skip
    for args, named in cases:
        done = installed.siteops("host", "add", "other", *args, check=False)
        assert done.returncode == 2
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert named in done.stderr
        assert installed.snapshot() == before


def test_host_add_then_a_site_answers_and_ansible_playbook_finds_nothing_to_change(
    installed: Installed, container: Path, tmp_path: Path
) -> None:
    added = installed.siteops("host", "add", HOST, "--ssh", "deploy@127.0.0.1",
                              "--port", str(SSH_PORT), "--key", str(container))  # fmt: skip
    assert "Debian GNU/Linux" in added.stdout
    entry = yaml.safe_load((installed.inventory / "hosts.yml").read_text())["all"]["hosts"][HOST]
    assert entry["ansible_ssh_private_key_file"] == "{{ inventory_dir }}/.ssh/id_ed25519"
    assert (installed.inventory / "known_hosts").read_text().strip()

    before = installed.snapshot()
    taken = installed.siteops("host", "add", HOST, "--ssh", "deploy@127.0.0.1", check=False)
    assert taken.returncode == 2
    assert f"name: {HOST!r} is already a host of" in taken.stderr
    assert len(taken.stderr.strip().splitlines()) == 1
    assert installed.snapshot() == before

    app = tmp_path / "app"
    app.mkdir()
    (app / "index.html").write_text("<h1>from the installed siteops</h1>\n", encoding="utf-8")
    # No --inventory, no --host for the inventory: the project folder names it.
    installed.siteops("--host", HOST, "add-site", "hello", "--domain", "hello.test",
                      "--runtime", "static", "--no-db")  # fmt: skip
    installed.siteops("--host", HOST, "deploy", "hello", "--source", str(app))
    page = installed.run("curl", "-s", "-m", "10", "-H", "Host: hello.test",
                         f"http://127.0.0.1:{HTTP_PORT}/")  # fmt: skip
    assert "from the installed siteops" in page.stdout

    play = installed.run(str(installed.venv / "bin" / "ansible-playbook"), "siteops.hosting.site")
    recap = [line for line in play.stdout.splitlines() if line.startswith(f"{HOST} ")]
    assert recap and "changed=0" in recap[0] and "failed=0" in recap[0], play.stdout[-2000:]

    listed = yaml.safe_load(installed.siteops("host", "list", "--json").stdout)
    assert listed["hosts"][0]["sites"] == ["hello"]
    shown = yaml.safe_load(installed.siteops("host", "show", HOST, "--json").stdout)
    assert shown["release"].startswith("Debian GNU/Linux 13")
    assert shown["memory_gib"] > 0 and shown["free_blocks"] == 89
