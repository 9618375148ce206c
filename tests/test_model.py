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
    ("status", "running", "status", "'pending', 'active', 'failed' or 'removing'"),
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


def test_removing_is_a_status_a_removal_in_progress_can_have(site: dict[str, Any]) -> None:
    site["status"] = "removing"
    assert parse_host_sites(host(app=site), "sites.yml").sites["app"].status == "removing"


def archived_entry(**changes: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "site": copy.deepcopy(VALID_SITE),
        "archived_at": "2025-10-09T12:17:25Z",
        "backup": "/var/backups/siteops/old/20251009T121725Z",
    }
    entry.update(changes)
    return entry


def test_archived_sites_keep_their_record_time_and_backup(site: dict[str, Any]) -> None:
    data = {**host(app=site), "siteops_archived_sites": {"old": archived_entry()}}
    parsed = parse_host_sites(data, "sites.yml")
    old = parsed.archived["old"]
    assert (old.archived_at, old.backup) == (
        "2025-10-09T12:17:25Z",
        "/var/backups/siteops/old/20251009T121725Z",
    )
    assert old.site.domains.primary == "app.example.test"
    assert HostSites.model_validate(parsed.to_yaml_data()) == parsed


def test_archived_sites_hold_no_block_or_domain(site: dict[str, Any]) -> None:
    # The archived record has the same block and domains as the active site.
    data = {**host(app=site), "siteops_archived_sites": {"old": archived_entry()}}
    assert list(parse_host_sites(data, "sites.yml").archived) == ["old"]


def test_a_registry_without_an_archive_section_has_none(site: dict[str, Any]) -> None:
    assert parse_host_sites(host(app=site), "sites.yml").archived == {}


ARCHIVE_RULES: list[tuple[dict[str, Any], str, str]] = [
    # (changes to the archived entry, field named in the error, rule named in the error)
    ({"archived_at": "2025-10-09 12:17"}, "archived_at", "ISO 8601 time in UTC"),
    ({"archived_at": "2025-10-09T12:17:25+02:00"}, "archived_at", "ISO 8601 time in UTC"),
    ({"archived_at": "yesterday"}, "archived_at", "ISO 8601 time in UTC"),
    ({"backup": "backups/old.tar"}, "backup", "should match pattern"),
    ({"backup": ""}, "backup", "should match pattern"),
    ({"password": "x"}, "password", "unknown field"),
    ({"site": {"port_block": 0}}, "site.domains", "required field is missing"),
]


@pytest.mark.parametrize(("changes", "field", "rule"), ARCHIVE_RULES)
def test_each_archive_rule_is_enforced_with_field_and_rule(
    changes: dict[str, Any], field: str, rule: str
) -> None:
    problems = problems_of({"siteops_archived_sites": {"old": archived_entry(**changes)}})
    where = f"siteops_archived_sites.old.{field}"
    assert any(p.startswith(f"{where}: ") and rule in p for p in problems), problems


def test_a_name_is_either_active_or_archived(site: dict[str, Any]) -> None:
    data = {**host(app=site), "siteops_archived_sites": {"app": archived_entry()}}
    assert problems_of(data) == [
        "siteops_archived_sites: site 'app' is both active and archived; a name belongs to one "
        "site (drop the archived entry or rename the active site)"
    ]


def test_archived_names_follow_the_site_name_rules() -> None:
    problems = problems_of({"siteops_archived_sites": {"Old_Site": archived_entry()}})
    assert problems[0].startswith("siteops_archived_sites.Old_Site (name): site name")


def test_a_missing_tls_section_is_reported_at_tls_with_the_other_problems() -> None:
    problems = problems_of(host(app={"port_block": 0}))
    assert problems == [
        "siteops_sites.app.domains: required field is missing",
        "siteops_sites.app.components: required field is missing",
        "siteops_sites.app.tls: email is required when tls is enabled (the CA's contact address)",
    ]
