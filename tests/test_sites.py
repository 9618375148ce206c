"""Building a new site record and adding it to a host's sites."""

from __future__ import annotations

from typing import Any

import pytest

from siteops.errors import SiteModelError
from siteops.inventory import load_host_sites, sites_path
from siteops.model import HostSites, Site
from siteops.sites import (
    SiteAnswers,
    add_site,
    inventory_domain_owners,
    new_site,
    revived_site,
    taken_blocks,
)
from tests.conftest import EXAMPLE_INVENTORY

STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"


def answers(**changes: Any) -> SiteAnswers:
    """The answers of a typical add-site, with ``changes`` applied."""
    base: dict[str, Any] = {
        "domains": ["blog.example.net", "www.blog.example.net"],
        "api": False,
        "database": True,
        "cache": False,
        "runtime": "node",
        "memory": None,
        "cpu": None,
        "tls_email": "ops@example.net",
        "ca_directory": None,
        "block": 2,
    }
    base.update(changes)
    return SiteAnswers(**base)


def example() -> HostSites:
    return load_host_sites(sites_path(EXAMPLE_INVENTORY, "vps1"))


def test_a_node_site_gets_the_first_frontend_port_of_its_block() -> None:
    site = new_site("blog", answers())
    frontend = site.components["frontend"]
    assert (frontend.runtime, frontend.port, frontend.command) == ("node", 3120, "node server.js")
    assert list(site.components) == ["frontend"]
    assert site.port_block == 2
    assert site.status == "pending"
    assert site.domains.primary == "blog.example.net"
    assert site.domains.aliases == ["www.blog.example.net"]


def test_nextjs_is_told_to_listen_on_loopback_and_its_own_port() -> None:
    site = new_site("blog", answers(runtime="nextjs", block=5))
    assert site.components["frontend"].command == (
        "node_modules/.bin/next start --hostname 127.0.0.1 --port 3150"
    )
    assert site.components["frontend"].port == 3150


def test_python_runs_app_py_from_the_sites_virtualenv() -> None:
    site = new_site("blog", answers(runtime="python"))
    assert site.components["frontend"].command == ".venv/bin/python app.py"


def test_a_command_given_replaces_the_runtimes_default() -> None:
    site = new_site("blog", answers(runtime="python", command=".venv/bin/gunicorn app:app"))
    assert site.components["frontend"].command == ".venv/bin/gunicorn app:app"


def test_a_static_frontend_has_no_port_and_no_command() -> None:
    frontend = new_site("blog", answers(runtime="static")).components["frontend"]
    assert (frontend.runtime, frontend.port, frontend.command) == ("static", None, None)


@pytest.mark.parametrize(
    ("runtime", "api_runtime", "api_command"),
    [
        ("node", "node", "node api.js"),
        ("nextjs", "node", "node api.js"),
        ("python", "python", ".venv/bin/python api.py"),
        ("static", "python", ".venv/bin/python api.py"),
    ],
)
def test_the_api_gets_the_first_api_port_and_a_runtime_matching_the_site(
    runtime: str, api_runtime: str, api_command: str
) -> None:
    api = new_site("blog", answers(runtime=runtime, api=True, block=7)).components["api"]
    assert (api.runtime, api.port, api.command) == (api_runtime, 4070, api_command)


def test_tls_is_on_exactly_when_an_email_is_given() -> None:
    with_tls = new_site("blog", answers(ca_directory=STAGING)).tls
    assert (with_tls.enabled, with_tls.email, str(with_tls.ca_directory)) == (
        True,
        "ops@example.net",
        STAGING,
    )
    without = new_site("blog", answers(tls_email=None)).tls
    assert (without.enabled, without.email) == (False, None)


def test_limits_and_data_services_are_taken_from_the_answers() -> None:
    site = new_site("blog", answers(memory="256M", cpu="30%", database=False, cache=True))
    assert (site.limits.memory, site.limits.cpu, site.limits.tasks) == ("256M", "30%", 256)
    assert (site.database.enabled, site.cache.enabled) == (False, True)
    defaults = new_site("blog", answers()).limits
    assert (defaults.memory, defaults.cpu) == ("512M", "50%")


def test_international_domains_are_stored_in_ascii_form() -> None:
    site = new_site("blog", answers(domains=["Bücher.example.net"]))
    assert site.domains.primary == "xn--bcher-kva.example.net"


