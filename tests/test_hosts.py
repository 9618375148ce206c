"""host add's checks, the inventory entry it writes, and host list (no SSH needed)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from siteops import hosts
from siteops import operations as ops
from siteops.errors import HostRefused
from siteops.inventory import inventory_hosts
from siteops.registry import Registry
from siteops.remote import _inventory_host_vars, host_vars, plain_host_vars, ssh_argv

GOOD = {
    "uid": "1000", "sudo": "yes", "os_id": "debian", "os_version": "13",
    "os_name": "Debian GNU/Linux 13 (trixie)", "systemd": "yes", "python3": "yes",
}  # fmt: skip


def test_a_debian_13_host_with_sudo_systemd_and_python_can_be_managed() -> None:
    assert hosts.probe_problems(GOOD, "admin") == []
    assert hosts.probe_problems({**GOOD, "sudo": "root", "os_version": "12"}, "root") == []


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"sudo": "no"}, "admin is not root and cannot use sudo without a password"),
        ({"os_version": "11", "os_name": "Debian GNU/Linux 11 (bullseye)"},
         "runs Debian GNU/Linux 11 (bullseye); siteops supports Debian 12 and 13"),
        ({"os_id": "ubuntu", "os_name": "Ubuntu 24.04"}, "runs Ubuntu 24.04"),
        ({"systemd": "no"}, "systemd is not running"),
        ({"python3": "no"}, "python3 is missing"),
    ],
)  # fmt: skip
def test_what_a_host_lacks_is_named(change: dict[str, str], named: str) -> None:
    problems = hosts.probe_problems({**GOOD, **change}, "admin")
    assert len(problems) == 1
    assert named in problems[0]


def test_the_probe_output_is_read_as_key_value_lines() -> None:
    text = "uid=0\nsudo=root\nnoise without equals\nos_name=Debian GNU/Linux 12 (bookworm)\n"
    assert hosts.parse_probe(text) == {
        "uid": "0", "sudo": "root", "os_name": "Debian GNU/Linux 12 (bookworm)",
    }  # fmt: skip


def test_the_probe_itself_runs_here_and_reports_every_key() -> None:
    done = subprocess.run(["sh", "-s"], input=hosts.PROBE, capture_output=True, text=True,
                          check=True)  # fmt: skip
    facts = hosts.parse_probe(done.stdout)
    for key in ("uid", "sudo", "os_id", "os_version", "systemd", "python3", "memory_kib",
                "disk_kib", "disk_free_kib", "cpus"):  # fmt: skip
        assert facts.get(key), key
    view = hosts.live_view(facts)
    assert view["memory_gib"] and view["memory_gib"] > 0


@pytest.mark.parametrize(
    ("spec", "port", "named"),
    [
        ("203.0.113.10", 22, "is not USER@ADDRESS"),
        ("Admin@host", 22, "'Admin' is not a valid user name"),
        ("admin@bad host", 22, "is not a host name or IP address"),
        ("admin@host", 70000, "--port: 70000"),
    ],
)
def test_bad_logins_are_refused_naming_the_option(spec: str, port: int, named: str) -> None:
    with pytest.raises(HostRefused, match=named):
        hosts.parse_login(spec, port, None)


def test_a_missing_key_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(HostRefused, match=r"--key: .* is not a file"):
        hosts.parse_login("admin@192.0.2.1", 22, tmp_path / "nope")


def test_connection_failures_read_as_one_line_reasons() -> None:
    login = hosts.Login("admin", "127.0.0.1", 2299)
    refused = "ssh: connect to host 127.0.0.1 port 2299: Connection refused\n"
    assert hosts.connection_problem(login, 255, refused) == (
        "nothing answers SSH at 127.0.0.1:2299 (connection refused)"
    )
    denied = "admin@127.0.0.1: Permission denied (publickey).\n"
    assert "refused admin with your SSH keys" in hosts.connection_problem(login, 255, denied)


def test_taken_and_invalid_host_names_are_refused(tmp_path: Path) -> None:
    hosts_file = tmp_path / "hosts.yml"
    hosts_file.write_text("all:\n  hosts:\n    vps1: {ansible_host: 192.0.2.1}\n", "utf-8")
    with pytest.raises(HostRefused, match="'vps1' is already a host of"):
        hosts.check_name(hosts_file, "vps1")
    with pytest.raises(HostRefused, match="is not a host name"):
        hosts.check_name(hosts_file, "Bad_Name")
    hosts.check_name(hosts_file, "vps2")


def test_the_entry_keeps_paths_inside_the_inventory_relative_to_it(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory"
    key = inventory / ".ssh" / "id_ed25519"
    key.parent.mkdir(parents=True)
    key.write_text("k", "utf-8")
    entry = hosts.host_entry(hosts.Login("deploy", "127.0.0.1", 2222, key), inventory)
    assert entry["ansible_ssh_private_key_file"] == "{{ inventory_dir }}/.ssh/id_ed25519"
    assert entry["ansible_port"] == 2222
    assert entry["ansible_become"] is True
    assert "UserKnownHostsFile={{ inventory_dir }}/known_hosts" in entry["ansible_ssh_common_args"]
    root = hosts.host_entry(hosts.Login("root", "192.0.2.1"), inventory)
    assert "ansible_become" not in root and "ansible_port" not in root


def test_written_hosts_are_read_back_with_their_inventory_paths(tmp_path: Path) -> None:
    key = tmp_path / ".ssh" / "id_ed25519"
    key.parent.mkdir()
    key.write_text("k", "utf-8")
    entry = hosts.host_entry(hosts.Login("deploy", "127.0.0.1", 2222, key), tmp_path)
    line = "[127.0.0.1]:2222 ssh-ed25519 AAAAkey"
    hosts.write_host(tmp_path, "box", entry, line + "\n")
    hosts.write_host(tmp_path, "box2", entry, line + "\n")  # the same key is kept once
    assert (tmp_path / "known_hosts").read_text("utf-8") == line + "\n"
    assert inventory_hosts(tmp_path / "hosts.yml") == ["box", "box2"]
    variables = host_vars(tmp_path / "hosts.yml", "box")
    argv = ssh_argv(variables, "box", ["true"])
    assert str(key.resolve()) in argv
    assert f"UserKnownHostsFile={tmp_path.resolve()}/known_hosts" in argv


def test_host_list_counts_sites_and_free_blocks(tmp_path: Path) -> None:
    (tmp_path / "hosts.yml").write_text(
        yaml.safe_dump({"all": {"hosts": {"vps1": {"ansible_host": "192.0.2.1",
                                                    "ansible_user": "admin"}}}}), "utf-8"
    )  # fmt: skip
    Registry(tmp_path / "host_vars" / "vps1" / "sites.yml")  # no sites yet
    [row] = ops.host_summaries(tmp_path)
    assert row == {"host": "vps1", "ssh": "admin@192.0.2.1:22", "sandbox": False, "sites": [],
                   "free_blocks": 90}  # fmt: skip


def test_a_plain_inventory_is_read_without_ansible_inventory_and_says_the_same(
    tmp_path: Path,
) -> None:
    key = tmp_path / ".ssh" / "id_ed25519"
    key.parent.mkdir()
    key.write_text("k", "utf-8")
    entry = hosts.host_entry(hosts.Login("deploy", "127.0.0.1", 2222, key), tmp_path)
    hosts.write_host(tmp_path, "box", entry, "[127.0.0.1]:2222 ssh-ed25519 AAAAkey\n")
    sites = tmp_path / "host_vars" / "box" / "sites.yml"
    sites.parent.mkdir(parents=True)
    sites.write_text("siteops_sites: {}\n", "utf-8")
    hosts_file = tmp_path / "hosts.yml"
    plain = plain_host_vars(hosts_file, "box")
    assert plain == entry
    full = _inventory_host_vars(hosts_file, "box")
    assert {k: v for k, v in full.items() if not k.startswith("siteops_sites")} == plain

    # Anything else that may set a variable: ansible-inventory decides.
    extra = tmp_path / "host_vars" / "box" / "ssh.yml"
    extra.write_text("ansible_port: 2200\n", "utf-8")
    assert plain_host_vars(hosts_file, "box") is None
    assert host_vars(hosts_file, "box")["ansible_port"] == 2200
    extra.unlink()
    (tmp_path / "group_vars").mkdir()
    assert plain_host_vars(hosts_file, "box") is None
    (tmp_path / "group_vars").rmdir()
    data = yaml.safe_load(hosts_file.read_text("utf-8"))
    data["all"]["vars"] = {"ansible_user": "admin"}
    hosts_file.write_text(yaml.safe_dump(data), "utf-8")
    assert plain_host_vars(hosts_file, "box") is None
    assert host_vars(hosts_file, "box")["ansible_user"] == "deploy"  # the host's own wins
    assert plain_host_vars(hosts_file, "nobody") is None
