"""End to end: two sandbox hosts in ONE inventory, each with its own registry.

Hosts h1 and h2 (containers siteops-e2e-h1/-h2, baked images: this module
does not test installation) share an inventory, its key and known_hosts.
Each gets a static site through ``--host``; a domain of h1 is refused on h2;
``list --all-hosts`` shows both; taking h1 down leaves h2 in the inventory and
working. The tests build on each other in file order.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from siteops.inventory import inventory_hosts, load_host_sites
from tests.e2e.conftest import Host, sandbox_host

SITES = {"h1": ("shop", "shop.test"), "h2": ("blog", "blog.test")}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("two-hosts")


@pytest.fixture(scope="module")
def h1(root: Path) -> Iterator[Host]:
    yield from sandbox_host(root, "siteops-e2e-h1", 2272, 8130, 8493, "--baked", host="h1")


@pytest.fixture(scope="module")
def h2(root: Path, h1: Host) -> Iterator[Host]:  # after h1: a second host of its inventory
    yield from sandbox_host(root, "siteops-e2e-h2", 2282, 8140, 8503, "--baked", host="h2")


def files(host: Host) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in host.inventory.rglob("*") if p.is_file()}


def test_both_sandboxes_are_hosts_of_one_inventory(h1: Host, h2: Host) -> None:
    assert h1.inventory == h2.inventory
    assert inventory_hosts(h1.inventory / "hosts.yml") == ["h1", "h2"]
    known = (h1.inventory / ".ssh" / "known_hosts").read_text("utf-8").splitlines()
    assert [(line.split()[0], line.split()[-1]) for line in known] == [
        ("[127.0.0.1]:2272", "siteops-sandbox:h1"),
        ("[127.0.0.1]:2282", "siteops-sandbox:h2"),
    ]
    for host, ports in [(h1, (2272, 8130, 8493)), (h2, (2282, 8140, 8503))]:
        # Strict host-key checking against the shared known_hosts: each line is right.
        assert host.ssh("hostname; id -un").stdout.split()[-1] == "deploy"
        status = json.loads(host.siteops("sandbox", "status", "--json").stdout)
        assert status["container"] == "running"
        assert (status["ssh"], status["http"], status["https"]) == ports


def test_a_static_site_on_each_host_answers_through_its_own_nginx(h1: Host, h2: Host) -> None:
    for host in (h1, h2):
        site, domain = SITES[host.host]
        done = host.siteops("add-site", site, "--domain", domain, "--runtime", "static", "--no-db")
        assert f"{site}: added on {host.host}, port block 0" in done.stdout
    for host, other in [(h1, h2), (h2, h1)]:
        site, domain = SITES[host.host]
        code, body = host.get(domain)
        assert code == 200
        assert f"Site {site} has not been deployed yet" in body
        # The other host's site is not served here.
        code, body = host.get(SITES[other.host][1])
        assert code == 0 or "deployed" not in body


def test_each_registry_holds_only_its_own_site_from_block_0(h1: Host, h2: Host) -> None:
    for host in (h1, h2):
        sites = load_host_sites(host.sites_file)
        site = SITES[host.host][0]
        assert list(sites.sites) == [site]
        assert sites.sites[site].port_block == 0
        assert sites.sites[site].status == "active"
        markdown = (host.inventory / "registry" / f"{host.host}.md").read_text("utf-8")
        assert f"### Site #1: {site}" in markdown


def test_a_domain_of_h1_is_refused_on_h2_and_nothing_changes(h1: Host, h2: Host) -> None:
    before = files(h2)
    done = h2.siteops("add-site", "shop2", "--domain", "shop2.test", "--domain", "shop.test",
                      "--runtime", "static", check=False)  # fmt: skip
    assert done.returncode == 2
    assert "'shop.test' is already served by site 'shop' on host 'h1'" in done.stderr
    assert files(h2) == before
    assert h2.ssh("id shop2").returncode != 0


def test_the_all_hosts_listing_shows_both(h1: Host, h2: Host) -> None:
    listed = json.loads(h2.siteops("list", "--all-hosts", "--json").stdout)
    assert {host: list(data["sites"]) for host, data in listed["hosts"].items()} == {
        "h1": ["shop"],
        "h2": ["blog"],
    }
    text = h1.siteops("list", "--all-hosts").stdout.splitlines()
    assert text[0].split()[:3] == ["HOST", "SITE", "STATUS"]
    assert [line.split()[:3] for line in text[1:]] == [
        ["h1", "shop", "active"],
        ["h2", "blog", "active"],
    ]


def test_a_block_where_another_process_listens_is_skipped_in_one_add_site(h1: Host) -> None:
    # A service outside siteops listens on the frontend port of block 1.
    squatter = h1.ssh("sudo systemd-run --unit siteops-e2e-squatter "
                      "python3 -m http.server 3110 --bind 127.0.0.1")  # fmt: skip
    assert squatter.returncode == 0, squatter.stderr
    try:
        for _ in range(50):
            if h1.ssh("ss -Hltn 'sport = :3110' | grep -q 3110").returncode == 0:
                break
            time.sleep(0.2)
        done = h1.siteops("add-site", "squat", "--domain", "squat.test", "--runtime", "static",
                          "--no-db")  # fmt: skip
        assert "squat: added on h1, port block 2" in done.stdout
        assert load_host_sites(h1.sites_file).sites["squat"].status == "active"
        assert h1.get("squat.test")[0] == 200
        # The other service was left alone.
        assert h1.ssh("systemctl is-active siteops-e2e-squatter").stdout.strip() == "active"
    finally:
        h1.ssh("sudo systemctl stop siteops-e2e-squatter")


def test_down_of_h1_leaves_h2_in_the_inventory_and_working(h1: Host, h2: Host) -> None:
    h1.siteops("sandbox", "down")

    assert h1.siteops("sandbox", "status", check=False).returncode == 1
    assert inventory_hosts(h2.inventory / "hosts.yml") == ["h2"]
    assert not (h2.inventory / "host_vars" / "h1").exists()
    assert not (h2.inventory / "registry" / "h1.md").exists()
    known = (h2.inventory / ".ssh" / "known_hosts").read_text("utf-8").splitlines()
    assert [line.split()[-1] for line in known] == ["siteops-sandbox:h2"]
    assert list(json.loads(h2.siteops("list", "--json").stdout)["sites"]) == ["blog"]
    status = json.loads(h2.siteops("status", "--json").stdout)["sites"]
    assert status["blog"]["http"]["status"] == 200
    assert h2.get("blog.test")[0] == 200
    # The domain h1 served is free in the inventory again.
    done = h2.siteops("add-site", "shop", "--domain", "shop.test", "--runtime", "static",
                      "--no-db", "--dry-run")  # fmt: skip
    assert "would get port block 1" in done.stdout
