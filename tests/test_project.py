"""The user's project folder (siteops init) and where siteops finds its collection."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from siteops import resources
from siteops.cli import main
from siteops.errors import SiteopsError
from siteops.inventory import inventory_hosts
from siteops.project import ansible_cfg, find_project, init_project
from tests.conftest import REPO

SETUP = (REPO / "setup.py").read_text(encoding="utf-8")


def test_the_collection_is_this_checkout_and_is_named_for_ansible() -> None:
    assert resources.find_collection() == REPO
    linked = resources.collections_path(REPO) / "ansible_collections" / "siteops" / "hosting"
    assert linked.resolve() == REPO.resolve()


def test_setup_packs_the_parts_siteops_looks_for() -> None:
    parts = re.search(r"^COLLECTION_PARTS = (\(.*\))$", SETUP, re.MULTILINE)
    assert parts is not None
    assert eval(parts.group(1)) == resources.COLLECTION_PARTS  # noqa: S307 (our own file)
    assert resources.find_testhosts(REPO) == REPO / "testhosts"


def test_the_galaxy_metadata_names_the_collection_siteops_looks_for() -> None:
    galaxy = yaml.safe_load((REPO / "galaxy.yml").read_text(encoding="utf-8"))
    assert f"{galaxy['namespace']}.{galaxy['name']}" == resources.COLLECTION
    # Python and tests stay out of the collection; the Ansible content is in it.
    for ignored in ("orchestrator", "tests", "molecule", "inventory", "testhosts"):
        assert ignored in galaxy["build_ignore"]
    for part in resources.COLLECTION_PARTS:
        assert part not in galaxy["build_ignore"]


def test_a_checkout_named_by_siteops_project_must_hold_the_playbooks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SITEOPS_PROJECT", str(tmp_path))
    with pytest.raises(resources.ProjectNotFound, match="no siteops playbooks in"):
        resources.find_collection()


def test_init_writes_a_project_that_siteops_and_ansible_both_read(tmp_path: Path) -> None:
    folder = tmp_path / "infra"
    written = init_project(folder, force=False, collection=REPO)

    assert {p.relative_to(folder).as_posix() for p in written} == {
        "ansible.cfg", ".gitignore", "README.md", "inventory/hosts.yml",
    }  # fmt: skip
    project = find_project(folder / "inventory" / "host_vars")  # from a subfolder too
    assert project is not None
    assert project.inventory == folder / "inventory"
    assert project.config == folder / "ansible.cfg"
    assert inventory_hosts(project.hosts_file) == []
    config = configparser.ConfigParser()
    config.read(folder / "ansible.cfg")
    assert config["defaults"]["inventory"] == "inventory/hosts.yml"
    ignored = (folder / ".gitignore").read_text(encoding="utf-8").split()
    assert ".ssh/" in ignored and "id_ed25519" in ignored and ".siteops.lock" in ignored


def test_the_config_names_the_collections_mitogen_strategy_only_when_it_is_installed() -> None:
    assert "strategy = siteops.hosting.mitogen_linear" in ansible_cfg(REPO, mitogen=True)
    assert "strategy" not in ansible_cfg(REPO, mitogen=False)
    for mitogen in (True, False):
        assert "callbacks_enabled = siteops.hosting.gc_freeze" in ansible_cfg(REPO, mitogen=mitogen)
    # From a checkout, plain ansible-playbook finds siteops.hosting through the link.
    assert f"collections_path = {REPO / '.cache' / 'siteops-collections'}:" in ansible_cfg(
        REPO, mitogen=False
    )


def test_init_refuses_a_folder_that_is_not_empty_and_changes_nothing(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine\n", encoding="utf-8")
    with pytest.raises(SiteopsError, match=r"not empty \(notes\.txt\).*--force"):
        init_project(tmp_path, force=False, collection=REPO)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_init_with_force_keeps_an_existing_inventory(tmp_path: Path) -> None:
    hosts = tmp_path / "inventory" / "hosts.yml"
    hosts.parent.mkdir()
    hosts.write_text("all:\n  hosts:\n    vps1: {ansible_host: 192.0.2.1}\n", encoding="utf-8")
    init_project(tmp_path, force=True, collection=REPO)
    assert inventory_hosts(hosts) == ["vps1"]
    assert (tmp_path / "ansible.cfg").is_file()


def test_a_folder_holding_only_git_counts_as_empty(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    init_project(tmp_path, force=False, collection=REPO)
    assert (tmp_path / "ansible.cfg").is_file()


def test_an_unrelated_ansible_cfg_is_not_a_project(tmp_path: Path) -> None:
    (tmp_path / "ansible.cfg").write_text("[defaults]\nforks = 5\n", encoding="utf-8")
    assert find_project(tmp_path) is None


def test_cli_init_then_list_finds_the_inventory_without_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SITEOPS_INVENTORY", raising=False)
    runner = CliRunner()
    done = runner.invoke(main, ["init", str(tmp_path / "p")])
    assert done.exit_code == 0, done.output
    assert "wrote" in done.output
    again = runner.invoke(main, ["init", str(tmp_path / "p")])
    assert again.exit_code == 2
    assert again.output.count("\n") == 1  # one line
    assert "not empty (.gitignore, README.md, ansible.cfg, inventory)" in again.output
    monkeypatch.chdir(tmp_path / "p")
    listed = runner.invoke(main, ["host", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert yaml.safe_load(listed.output) == {"hosts": []}
