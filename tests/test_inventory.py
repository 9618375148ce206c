"""The shipped example inventory and the shipped JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from siteops.cli import main
from siteops.errors import SiteModelError
from siteops.inventory import inventory_hosts, load_host_sites, load_inventory_sites, sites_path
from siteops.schema import render, shipped
from tests.conftest import EXAMPLE_INVENTORY, REPO


def test_the_example_inventory_validates_with_two_sites() -> None:
    sites = load_host_sites(sites_path(EXAMPLE_INVENTORY, "vps1"))
    assert sorted(sites.sites) == ["docs-site", "shop"]
    assert sites.sites["shop"].components["api"].port == 4000


def test_the_shipped_schema_matches_the_model() -> None:
    assert shipped() == render(), (
        "run: siteops schema > orchestrator/siteops/schema/sites.schema.json"
    )


def test_the_schema_describes_the_sites_mapping() -> None:
    schema = json.loads(shipped())
    sites = schema["properties"]["siteops_sites"]
    assert sites["additionalProperties"] is False
    assert schema["additionalProperties"] is False
    assert set(schema["$defs"]["Site"]["required"]) == {"port_block", "domains", "components"}


def test_a_missing_file_is_an_empty_registry(tmp_path: Path) -> None:
    assert load_host_sites(tmp_path / "nope.yml").sites == {}


def test_broken_yaml_is_reported_with_the_file(tmp_path: Path) -> None:
    path = tmp_path / "sites.yml"
    path.write_text("siteops_sites: {a: [\n", encoding="utf-8")
    with pytest.raises(SiteModelError) as caught:
        load_host_sites(path)
    assert caught.value.source == str(path)
    assert "not valid YAML" in caught.value.problems[0]


def test_validate_command_lists_each_problem_and_exits_2(tmp_path: Path) -> None:
    host_dir = tmp_path / "host_vars" / "h1"
    host_dir.mkdir(parents=True)
    example = yaml.safe_load(sites_path(EXAMPLE_INVENTORY, "vps1").read_text(encoding="utf-8"))
    example["siteops_sites"]["Bad_Name"] = example["siteops_sites"].pop("docs-site")
    example["siteops_sites"]["shop"]["limits"]["memory"] = "lots"
    (host_dir / "sites.yml").write_text(yaml.safe_dump(example), encoding="utf-8")
    before = (host_dir / "sites.yml").read_bytes()

    result = CliRunner().invoke(main, ["--inventory", str(tmp_path), "--host", "h1", "validate"])

    assert result.exit_code == 2
    assert "siteops_sites.Bad_Name (name): site name 'Bad_Name' may use only" in result.output
    assert "siteops_sites.shop.limits.memory: memory 'lots' must be" in result.output
    assert (host_dir / "sites.yml").read_bytes() == before


def test_validate_command_accepts_the_example() -> None:
    result = CliRunner().invoke(
        main, ["--inventory", str(EXAMPLE_INVENTORY), "--host", "vps1", "validate"]
    )
    assert result.exit_code == 0, result.output
    assert "2 site(s), valid" in result.output


def test_schema_command_prints_the_shipped_schema() -> None:
    result = CliRunner().invoke(main, ["schema"])
    assert result.exit_code == 0
    assert result.output == shipped()
    assert (REPO / "orchestrator/siteops/schema/sites.schema.json").read_text("utf-8") == shipped()


def test_the_hosts_of_an_inventory_are_listed_from_every_group_once(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts.yml"
    hosts.write_text(
        "all:\n  hosts:\n    h1: {ansible_port: 2272}\n  children:\n    web:\n      hosts:\n"
        "        h2:\n        h1:\n      children:\n        db:\n          hosts: {h3: {}}\n"
        "other:\n  hosts: {h4: {}}\n",
        encoding="utf-8",
    )
    assert inventory_hosts(hosts) == ["h1", "h2", "h3", "h4"]
    assert inventory_hosts(tmp_path / "missing.yml") == []
    assert inventory_hosts(EXAMPLE_INVENTORY / "hosts.yml") == ["vps1"]


def test_a_broken_hosts_file_is_named(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts.yml"
    hosts.write_text("all: {hosts: [\n", encoding="utf-8")
    with pytest.raises(SiteModelError) as caught:
        inventory_hosts(hosts)
    assert caught.value.source == str(hosts)


def test_the_registries_of_every_host_are_loaded_by_host(tmp_path: Path) -> None:
    (tmp_path / "hosts.yml").write_text("all:\n  hosts: {vps1: {}, vps2: {}}\n", "utf-8")
    (tmp_path / "host_vars" / "vps1").mkdir(parents=True)
    sites_path(tmp_path, "vps1").write_bytes(sites_path(EXAMPLE_INVENTORY, "vps1").read_bytes())
    loaded = load_inventory_sites(tmp_path)
    assert list(loaded) == ["vps1", "vps2"]
    assert sorted(loaded["vps1"].sites) == ["docs-site", "shop"]
    assert loaded["vps2"].sites == {}
    with pytest.raises(SiteModelError, match=r"no hosts\.yml here"):
        load_inventory_sites(tmp_path / "nowhere")
