"""The command line: what it prints and which exit code it gives, without a host."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from siteops.cli import EXIT_BAD_INPUT, EXIT_LOCKED, main
from siteops.registry import Registry
from tests.conftest import EXAMPLE_INVENTORY


def run(*args: str, inventory: Path = EXAMPLE_INVENTORY, host: str = "vps1") -> tuple[int, str]:
    result = CliRunner().invoke(main, ["-i", str(inventory), "--host", host, *args])
    return result.exit_code, result.output


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    (tmp_path / "hosts.yml").write_text("all:\n  hosts:\n    vps1: {}\n", encoding="utf-8")
    return tmp_path


def test_list_shows_each_site_with_its_block_and_domains() -> None:
    code, out = run("list")
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split()[:4] == ["SITE", "STATUS", "BLOCK", "PORTS"]
    assert len(rows) == 2
    assert all(len(row.split()) >= 8 for row in rows)


def test_list_and_show_json_parse_and_hold_the_records() -> None:
    code, out = run("list", "--json")
    data = json.loads(out)
    assert code == 0 and data["host"] == "vps1"
    name = next(iter(data["sites"]))
    code, out = run("show", name, "--json")
    view = json.loads(out)
    assert code == 0
    assert view["record"] == data["sites"][name]
    assert view["paths"]["env"] == f"/srv/sites/{name}/shared/.env"


def test_show_of_an_unknown_site_names_it() -> None:
    code, out = run("show", "ghost")
    assert code == EXIT_BAD_INPUT
    assert "'ghost' is not in the registry of vps1" in out


def test_add_site_with_a_bad_name_changes_nothing(inventory: Path) -> None:
    code, out = run("add-site", "My_App", "--domain", "ok.test", inventory=inventory)
    assert code == EXIT_BAD_INPUT
    assert "refused, nothing was changed" in out
    assert "name: site name 'My_App'" in out
    assert sorted(p.name for p in inventory.iterdir()) == ["hosts.yml"]


def test_add_site_without_a_domain_is_a_usage_error(inventory: Path) -> None:
    code, out = run("add-site", "shop", inventory=inventory)
    assert code == 2
    assert "--domain" in out


def test_a_locked_registry_names_its_holder(inventory: Path) -> None:
    sites = inventory / "host_vars" / "vps1" / "sites.yml"
    with Registry(sites).locked(purpose="add-site other"):
        code, out = run(
            "--lock-timeout", "0.2", "add-site", "shop", "--domain", "s.test", inventory=inventory
        )  # fmt: skip
    assert code == EXIT_LOCKED
    assert "'add-site other'" in out


def test_remove_site_asks_first_and_a_no_changes_nothing(inventory: Path) -> None:
    result = CliRunner().invoke(
        main, ["-i", str(inventory), "--host", "vps1", "remove-site", "shop"], input="n\n"
    )
    assert result.exit_code == 1  # aborted
    assert "Remove site 'shop' from vps1?" in result.output
    assert sorted(p.name for p in inventory.iterdir()) == ["hosts.yml"]


def test_registry_writes_the_markdown_without_a_host(tmp_path: Path) -> None:
    inventory = tmp_path / "inv"
    (inventory / "host_vars" / "vps1").mkdir(parents=True)
    source = EXAMPLE_INVENTORY / "host_vars" / "vps1" / "sites.yml"
    (inventory / "host_vars" / "vps1" / "sites.yml").write_bytes(source.read_bytes())
    code, _ = run("registry", inventory=inventory)
    assert code == 0
    first = (inventory / "registry" / "vps1.md").read_bytes()
    run("registry", inventory=inventory)
    assert (inventory / "registry" / "vps1.md").read_bytes() == first
    assert first.startswith(b"# Active Sites Registry: vps1")
