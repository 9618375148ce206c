"""Changing an existing site's record (`siteops set`), checked as add-site is."""

from __future__ import annotations

import pytest

from siteops.changes import NewComponent, NewJob, SiteChanges, change_site, describe_changes
from siteops.errors import SiteModelError
from siteops.model import HostSites
from siteops.sites import SiteAnswers, add_site

STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"


def two_sites() -> HostSites:
    sites = add_site(
        HostSites(),
        "blog",
        SiteAnswers(
            domains=["blog.example.net", "www.blog.example.net"],
            block=2,
            tls_email="ops@example.net",
        ),
    )
    return add_site(
        sites, "docs", SiteAnswers(domains=["docs.example.net"], block=3, runtime="static")
    )


def problems(sites: HostSites, name: str, changes: SiteChanges, **kw: object) -> list[str]:
    with pytest.raises(SiteModelError) as caught:
        change_site(sites, name, changes, **kw)  # type: ignore[arg-type]
    return caught.value.problems


def test_an_added_domain_becomes_an_alias_and_a_removed_one_goes() -> None:
    sites = two_sites()
    changed = change_site(
        sites,
        "blog",
        SiteChanges(add_domains=("News.Example.NET",), remove_domains=("www.blog.example.net",)),
    )
    domains = changed.sites["blog"].domains
    assert (domains.primary, domains.aliases) == ("blog.example.net", ["news.example.net"])
    assert sites.sites["blog"].domains.aliases == ["www.blog.example.net"]  # input untouched


def test_the_primary_moves_and_the_old_primary_stays_an_alias() -> None:
    changed = change_site(two_sites(), "blog", SiteChanges(primary="www.blog.example.net"))
    domains = changed.sites["blog"].domains
    assert (domains.primary, domains.aliases) == ("www.blog.example.net", ["blog.example.net"])


def test_a_new_primary_can_be_added_and_the_old_one_removed_at_once() -> None:
    changed = change_site(
        two_sites(),
        "blog",
        SiteChanges(
            add_domains=("blog.example.org",),
            primary="blog.example.org",
            remove_domains=("blog.example.net",),
        ),
    )
    domains = changed.sites["blog"].domains
    assert (domains.primary, domains.aliases) == ("blog.example.org", ["www.blog.example.net"])


def test_domain_refusals_name_the_site_that_holds_it_or_the_rule() -> None:
    sites = two_sites()
    found = problems(
        sites,
        "blog",
        SiteChanges(
            add_domains=("docs.example.net", "blog.example.net", "shop.example.com", "bad_name"),
            remove_domains=("blog.example.net", "nowhere.example.net"),
        ),
        elsewhere={"shop.example.com": ("vps2", "shop")},
    )
    assert any("'docs.example.net' is already served by site 'docs'" in p for p in found)
    assert any("'blog.example.net' is already a domain of site 'blog'" in p for p in found)
    assert any("site 'shop' on host 'vps2'" in p for p in found)
    assert any(p.startswith("domains: ") and "bad_name" in p for p in found)
    assert any("is the primary domain of site 'blog'" in p for p in found)
    assert any("'nowhere.example.net' is not a domain of site 'blog'" in p for p in found)


def test_a_primary_that_is_not_a_domain_of_the_site_is_refused() -> None:
    found = problems(two_sites(), "blog", SiteChanges(primary="other.example.net"))
    assert found == [
        "domains.primary: 'other.example.net' is not a domain of site 'blog'; add it with "
        "--add-domain in the same command, or name one of its domains"
    ]


def test_limits_change_and_bad_limits_name_their_field() -> None:
    changed = change_site(two_sites(), "blog", SiteChanges(memory="1G", cpu="150%", tasks=512))
    limits = changed.sites["blog"].limits
    assert (limits.memory, limits.cpu, limits.tasks) == ("1G", "150%", 512)
    found = problems(two_sites(), "blog", SiteChanges(memory="1GB", tasks=2))
    assert any(p.startswith("siteops_sites.blog.limits.memory:") for p in found)
    assert any(p.startswith("siteops_sites.blog.limits.tasks:") for p in found)


