"""The command line: what it prints and which exit code it gives, without a host."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from siteops.cli import EXIT_BAD_INPUT, EXIT_LOCKED, main
from siteops.fileformat import SITES_FORMAT
from siteops.inventory import load_host_sites
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
    assert view["paths"]["nginx"] == f"/etc/nginx/sites-available/{name}.conf"
    # A static site has no spare slot; shop's frontend (3100) and api (4000) switch through
    # 3101 and 4001, its worker (not behind nginx) through none.
    code, out = run("show", "docs-site", "--json")
    assert json.loads(out)["spare_slots"] == {}
    code, out = run("show", "shop", "--json")
    assert json.loads(out)["spare_slots"] == {
        "shop-frontend.spare.service": 3101,
        "shop-api.spare.service": 4001,
    }
    code, out = run("show", "shop")
    assert "through the spare slots shop-frontend.spare.service (port 3101), shop-api" in out


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


@pytest.fixture
def two_hosts(tmp_path: Path) -> Path:
    """vps1 (the example's two sites, one of them archived) and vps2 (one site) in one inventory."""
    (tmp_path / "hosts.yml").write_text(
        "all:\n  hosts:\n    vps1: {}\n    vps2: {}\n    vps3: {}\n", encoding="utf-8"
    )
    example = (EXAMPLE_INVENTORY / "host_vars" / "vps1" / "sites.yml").read_text("utf-8")
    for host in ("vps1", "vps2"):
        (tmp_path / "host_vars" / host).mkdir(parents=True)
    (tmp_path / "host_vars" / "vps1" / "sites.yml").write_text(example, "utf-8")
    sites = load_host_sites(EXAMPLE_INVENTORY / "host_vars" / "vps1" / "sites.yml")
    data = sites.to_yaml_data()
    docs = data["siteops_sites"].pop("docs-site")
    data["siteops_archived_sites"]["old"] = {
        "site": docs, "archived_at": "2025-10-09T12:17:25Z", "backup": "/var/backups/x"
    }  # fmt: skip
    data["siteops_sites"]["shop"]["domains"] = {"primary": "shop.vps2.test", "aliases": []}
    (tmp_path / "host_vars" / "vps2" / "sites.yml").write_text(yaml.safe_dump(data), "utf-8")
    return tmp_path


def test_list_all_hosts_shows_every_host_with_a_host_column(two_hosts: Path) -> None:
    code, out = run("list", "--all-hosts", inventory=two_hosts, host="ignored")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["HOST", "SITE", "STATUS"]
    assert [line.split()[:2] for line in lines[1:4]] == [
        ["vps1", "shop"], ["vps1", "docs-site"], ["vps2", "shop"]
    ]  # fmt: skip
    assert "no sites yet on: vps3" in out
    assert "archived: vps2: old" in out


def test_list_all_hosts_json_holds_each_hosts_sites_and_archive(two_hosts: Path) -> None:
    code, out = run("list", "--all-hosts", "--json", inventory=two_hosts)
    assert code == 0, out
    data = json.loads(out)
    assert list(data) == ["hosts"]
    assert sorted(data["hosts"]) == ["vps1", "vps2", "vps3"]
    assert sorted(data["hosts"]["vps1"]["sites"]) == ["docs-site", "shop"]
    assert data["hosts"]["vps1"]["archived"] == {}
    assert list(data["hosts"]["vps2"]["sites"]) == ["shop"]
    assert list(data["hosts"]["vps2"]["archived"]) == ["old"]
    assert data["hosts"]["vps3"] == {"sites": {}, "archived": {}}
    # The same records as the one-host listing.
    _, one = run("list", "--json", inventory=two_hosts, host="vps2")
    assert json.loads(one) == {"host": "vps2", **data["hosts"]["vps2"]}


def test_list_all_hosts_without_hosts_yml_says_so(tmp_path: Path) -> None:
    code, out = run("list", "--all-hosts", inventory=tmp_path)
    assert code == EXIT_BAD_INPUT
    assert "no hosts.yml here" in out


def test_add_site_refuses_a_domain_of_another_host_naming_it(two_hosts: Path) -> None:
    before = {p: p.read_bytes() for p in two_hosts.rglob("*") if p.is_file()}
    code, out = run("add-site", "blog", "--domain", "shop.vps2.test", "--runtime", "static",
                    inventory=two_hosts, host="vps3")  # fmt: skip
    assert code == EXIT_BAD_INPUT
    assert "  - domains: 'shop.vps2.test' is already served by site 'shop' on host 'vps2'; " in out
    assert {p: p.read_bytes() for p in two_hosts.rglob("*") if p.is_file()} == before


FIXTURES = Path(__file__).resolve().parent / "fixtures"


def sites_file_of_format(inventory: Path, version: int) -> Path:
    """The fixture of ``version`` as vps1's sites.yml; at 99, the current one marked format 99."""
    path = inventory / "host_vars" / "vps1" / "sites.yml"
    path.parent.mkdir(parents=True)
    text = (FIXTURES / f"sites-format-{min(version, SITES_FORMAT)}.yml").read_text(encoding="utf-8")
    if version > SITES_FORMAT:
        text = text.replace(
            f"\nsiteops_sites_format: {SITES_FORMAT}\n", f"\nsiteops_sites_format: {version}\n"
        )
    path.write_text(text, encoding="utf-8")
    return path


def test_validate_reports_a_file_of_a_newer_siteops_and_exits_2(inventory: Path) -> None:
    path = sites_file_of_format(inventory, 99)
    before = path.read_bytes()

    code, out = run("validate", inventory=inventory)

    assert code == EXIT_BAD_INPUT
    assert out.splitlines() == [
        f"{path}: invalid site model",
        "  - siteops_sites_format: this file is format 99, written by a newer siteops; this "
        f"siteops reads formats up to {SITES_FORMAT}: "
        "upgrade siteops (pip install --upgrade siteops)",
    ]
    assert path.read_bytes() == before


def test_other_commands_refuse_a_file_of_a_newer_siteops(inventory: Path) -> None:
    path = sites_file_of_format(inventory, 99)
    code, out = run("list", inventory=inventory)
    assert code == EXIT_BAD_INPUT
    assert f"{path}: refused, nothing was changed" in out
    assert "siteops_sites_format: this file is format 99, written by a newer siteops" in out


def test_validate_accepts_a_file_from_before_the_format_version_and_leaves_it(
    inventory: Path,
) -> None:
    path = sites_file_of_format(inventory, 0)
    before = path.read_bytes()

    code, out = run("validate", inventory=inventory)

    assert code == 0, out
    assert "2 site(s), valid" in out
    assert path.read_bytes() == before


@pytest.fixture
def example_copy(tmp_path: Path) -> Path:
    shutil.copytree(EXAMPLE_INVENTORY, tmp_path / "inv")
    return tmp_path / "inv"


def test_set_refuses_bad_changes_naming_the_field_and_writes_nothing(example_copy: Path) -> None:
    sites = example_copy / "host_vars" / "vps1" / "sites.yml"
    before = sites.read_bytes()
    listing = sorted(p.relative_to(example_copy) for p in example_copy.rglob("*"))
    for args, message in [
        (["--add-domain", "docs.example.org"], "is already served by site 'docs-site'"),
        (["--no-database"], "database: site 'shop' has a database"),
        (["--runtime", "node"], "--runtime goes with --add-component NAME"),
        (["--add-job", "report", "--command", "x"], "jobs.report: give --schedule and --command"),
        (["--schedule", "daily"], "--schedule goes with --add-job NAME"),
        (["--add-component", "mailer"], "components.mailer.runtime: give --runtime"),
        (["--memory", "lots"], "limits.memory: memory 'lots' must be"),
        ([], "set: nothing to change"),
    ]:
        code, out = run("set", "shop", *args, inventory=example_copy)
        assert code == EXIT_BAD_INPUT, out
        assert message in out and "refused, nothing was changed" in out
    assert sites.read_bytes() == before
    assert sorted(p.relative_to(example_copy) for p in example_copy.rglob("*")) == listing


def test_ctrl_c_anywhere_ends_the_command_as_cancelled(monkeypatch: pytest.MonkeyPatch) -> None:
    # As Ctrl-C while the command waits for another operator's lock on the host.
    def interrupted(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("siteops.cli.load_host_sites", interrupted)
    result = CliRunner().invoke(main, ["-i", str(EXAMPLE_INVENTORY), "--host", "vps1", "list"])
    assert result.exit_code == 130, result.output
    assert "siteops: cancelled (Ctrl-C)" in result.output
    assert "Aborted!" not in result.output