INVALID_INPUT: list[tuple[str, dict[str, Any], str]] = [
    # (site name, changed answers, expected "field: rule" fragment)
    ("My_Blog", {}, "name: site name 'My_Blog' may use only lowercase"),
    ("ab", {}, "name: site name 'ab' must be 3-32 characters long"),
    ("blog-", {}, "name: site name 'blog-' may use only"),
    ("postgres", {}, "name: site name 'postgres' is reserved"),
    ("blog", {"runtime": "ruby"}, "runtime: runtime 'ruby' is not one of node, nextjs, python"),
    ("blog", {"runtime": "Node"}, "runtime: runtime 'Node' is not one of"),
    ("blog", {"memory": "lots"}, "limits.memory: memory 'lots' must be a whole number"),
    ("blog", {"memory": "512"}, "limits.memory: memory '512' must be a whole number with a unit"),
    ("blog", {"memory": "8M"}, "limits.memory: memory '8M' is below the minimum of 32M"),
    ("blog", {"cpu": "0.5"}, "limits.cpu: cpu '0.5' must be a percentage of one core"),
    ("blog", {"cpu": "0%"}, "limits.cpu: cpu '0%' must be a percentage"),
    ("blog", {"domains": []}, "domains: at least one domain is required"),
    ("blog", {"domains": ["*.example.net"]}, "domains.primary: domain '*.example.net': wildcard"),
    ("blog", {"domains": ["a.example.net", "10.0.0.1"]}, "domains.aliases.0: domain '10.0.0.1'"),
    ("blog", {"domains": ["a.example.net", "A.example.net"]}, "domains: domain 'a.example.net'"),
    ("blog", {"tls_email": "ops"}, "tls.email: String should match pattern"),
    ("blog", {"ca_directory": "not a url"}, "tls.ca_directory: Input should be a valid URL"),
    ("blog", {"tls_email": None, "ca_directory": STAGING}, "tls.ca_directory: a CA directory"),
    ("blog", {"runtime": "static", "command": "x"}, "components.frontend.command: a static"),
    ("blog", {"block": 90}, "port_block: block 90 is outside 0-89"),
    ("blog", {"block": -1}, "port_block: block -1 is outside 0-89"),
]


@pytest.mark.parametrize(("name", "changes", "problem"), INVALID_INPUT)
def test_invalid_input_is_refused_naming_field_and_rule(
    name: str, changes: dict[str, Any], problem: str
) -> None:
    with pytest.raises(SiteModelError) as caught:
        new_site(name, answers(**changes))
    assert any(problem in p for p in caught.value.problems), caught.value.problems


def test_name_and_runtime_problems_are_reported_together() -> None:
    with pytest.raises(SiteModelError) as caught:
        new_site("Bad_Name", answers(runtime="ruby"))
    assert caught.value.source == "new site 'Bad_Name'"
    assert [p.split(":")[0] for p in caught.value.problems] == ["name", "runtime"]


def test_add_site_appends_the_site_and_leaves_the_input_unchanged() -> None:
    before = example()
    after = add_site(before, "blog", answers())
    assert list(after.sites) == ["shop", "docs-site", "blog"]
    assert after.sites["blog"] == new_site("blog", answers())
    assert list(before.sites) == ["shop", "docs-site"]
    assert taken_blocks(after) == {0, 1, 2}


ADD_REFUSALS: list[tuple[str, dict[str, Any], str]] = [
    ("shop", {}, "name: site 'shop' already exists on this host"),
    (
        "blog",
        {"domains": ["blog.example.net", "WWW.Shop.Example.Com"]},
        "domains: 'WWW.Shop.Example.Com' is already served by site 'shop'",
    ),
    ("blog", {"domains": ["docs.example.org"]}, "already served by site 'docs-site'"),
    ("blog", {"block": 1}, "port_block: block 1 is held by site 'docs-site'"),
]


@pytest.mark.parametrize(("name", "changes", "problem"), ADD_REFUSALS)
def test_add_site_refuses_what_another_site_already_has(
    name: str, changes: dict[str, Any], problem: str
) -> None:
    with pytest.raises(SiteModelError) as caught:
        add_site(example(), name, answers(**changes))
    assert any(problem in p for p in caught.value.problems), caught.value.problems


def test_add_site_refuses_the_name_of_an_archived_site() -> None:
    data = example().to_yaml_data()
    data["siteops_archived_sites"] = {
        "blog": {
            "site": data["siteops_sites"].pop("docs-site"),
            "archived_at": "2025-10-09T12:17:25Z",
            "backup": "/var/backups/siteops/blog/final",
        }
    }
    with pytest.raises(SiteModelError) as caught:
        add_site(HostSites.model_validate(data), "blog", answers())
    assert caught.value.problems == [
        "name: 'blog' is the name of an archived site (archived 2025-10-09T12:17:25Z); "
        "`siteops forget-site blog` frees the name (its backups stay), or choose another name"
    ]


def test_archived_sites_do_not_hold_their_block_or_domains() -> None:
    data = example().to_yaml_data()
    docs = data["siteops_sites"].pop("docs-site")
    data["siteops_archived_sites"] = {
        "docs-site": {
            "site": docs,
            "archived_at": "2025-10-09T12:17:25Z",
            "backup": "/var/backups/siteops/docs-site/final",
        }
    }
    sites = HostSites.model_validate(data)
    after = add_site(sites, "docs", answers(domains=["docs.example.org"], block=1))
    assert after.sites["docs"].port_block == 1
    assert taken_blocks(after) == {0, 1}


