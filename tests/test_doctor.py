"""`siteops doctor`: the registry held against what the host has."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from siteops.doctor import Finding, findings, quota_usec
from siteops.hostfacts import HostFacts
from siteops.layout import layout
from siteops.model import HostSites
from siteops.sites import SiteAnswers, add_site

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def sites() -> HostSites:
    one = add_site(
        HostSites(), "blog",
        SiteAnswers(domains=["blog.test"], block=0, cache=True, tls_email="ops@blog.test"),
    )  # fmt: skip
    return add_site(one, "docs", SiteAnswers(domains=["docs.test"], block=1, runtime="static",
                                             database=False))  # fmt: skip


def clean_host() -> dict[str, Any]:
    """What a host that matches ``sites()`` reports."""
    slice_props = {"MemoryMax": str(512 << 20), "CPUQuotaPerSecUSec": "500ms", "TasksMax": "256"}
    return {
        "users": {n: {"home": f"/srv/sites/{n}", "shell": "/usr/sbin/nologin"}
                  for n in ("blog", "docs")},
        "trees": {n: {"owner": n, "mode": "0750", "dir": True} for n in ("blog", "docs")},
        "env": {n: {"owner": n, "mode": "0600", "dir": False} for n in ("blog", "docs")},
        "component_units": {"blog-frontend.service": "blog"},
        "units": {"blog-frontend.service": {"LoadState": "loaded", "ActiveState": "active",
                                            "UnitFileState": "enabled"}},
        "slices": {"blog.slice": dict(slice_props), "docs.slice": dict(slice_props)},
        "nginx": {"available": {"blog.conf": "blog", "docs.conf": "docs"},
                  "enabled": ["000-siteops-default.conf", "blog.conf", "docs.conf"]},
        "firewall": {"files": ["blog", "docs"], "live": ["blog", "docs"]},
        "postgres": {"databases": ["blog"], "roles": ["blog"]},
        "redis_users": ["blog", "default", "siteops-admin"],
        "disk": {"/": 40.0},
        "failed_units": [],
    }  # fmt: skip


def clean_facts() -> HostFacts:
    backup = {"result": "ok", "at": "2026-11-28T03:00:00Z"}
    return HostFacts(
        listening=frozenset({22, 80, 443, 3100, 5432}),
        sites={
            "blog": {"cert_expiry": "2027-02-01", "backup": backup,
                     "release": {"current": "20261128T010000Z", "serving_ports": [3100]}},
            "docs": {"backup": backup, "restore_test": {"result": "ok"}},
        },
        owners={"3100": "blog", "5432": "postgres"},
    )  # fmt: skip


def check(host: dict[str, Any], facts: HostFacts | None = None, **kw: Any) -> list[Finding]:
    kw.setdefault("names", ["blog", "docs"])
    kw.setdefault("whole_host", True)
    return findings(sites(), facts or clean_facts(), host, layout(), now=NOW, **kw)


def test_a_host_that_matches_the_registry_has_no_findings() -> None:
    assert check(clean_host()) == []


@pytest.mark.parametrize(
    ("change", "site", "problem"),
    [
        (lambda h: h["users"].pop("blog"), "blog", "has no Unix user"),
        (lambda h: h["users"]["blog"].update({"shell": "/bin/bash"}), "blog",
         "its user has the login shell /bin/bash"),
        (lambda h: h["env"]["blog"].update(mode="0644"), "blog",
         ".env is blog 0644, not blog 0600"),
        (lambda h: h["units"]["blog-frontend.service"].update(LoadState="not-found"), "blog",
         "unit blog-frontend.service is missing"),
        (lambda h: h["units"]["blog-frontend.service"].update(ActiveState="failed"), "blog",
         "unit blog-frontend.service is failed"),
        (lambda h: h["slices"]["blog.slice"].update(MemoryMax="1073741824"), "blog",
         "its slice's MemoryMax is 1073741824, not 512M"),
        (lambda h: h["slices"]["blog.slice"].update(CPUQuotaPerSecUSec="1s"), "blog",
         "its slice's CPU quota is 1s, not 50%"),
        (lambda h: h["nginx"]["enabled"].remove("docs.conf"), "docs",
         "its nginx config is not enabled"),
        (lambda h: h["firewall"]["live"].remove("blog"), "blog",
         "has no port rule in the firewall"),
        (lambda h: h["postgres"]["roles"].remove("blog"), "blog",
         "has no database or database role"),
        (lambda h: h["postgres"]["databases"].append("docs"), "docs",
         "has a database although its record has none"),
        (lambda h: h["redis_users"].remove("blog"), "blog", "has no Redis user"),
        (lambda h: h["users"].update(old={"home": "/srv/sites/old", "shell": "/usr/sbin/nologin"}),
         None, "user old lives under /srv/sites but no site is named so"),
        (lambda h: h["component_units"].update({"old-web.service": "old"}), None,
         "unit old-web.service is of site old, which is not in the registry"),
        (lambda h: h["nginx"]["available"].update({"old.conf": "old"}), None,
         "nginx config old.conf is of site old, not in the registry"),
        (lambda h: h["postgres"]["databases"].append("old"), None,
         "database old belongs to no site of the registry"),
        (lambda h: h["disk"].update({"/srv/sites": 91.5}), None, "/srv/sites is 91.5% full"),
        (lambda h: h["failed_units"].append("cron.service"), None, "unit cron.service failed"),
    ],
)  # fmt: skip
def test_each_drift_is_one_finding_naming_the_site_and_a_fix(
    change: Any, site: str | None, problem: str
) -> None:
    host = copy.deepcopy(clean_host())
    change(host)
    found = check(host)
    assert [(f.site, f.problem) for f in found] == [(site, problem)]
    assert found[0].why and found[0].fix


def test_nginx_left_on_the_spare_slot_by_an_interrupted_switch_is_a_finding() -> None:
    facts = clean_facts()
    facts.sites["blog"]["release"]["serving_ports"] = [3101]
    [found] = check(clean_host(), facts)
    assert (found.site, found.problem) == (
        "blog",
        "nginx passes its requests to its spare slot (ports 3101)",
    )
    assert found.fix.startswith("siteops deploy blog")


def test_time_findings_certificate_backup_and_restore_test() -> None:
    facts = clean_facts()
    raw = {**facts.sites}
    raw["blog"] = {
        **raw["blog"],
        "cert_expiry": "2026-12-05",
        "backup": {"result": "ok", "at": "2026-11-25T03:00:00Z"},
    }
    raw["docs"] = {"restore_test": {"result": "failed", "message": "no tables"}}
    found = check(clean_host(), HostFacts(facts.listening, raw, facts.owners))
    assert [(f.site, f.problem) for f in found] == [
        ("blog", "its certificate expires on 2026-12-05"),
        ("blog", "its last backup is from 2026-11-25T03:00:00Z"),
        ("docs", "has no backup yet"),
        ("docs", "its last restore test failed: no tables"),
    ]  # fmt: skip


def test_a_listener_in_a_free_block_is_a_finding_but_postgres_is_not() -> None:
    facts = clean_facts()
    owners = {**facts.owners, "5077": "mallory"}
    found = check(clean_host(), HostFacts(facts.listening | {5077}, facts.sites, owners))
    assert [f.problem for f in found] == [
        "port 5077 (mallory) listens in block 7, which no site holds"
    ]


def test_a_stopped_unit_that_runs_is_a_finding_and_named_sites_skip_the_host() -> None:
    stopped = sites().to_yaml_data()
    stopped["siteops_sites"]["blog"]["stopped"] = True
    host = clean_host()
    host["failed_units"].append("cron.service")
    found = findings(HostSites.model_validate(stopped), clean_facts(), host, layout(), ["blog"],
                     whole_host=False, now=NOW)  # fmt: skip
    assert [f.problem for f in found] == [
        "unit blog-frontend.service runs although an operator stopped it"
    ]


def test_cpu_quota_spans_read_as_systemd_prints_them() -> None:
    assert quota_usec("500ms") == 500_000
    assert quota_usec("1.500000s") == 1_500_000
    assert quota_usec("2s") == 2_000_000
    assert quota_usec("infinity") is None
