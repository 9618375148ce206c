"""The sites of the ``tests/fixtures/sites-format-*.yml`` files, built by siteops itself.

Two active sites (one with api, database, cache and TLS; one static) and an
archived one, made the way ``add-site`` and ``remove-site`` make them. Each
fixture file is what ``Registry.save`` wrote for these sites in its format;
the files of older formats are kept as they are, never written again.
"""

from __future__ import annotations

from siteops.model import HostSites
from siteops.sites import SiteAnswers, add_site

ARCHIVED_AT = "2025-10-09T12:17:25Z"
FINAL_BACKUP = "/var/backups/siteops/blog/20251009T121700Z-final"


def fixture_sites() -> HostSites:
    """The fixture's sites, as the current siteops builds them."""
    sites = add_site(
        HostSites(),
        "shop",
        SiteAnswers(
            domains=["shop.example.com", "www.shop.example.com"],
            block=0,
            runtime="nextjs",
            api=True,
            database=True,
            cache=True,
            memory="1G",
            cpu="100%",
            tls_email="ops@example.com",
            description="Bakery web shop (Next.js frontend, Node API)",
        ),
    )
    sites = add_site(
        sites,
        "docs-site",
        SiteAnswers(
            domains=["docs.example.com"],
            block=1,
            runtime="static",
            database=False,
            description="Product documentation (static files)",
        ),
    )
    sites = add_site(
        sites,
        "blog",
        SiteAnswers(
            domains=["blog.example.com"],
            block=2,
            runtime="python",
            tls_email="ops@example.com",
            description="The old blog",
        ),
    )
    data = sites.to_yaml_data()
    for record in data["siteops_sites"].values():
        record["status"] = "active"
    data["siteops_archived_sites"]["blog"] = {
        "site": data["siteops_sites"].pop("blog"),
        "archived_at": ARCHIVED_AT,
        "backup": FINAL_BACKUP,
    }
    return HostSites.model_validate(data)
