"""A site moving to another host arrives there as an archived record (siteops.archive)."""

from __future__ import annotations

import pytest

from siteops.archive import _arrived
from siteops.errors import SiteModelError
from siteops.model import ArchivedSite
from tests.test_sites import archived_blog, example


def arriving(name: str) -> ArchivedSite:
    return archived_blog().archived["blog"].model_copy(update={"backup": f"/b/{name}-move"})


def test_a_moving_site_arrives_as_an_archived_record_and_nothing_else_changes() -> None:
    here = example()
    arrived = _arrived(here, "blog", arriving("blog"))
    assert arrived.archived["blog"].backup == "/b/blog-move"
    assert arrived.sites == here.sites and "blog" not in here.archived


def test_a_site_cannot_move_onto_a_name_the_destination_uses() -> None:
    with pytest.raises(SiteModelError, match="the destination already has a site 'shop'"):
        _arrived(example(), "shop", arriving("shop"))
    with pytest.raises(SiteModelError, match="already has an archived site 'blog'"):
        _arrived(archived_blog(), "blog", arriving("blog"))


def test_without_an_arriving_site_the_sites_are_returned_as_they_are() -> None:
    here = example()
    assert _arrived(here, "blog", None) is here