def test_add_site_reports_every_clash_at_once() -> None:
    with pytest.raises(SiteModelError) as caught:
        add_site(example(), "shop", answers(domains=["shop.example.com"], block=0))
    fields = [p.split(":")[0] for p in caught.value.problems]
    assert fields == ["name", "domains", "port_block"]


def test_a_built_site_is_a_valid_model_record() -> None:
    site = new_site("blog", answers(api=True, runtime="python"))
    assert Site.model_validate(site.model_dump(mode="json")) == site


def test_the_domains_of_several_hosts_are_mapped_to_their_host_and_site() -> None:
    owners = inventory_domain_owners({"vps1": example(), "vps2": HostSites()})
    assert owners["shop.example.com"] == ("vps1", "shop")
    assert owners["www.shop.example.com"] == ("vps1", "shop")
    assert {host for host, _ in owners.values()} == {"vps1"}


def test_a_domain_served_on_another_host_is_refused_naming_domain_site_and_host() -> None:
    elsewhere = inventory_domain_owners({"vps1": example()})
    with pytest.raises(SiteModelError) as caught:
        add_site(HostSites(), "blog", answers(domains=["blog.example.net", "WWW.Shop.Example.Com"]),
                 elsewhere)  # fmt: skip
    assert caught.value.problems == [
        "domains: 'WWW.Shop.Example.Com' is already served by site 'shop' on host 'vps1'; a "
        "domain belongs to one site of the inventory (remove it there first, or leave it out)"
    ]


def test_a_clash_on_the_same_host_is_reported_once_without_a_host() -> None:
    sites = example()
    elsewhere = {"shop.example.com": ("vps2", "shop")}  # an inconsistent inventory
    with pytest.raises(SiteModelError) as caught:
        add_site(sites, "blog", answers(domains=["shop.example.com"]), elsewhere)
    (problem,) = caught.value.problems
    assert problem.startswith("domains: 'shop.example.com' is already served by site 'shop';")


def test_only_domains_are_shared_across_hosts_not_names_or_blocks() -> None:
    other = add_site(HostSites(), "shop", answers(domains=["shop.other.net"], block=0))
    after = add_site(other, "blog", answers(block=1), inventory_domain_owners({"vps1": example()}))
    assert list(after.sites) == ["shop", "blog"]
    assert taken_blocks(after) == {0, 1}


def archived_blog() -> HostSites:
    """The example host with site blog (block 2, an api) removed: its record archived."""
    data = add_site(example(), "blog", answers(api=True)).to_yaml_data()
    record = data["siteops_sites"].pop("blog")
    data["siteops_archived_sites"]["blog"] = {
        "site": record, "archived_at": "2026-11-28T10:00:00Z",
        "backup": "/var/backups/siteops/blog/20261128T095959Z-final"}  # fmt: skip
    return HostSites.model_validate(data)


def test_a_revived_site_moves_its_ports_to_its_new_block_and_is_pending_again() -> None:
    revived, dropped = revived_site(archived_blog(), "blog", 5)
    site = revived.sites["blog"]
    assert "blog" not in revived.archived and dropped == []
    assert site.port_block == 5 and site.status == "pending"
    assert {n: c.port for n, c in site.components.items()} == {"frontend": 3150, "api": 4050}
    assert site.domains.all() == ["blog.example.net", "www.blog.example.net"]


def test_a_revived_site_leaves_out_the_domains_another_site_serves_now() -> None:
    # Another host's site took the primary meanwhile: the alias becomes the primary.
    revived, dropped = revived_site(archived_blog(), "blog", 5,
                                    {"blog.example.net": ("vps2", "news")})  # fmt: skip
    assert dropped == ["blog.example.net"]
    assert revived.sites["blog"].domains.all() == ["www.blog.example.net"]
    # A site of this host took the alias.
    data = archived_blog().to_yaml_data()
    data["siteops_sites"]["shop"]["domains"]["aliases"].append("www.blog.example.net")
    revived, dropped = revived_site(HostSites.model_validate(data), "blog", 5)
    assert dropped == ["www.blog.example.net"]
    assert revived.sites["blog"].domains.all() == ["blog.example.net"]


def test_a_site_is_revived_only_from_the_archive_and_with_a_free_domain() -> None:
    with pytest.raises(SiteModelError, match="name: 'shop' is an active site, not a removed one"):
        revived_site(archived_blog(), "shop", 5)
    with pytest.raises(SiteModelError, match="name: 'nope' is not an archived site"):
        revived_site(archived_blog(), "nope", 5)
    taken = {"blog.example.net": ("vps2", "news"), "www.blog.example.net": ("vps2", "news")}
    with pytest.raises(SiteModelError, match="domains: every domain of 'blog'"):
        revived_site(archived_blog(), "blog", 5, taken)
