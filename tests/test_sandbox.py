"""The sandbox's image choice and the inventory it writes (no container needed).

Several sandboxes may share an inventory: hosts.yml, known_hosts and down.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from siteops import sandbox
from siteops.cli import sandbox_container
from siteops.inventory import inventory_hosts, sites_path
from siteops.operations import host_ca_directory
from siteops.remote import host_vars
from siteops.sandbox import Ports, Sandbox, image
from siteops.target import Target
from tests.conftest import REPO


def test_a_new_sandbox_starts_bare_on_debian_13_unless_told_otherwise() -> None:
    assert sandbox.DEFAULT_DEBIAN == "13"
    assert image("13", baked=False) == "siteops-testhost-bare:trixie"
    assert image("12", baked=True) == "siteops-testhost:bookworm"
    args = sandbox._run_args("box", Ports(2222, 8080, 8443), image("12", baked=False))
    assert args[-2:] == ["siteops-testhost-bare:bookworm", "/lib/systemd/systemd"]
    assert "127.0.0.1:8443:443" in args  # published on loopback only


def test_the_inventory_gives_builds_the_proxy_and_certificates_the_test_ca(
    tmp_path: Path,
) -> None:
    box = Sandbox(tmp_path, tmp_path / "inventory", "box")
    box.inventory.mkdir()
    box._write_inventory(Ports(2300, 8300, 8400), "http://172.17.0.1:8888")
    variables = yaml.safe_load(box.hosts_file.read_text())["all"]["hosts"]["sandbox"]
    assert variables["ansible_port"] == 2300
    build = variables["site_release_build_environment"]
    assert build["https_proxy"] == "http://172.17.0.1:8888"
    assert build["NODE_EXTRA_CA_CERTS"] == build["PIP_CERT"] == sandbox.SANDBOX_CA_BUNDLE
    assert variables["letsencrypt_environment"] == {"REQUESTS_CA_BUNDLE": "/etc/pebble/ca.pem"}
    assert variables["siteops_sandbox_ca_file"] == str(box.ca_file.resolve())
    # add-site on this host orders from the sandbox's CA unless told otherwise.
    target = Target(box.inventory, "sandbox", tmp_path, tmp_path / "logs")
    assert host_ca_directory(target) == sandbox.PEBBLE_DIRECTORY


def test_a_host_without_a_default_ca_leaves_the_site_models_default(tmp_path: Path) -> None:
    (tmp_path / "hosts.yml").write_text("all:\n  hosts:\n    vps:\n      ansible_host: 192.0.2.1\n")
    assert host_ca_directory(Target(tmp_path, "vps", tmp_path, tmp_path / "logs")) is None


PROXY = "http://172.17.0.1:8888"


def sandbox_of(inventory: Path, host: str) -> Sandbox:
    return Sandbox(REPO / "testhosts", inventory, sandbox_container(host), host)


def up(inventory: Path, host: str, ssh: int, key: str = "AAAAkey") -> Sandbox:
    """What ``up`` writes into the inventory once the container answers."""
    made = sandbox_of(inventory, host)
    made.known_hosts.parent.mkdir(parents=True, exist_ok=True)
    made._write_known_hosts(f"[127.0.0.1]:{ssh} ssh-ed25519 {key}{host}")
    made._write_inventory(Ports(ssh, ssh + 6000, ssh + 7000), PROXY)
    made.ca_file.parent.mkdir(exist_ok=True)
    made.ca_file.write_text("PEM\n", "utf-8")  # what up saves of the sandbox's test CA
    return made


def said() -> tuple[list[str], Callable[[str], None]]:
    lines: list[str] = []
    return lines, lines.append


@pytest.fixture(autouse=True)
def no_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Sandbox, "engine_answers", lambda self: False)


def test_each_host_gets_its_own_default_container() -> None:
    assert sandbox_container("sandbox") == "siteops-sandbox"
    assert sandbox_container("h1") == "siteops-sandbox-h1"


def test_a_second_sandbox_is_added_to_hosts_yml_and_the_first_stays(tmp_path: Path) -> None:
    up(tmp_path, "h1", 2272)
    second = up(tmp_path, "h2", 2282)

    assert inventory_hosts(second.hosts_file) == ["h1", "h2"]
    hosts = yaml.safe_load(second.hosts_file.read_text("utf-8"))["all"]["hosts"]
    assert (hosts["h1"]["ansible_port"], hosts["h2"]["ansible_port"]) == (2272, 2282)
    assert (
        hosts["h1"]["ansible_ssh_private_key_file"] == hosts["h2"]["ansible_ssh_private_key_file"]
    )
    # Ansible reads both hosts from the file.
    assert host_vars(second.hosts_file, "h2")["siteops_sandbox_http_port"] == 8282

    up(tmp_path, "h1", 2273)  # up again on another port: updated in place
    hosts = yaml.safe_load(second.hosts_file.read_text("utf-8"))["all"]["hosts"]
    assert list(hosts) == ["h1", "h2"]
    assert (hosts["h1"]["ansible_port"], hosts["h2"]["ansible_port"]) == (2273, 2282)


def test_hosts_and_groups_written_by_hand_are_kept(tmp_path: Path) -> None:
    (tmp_path / "hosts.yml").write_text(
        "all:\n  vars: {ansible_user: ops}\n  hosts:\n    vps1:\n  children:\n"
        "    web: {hosts: {vps2: {}}}\n",
        encoding="utf-8",
    )
    sandbox = up(tmp_path, "h1", 2272)
    data = yaml.safe_load(sandbox.hosts_file.read_text("utf-8"))
    assert data["all"]["vars"] == {"ansible_user": "ops"}
    assert inventory_hosts(sandbox.hosts_file) == ["vps1", "h1", "vps2"]


def test_known_hosts_holds_one_line_per_sandbox(tmp_path: Path) -> None:
    first = up(tmp_path, "h1", 2272)
    up(tmp_path, "h2", 2282)
    lines = first.known_hosts.read_text("utf-8").splitlines()
    assert lines == [
        "[127.0.0.1]:2272 ssh-ed25519 AAAAkeyh1 siteops-sandbox:h1",
        "[127.0.0.1]:2282 ssh-ed25519 AAAAkeyh2 siteops-sandbox:h2",
    ]

    up(tmp_path, "h1", 2283, key="NEW")  # h1 again, new key and port: only its line changes
    assert first.known_hosts.read_text("utf-8").splitlines() == [
        "[127.0.0.1]:2282 ssh-ed25519 AAAAkeyh2 siteops-sandbox:h2",
        "[127.0.0.1]:2283 ssh-ed25519 NEWh1 siteops-sandbox:h1",
    ]
    up(tmp_path, "h3", 2282)  # a new sandbox on h2's old port replaces that stale line
    assert [line.split()[-1] for line in first.known_hosts.read_text("utf-8").splitlines()] == [
        "siteops-sandbox:h1",
        "siteops-sandbox:h3",
    ]


def test_down_takes_out_only_its_own_host_and_the_last_one_the_inventory(tmp_path: Path) -> None:
    first = up(tmp_path, "h1", 2272)
    second = up(tmp_path, "h2", 2282)
    for host in ("h1", "h2"):
        sites_path(tmp_path, host).parent.mkdir(parents=True)
        sites_path(tmp_path, host).write_text("siteops_sites: {}\n", "utf-8")
        (tmp_path / "registry").mkdir(exist_ok=True)
        (tmp_path / "registry" / f"{host}.md").write_text("#\n", "utf-8")
    lines, say = said()

    first.down(say)

    assert inventory_hosts(second.hosts_file) == ["h2"]
    assert not sites_path(tmp_path, "h1").parent.exists()
    assert not (tmp_path / "registry" / "h1.md").exists()
    assert not first.ca_file.exists()
    assert second.ca_file.is_file()
    assert sites_path(tmp_path, "h2").is_file()
    assert (tmp_path / "registry" / "h2.md").is_file()
    assert second.key.parent.is_dir()
    assert [line.split()[-1] for line in second.known_hosts.read_text("utf-8").splitlines()] == [
        "siteops-sandbox:h2"
    ]
    assert lines[-1] == f"removed h1 from {second.hosts_file}; other hosts kept: h2"

    first.down(say)  # again: nothing more to do
    assert inventory_hosts(second.hosts_file) == ["h2"]

    second.down(say)
    assert not tmp_path.exists()


def test_down_leaves_a_host_that_is_not_a_sandbox_alone(tmp_path: Path) -> None:
    (tmp_path / "hosts.yml").write_text("all:\n  hosts:\n    vps1: {ansible_host: x}\n", "utf-8")
    sites_path(tmp_path, "vps1").parent.mkdir(parents=True)
    sites_path(tmp_path, "vps1").write_text("siteops_sites: {}\n", "utf-8")
    lines, say = said()

    sandbox_of(tmp_path, "vps1").down(say)

    assert inventory_hosts(tmp_path / "hosts.yml") == ["vps1"]
    assert sites_path(tmp_path, "vps1").is_file()
    assert "is not a sandbox: left as it is" in lines[-1]