def test_an_extra_component_takes_the_next_free_port_of_its_range() -> None:
    sites = change_site(
        two_sites(),
        "blog",
        SiteChanges(add_components=(NewComponent("worker", "python", "python worker.py"),)),
    )
    sites = change_site(
        sites, "blog", SiteChanges(add_components=(NewComponent("hooks", "node", "node h.js"),))
    )
    components = sites.sites["blog"].components
    assert (components["worker"].port, components["hooks"].port) == (5020, 5021)
    removed = change_site(sites, "blog", SiteChanges(remove_components=("worker",)))
    assert list(removed.sites["blog"].components) == ["frontend", "hooks"]
    again = change_site(
        removed, "blog", SiteChanges(add_components=(NewComponent("mail", "node", "node m.js"),))
    )
    assert again.sites["blog"].components["mail"].port == 5020  # the freed port is reused


def test_an_api_gets_its_range_and_the_default_command_of_the_frontends_runtime() -> None:
    sites = change_site(
        two_sites(), "blog", SiteChanges(add_components=(NewComponent("api", "node"),))
    )
    api = sites.sites["blog"].components["api"]
    assert (api.port, api.command) == (4020, "node api.js")


def test_a_full_range_and_bad_components_are_refused() -> None:
    sites = two_sites()
    for index in range(10):
        sites = change_site(
            sites,
            "blog",
            SiteChanges(add_components=(NewComponent(f"w{index}", "node", "node w.js"),)),
        )
    found = problems(
        sites, "blog", SiteChanges(add_components=(NewComponent("w10", "node", "node w.js"),))
    )
    assert found == [
        "components.w10.port: the extra range of block 2 (5020-5029) is full; remove a "
        "component of that range first"
    ]
    found = problems(
        two_sites(),
        "blog",
        SiteChanges(
            add_components=(
                NewComponent("frontend", "node", "x"),
                NewComponent("web", "static"),
                NewComponent("job", "python"),
                NewComponent("Bad", "node", "x"),
                NewComponent("cron", "ruby", "x"),
            ),
            remove_components=("frontend", "ghost"),
        ),
    )
    assert len(found) == 7
    assert "already has a component 'frontend'" in found[2]
    assert found[0].startswith("components: the frontend of site 'blog' cannot be removed")
    assert found[1] == "components: site 'blog' has no component 'ghost'"
    assert "only the frontend can be static" in found[3]
    assert found[4].startswith("components.job.command: a python component needs")
    assert found[5].startswith("components (name):")
    assert found[6].startswith("components.cron.runtime: 'ruby' is not one of")


def test_tls_on_needs_an_email_and_takes_the_hosts_ca() -> None:
    docs = two_sites()
    found = problems(docs, "docs", SiteChanges(tls=True))
    assert found == ["tls.email: turning TLS on needs a contact address for the CA (--tls-email)"]
    changed = change_site(
        docs, "docs", SiteChanges(tls_email="ops@example.net", default_ca_directory=STAGING)
    )
    tls = changed.sites["docs"].tls
    assert (tls.enabled, tls.email, str(tls.ca_directory)) == (True, "ops@example.net", STAGING)
    off = change_site(changed, "docs", SiteChanges(tls=False))
    assert off.sites["docs"].tls.enabled is False
    assert off.sites["docs"].tls.email == "ops@example.net"  # kept for turning it on again


def test_turning_the_database_off_needs_drop_database() -> None:
    found = problems(two_sites(), "blog", SiteChanges(database=False))
    assert found == [
        "database: site 'blog' has a database; turning it off drops it and its data: add "
        "--drop-database (a backup of it is taken first and kept)"
    ]
    dropped = change_site(two_sites(), "blog", SiteChanges(database=False, drop_database=True))
    assert dropped.sites["blog"].database.enabled is False
    found = problems(two_sites(), "docs", SiteChanges(drop_database=True))
    assert found == [
        "database: --drop-database only goes with --no-database on a site that has one"
    ]


def test_nothing_to_change_and_unknown_or_removing_sites_are_refused() -> None:
    assert problems(two_sites(), "blog", SiteChanges()) == [
        "set: nothing to change; give at least one option"
    ]
    assert problems(two_sites(), "ghost", SiteChanges(cache=True)) == [
        "site: 'ghost' is not in the registry"
    ]


