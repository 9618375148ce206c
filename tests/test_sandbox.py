"""The sandbox's image choice and the inventory it writes (no container needed)."""

from __future__ import annotations

from pathlib import Path

import yaml

from siteops import sandbox
from siteops.operations import Target, host_ca_directory
from siteops.sandbox import Ports, Sandbox, image


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
