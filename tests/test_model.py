"""The site model accepts what the rules allow and names field and rule otherwise."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from siteops.errors import SiteModelError
from siteops.inventory import parse_host_sites
from siteops.model import HostSites, Site
from tests.conftest import VALID_SITE


def host(**sites: dict[str, Any]) -> dict[str, Any]:
    return {"siteops_sites": sites}


def problems_of(data: Any) -> list[str]:
    with pytest.raises(SiteModelError) as caught:
        parse_host_sites(data, "sites.yml")
    return caught.value.problems


@pytest.mark.parametrize("name", ["my-app", "api-service", "web-app-v2", "abc", "a" * 32, "a1b"])
def test_valid_site_names_are_accepted(name: str, site: dict[str, Any]) -> None:
    parsed = parse_host_sites(host(**{name: site}), "sites.yml")
    assert list(parsed.sites) == [name]


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("My_App", "only lowercase a-z, digits and single hyphens"),
        ("MYAPP", "only lowercase a-z, digits and single hyphens"),
        ("my_app", "only lowercase a-z, digits and single hyphens"),
        ("my--app", "only lowercase a-z, digits and single hyphens"),
        ("-app", "must start with a letter"),
        ("app-", "end with a letter or digit"),
        ("1app", "must start with a letter"),
        ("ab", "must be 3-32 characters long"),
        ("a" * 33, "must be 3-32 characters long"),
        ("my.app", "only lowercase a-z, digits and single hyphens"),
        ("root", "is reserved"),
        ("nginx", "is reserved"),
        ("postgres", "is reserved"),
        ("www-data", "is reserved"),
        ("systemd-foo", "is reserved"),
    ],
)
def test_invalid_site_names_are_refused_naming_the_rule(
    name: str, rule: str, site: dict[str, Any]
) -> None:
    problems = problems_of(host(**{name: site}))
    assert len(problems) == 1
    assert problems[0].startswith(f"siteops_sites.{name} (name): ")
    assert rule in problems[0]


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for key in parents:
        data = data.setdefault(key, {})
    if value is _DELETE:
        del data[last]
    else:
        data[last] = value


_DELETE = object()

SITE_RULES: list[tuple[str, Any, str, str]] = [
    # (path inside the site, new value, field named in the error, rule named in the error)
    ("colour", "blue", "colour", "unknown field"),
    ("domains.primary", "bad_name.test", "domains.primary", "not a valid host name"),
    ("domains.primary", "localhost", "domains.primary", "fully qualified name"),
    ("domains.primary", "*.example.test", "domains.primary", "wildcards"),
    ("domains.primary", "203.0.113.7", "domains.primary", "IP address"),
    ("domains.primary", "example.test.", "domains.primary", "must not end with a dot"),
    ("domains.primary", "-x.example.test", "domains.primary", "not a valid host name"),
    ("domains.primary", "a" * 64 + ".test", "domains.primary", "not a valid host name"),
    ("domains.aliases", ["app.example.test"], "domains", "listed twice"),
    ("domains.extra", [], "domains.extra", "unknown field"),
    ("port_block", 90, "port_block", "less than or equal to 89"),
    ("port_block", -1, "port_block", "greater than or equal to 0"),
    ("port_block", _DELETE, "port_block", "required field is missing"),
    ("components.frontend.port", 3130, "", "outside the site's block 2: it must lie in 3120-3129"),
    ("components.api.port", 3121, "", "it must lie in 4020-4029"),
    (
        "components.worker",
        {"runtime": "python", "command": "w", "port": 4021},
        "",
        "it must lie in 5020-5029",
    ),
    ("components.api.port", _DELETE, "", "component 'api' needs a port"),
    ("components.frontend", _DELETE, "components", "must include 'frontend'"),
    (
        "components.Front_End",
        {"runtime": "static"},
        "components.Front_End (name)",
        "component name",
    ),
    ("components.api.command", _DELETE, "components.api", "a python component needs a command"),
    ("components.api.runtime", "ruby", "components.api.runtime", "'node', 'nextjs', 'python'"),
    (
        "components.frontend",
        {"runtime": "static", "port": 3120},
        "components.frontend",
        "a static component has no port",
    ),
    (
        "components.frontend",
        {"runtime": "static", "command": "x"},
        "components.frontend",
        "a static component has no command",
    ),
    ("components.frontend.user", "root", "components.frontend.user", "unknown field"),
    ("limits.memory", "512", "limits.memory", "with a unit K, M, G or T"),
    ("limits.memory", "16M", "limits.memory", "below the minimum of 32M"),
    ("limits.cpu", "0.5", "limits.cpu", "percentage of one core"),
    ("limits.tasks", 5, "limits.tasks", "greater than or equal to 16"),
    ("database.connection_limit", 0, "database.connection_limit", "greater than or equal to 1"),
    ("database.enabled", "maybe", "database.enabled", "valid boolean"),
    ("cache.enabled", "perhaps", "cache.enabled", "valid boolean"),
    ("tls.email", _DELETE, "tls", "email is required when tls is enabled"),
    ("tls.email", "not-an-address", "tls.email", "should match pattern"),
    ("tls.ca_directory", "not a url", "tls.ca_directory", "valid URL"),
    ("status", "running", "status", "'pending', 'active' or 'failed'"),
]


@pytest.mark.parametrize(("path", "value", "field", "rule"), SITE_RULES)
def test_each_site_rule_is_enforced_with_field_and_rule(
    path: str, value: Any, field: str, rule: str, site: dict[str, Any]
) -> None:
    _set(site, path, value)
    problems = problems_of(host(app=site))
    where = "siteops_sites.app" + (f".{field}" if field else "")
    assert any(p.startswith(f"{where}: ") and rule in p for p in problems), problems


def test_two_sites_may_not_share_a_port_block(site: dict[str, Any]) -> None:
    other = copy.deepcopy(site)
    other["domains"] = {"primary": "other.example.test"}
    problems = problems_of(host(app=site, other=other))
    assert problems == [
        "siteops_sites: port block 2 is given to both 'app' and 'other'; "
        "no two sites may share a block"
    ]


def test_two_sites_may_not_share_a_domain(site: dict[str, Any]) -> None:
    other = copy.deepcopy(site)
    other["port_block"] = 3
    other["components"] = {"frontend": {"runtime": "static"}}
    other["domains"] = {"primary": "other.example.test", "aliases": ["WWW.App.Example.Test"]}
    problems = problems_of(host(app=site, other=other))
    assert problems == [
        "siteops_sites: domain 'www.app.example.test' is claimed by both 'app' and 'other'; "
        "a domain belongs to one site"
    ]


def test_international_domains_are_stored_in_ascii_form(site: dict[str, Any]) -> None:
    site["domains"] = {"primary": "Bücher.example.test"}
    parsed = parse_host_sites(host(app=site), "sites.yml")
    assert parsed.sites["app"].domains.primary == "xn--bcher-kva.example.test"


def test_unknown_top_level_keys_are_refused() -> None:
    assert problems_of({"siteops_sites": {}, "sites": {}}) == [
        "sites: unknown field (not part of the site model; check its spelling)"
    ]


def test_an_empty_file_is_an_empty_registry() -> None:
    assert parse_host_sites(None, "sites.yml").sites == {}


def test_defaults_match_the_documented_role_defaults() -> None:
    minimal = Site.model_validate(
        {
            "port_block": 0,
            "domains": {"primary": "a.example.test"},
            "components": {"frontend": {"runtime": "static"}},
            "tls": {"enabled": False},
        }
    )
    assert minimal.status == "pending"
    assert (minimal.limits.memory, minimal.limits.cpu, minimal.limits.tasks) == ("512M", "50%", 256)
    assert minimal.database.enabled is True
    assert minimal.database.connection_limit == 20
    assert minimal.cache.enabled is False
    assert str(minimal.tls.ca_directory) == "https://acme-v02.api.letsencrypt.org/directory"


def test_a_dumped_registry_validates_to_the_same_model() -> None:
    parsed = HostSites.model_validate(host(app=copy.deepcopy(VALID_SITE)))
    assert HostSites.model_validate(parsed.to_yaml_data()) == parsed