def test_describe_changes_names_each_changed_field() -> None:
    sites = two_sites()
    changed = change_site(
        sites,
        "blog",
        SiteChanges(
            memory="1G",
            cache=True,
            add_domains=("news.example.net",),
            add_components=(NewComponent("worker", "python", "python w.py"),),
            description="The blog",
        ),
    )
    assert describe_changes(sites.sites["blog"], changed.sites["blog"]) == [
        "description: '' -> The blog",
        "domains.aliases: [www.blog.example.net] -> [www.blog.example.net, news.example.net]",
        "cache.enabled: False -> True",
        "limits.memory: 512M -> 1G",
        "components.worker: added (python on 5020: python w.py)",
    ]


def test_stop_and_start_a_site_or_one_component() -> None:
    sites = change_site(
        two_sites(), "blog",
        SiteChanges(add_components=(NewComponent("worker", "python", "python w.py"),)),
    )  # fmt: skip
    stopped = change_site(sites, "blog", SiteChanges(stop_components=("worker",)))
    assert stopped.sites["blog"].components["worker"].stopped is True
    assert stopped.sites["blog"].stopped is False
    assert describe_changes(sites.sites["blog"], stopped.sites["blog"]) == [
        "components.worker: changed (python on 5020: python w.py, stopped)"
    ]
    whole = change_site(stopped, "blog", SiteChanges(stopped=True))
    assert whole.sites["blog"].stopped is True
    started = change_site(whole, "blog", SiteChanges(stopped=False))
    assert started.sites["blog"] == sites.sites["blog"]  # start starts every component
    found = problems(
        two_sites(), "docs", SiteChanges(stop_components=("frontend",), start_components=("x",))
    )
    assert found == [
        "components.frontend: a static component has no unit to stop or start (nginx serves "
        "it; stop the site instead)",
        "components: site 'docs' has no component 'x'",
    ]


def test_maintenance_on_takes_a_message_and_off_clears_it() -> None:
    on = change_site(
        two_sites(), "blog", SiteChanges(maintenance=True, maintenance_message="Back at 5")
    )
    assert on.sites["blog"].maintenance.model_dump() == {"enabled": True, "message": "Back at 5"}
    off = change_site(on, "blog", SiteChanges(maintenance=False))
    assert off.sites["blog"].maintenance.model_dump() == {"enabled": False, "message": ""}
    found = problems(two_sites(), "blog", SiteChanges(maintenance=True, maintenance_message="a\nb"))
    assert found[0].startswith("siteops_sites.blog.maintenance.message:")


def test_jobs_are_added_and_removed_and_never_named_like_a_component() -> None:
    job = NewJob("report", "*-*-* 03:00:00", "node report.js")
    sites = two_sites()
    added = change_site(sites, "blog", SiteChanges(add_jobs=(job,)))
    assert added.sites["blog"].jobs["report"].model_dump() == {
        "schedule": "*-*-* 03:00:00",
        "command": "node report.js",
    }
    assert describe_changes(sites.sites["blog"], added.sites["blog"]) == [
        "jobs.report: added (*-*-* 03:00:00: node report.js)"
    ]
    found = problems(
        added, "blog",
        SiteChanges(add_jobs=(job, NewJob("frontend", "daily", "x"), NewJob("Bad", "daily", "x")),
                    remove_jobs=("ghost",)),
    )  # fmt: skip
    assert found[0] == "jobs: site 'blog' has no job 'ghost'"
    assert found[1].startswith("jobs: site 'blog' already has a job 'report'")
    assert found[2].startswith("jobs (name): job name 'Bad' must be")
    clash = problems(sites, "blog", SiteChanges(add_jobs=(NewJob("frontend", "daily", "x"),)))
    assert clash == [
        "siteops_sites.blog: job 'frontend' has the name of a component; its unit would be "
        "the component's: choose another name"
    ]
    removed = change_site(added, "blog", SiteChanges(remove_jobs=("report",)))
    assert removed.sites["blog"].jobs == {}
