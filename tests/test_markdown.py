"""The Markdown registry: golden files of the example host, and what it must never show."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from siteops.inventory import load_host_sites, sites_path
from siteops.markdown import (
    BLOCK_STATES,
    STATUS_LABELS,
    SiteFacts,
    render_registry,
    slice_name,
)
from siteops.model import HostSites, SiteStatus
from siteops.ports import MAX_BLOCKS
from siteops.sites import SiteAnswers, new_site
from tests.conftest import EXAMPLE_INVENTORY

GOLDEN = Path(__file__).parent / "golden"
UPDATE_VARIABLE = "SITEOPS_UPDATE_GOLDEN"

FACTS: dict[str, Any] = {
    "shop": {
        "cert_expiry": "2027-01-07",
        "cert_issued": "2026-10-09",
        "disk_use": "2.5G",
        "memory_use": "180M",
        "db_connections": 7,
        "units": {
            "shop-frontend.service": "active",
            "shop-api.service": "failed",
            "shop-worker.service": "activating",
        },
    },
    "docs-site": {"disk_use": "12M"},
}


def example() -> HostSites:
    return load_host_sites(sites_path(EXAMPLE_INVENTORY, "vps1"))


def with_archive() -> HostSites:
    """The example host after a third site, blog, was removed and archived."""
    data = example().to_yaml_data()
    blog = {**data["siteops_sites"]["docs-site"], "description": "Old | blog"}
    blog["port_block"] = 2
    blog["domains"] = {"primary": "blog.example.org", "aliases": ["www.blog.example.org"]}
    data["siteops_archived_sites"] = {
        "blog": {
            "site": blog,
            "archived_at": "2026-11-01T09:30:00Z",
            "backup": "/var/backups/siteops/blog/20261101T093000Z",
        }
    }
    return HostSites.model_validate(data)


def check_golden(name: str, text: str) -> None:
    """Compare with tests/golden/<name> byte for byte (or rewrite it when asked to)."""
    golden = GOLDEN / name
    if os.environ.get(UPDATE_VARIABLE) == "1":
        golden.write_text(text, encoding="utf-8")
    expected = golden.read_text(encoding="utf-8") if golden.exists() else None
    assert text == expected, (
        f"{golden} differs from the rendered registry. If the change is intended, "
        f"regenerate it with `{UPDATE_VARIABLE}=1 .venv/bin/pytest tests/test_markdown.py` "
        "and review the diff."
    )


def test_the_example_registry_matches_its_golden_file() -> None:
    check_golden("registry-example.md", render_registry("vps1", example()))


def test_the_registry_with_facts_and_an_archive_matches_its_golden_file() -> None:
    text = render_registry("vps1", with_archive(), FACTS, as_of="2026-11-22T20:00:00Z")
    check_golden("registry-example-facts.md", text)


def test_rendering_twice_gives_the_same_bytes() -> None:
    assert render_registry("vps1", example()) == render_registry("vps1", example())
    facts = {name: SiteFacts.model_validate(value) for name, value in FACTS.items()}
    assert render_registry("vps1", example(), facts) == render_registry("vps1", example(), FACTS)


def test_one_section_per_site_in_the_registry_order() -> None:
    text = render_registry("vps1", example())
    assert text.index("### Site #1: shop\n") < text.index("### Site #2: docs-site\n")
    assert "**Status:** 🟢 **ACTIVE**" in text
    assert "**Status:** 🔵 **PENDING** (not deployed yet)" in text


def test_without_facts_live_values_say_how_to_get_them() -> None:
    text = render_registry("vps1", example())
    assert "| shop | shop.example.com, www.shop.example.com | unknown — run `siteops " in text
    assert "❔ unknown" in text
    assert "run `siteops registry --refresh` to see disk, memory" in text


def test_facts_fill_the_live_columns() -> None:
    text = render_registry("vps1", example(), FACTS)
    assert "| 2027-01-07 | 2026-10-09 |" in text
    assert "| `shop-api.service` | ❌ failed |" in text
    assert "| shop | 2.5G | 180M / 1G | 100% | 512 | 7 / 20 |" in text
    assert "| docs-site | 12M | unknown / 128M | 25% | 64 | no database |" in text


def test_only_used_blocks_and_the_next_free_one_are_listed() -> None:
    data = example().to_yaml_data()
    data["siteops_sites"]["docs-site"]["port_block"] = 5
    text = render_registry("vps1", HostSites.model_validate(data))
    section = text.split("### Port Allocation Summary")[1].split("\n---\n")[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")][1:]  # no header
    assert [row.split(" | ")[0] for row in rows] == ["| 0", "| 1", "| 5"]
    assert "| 1 | 3110-3119 | 4010-4019 | 5010-5019 | — | ⚪ Free (next) |" in text
    assert f"{MAX_BLOCKS - 2} of {MAX_BLOCKS} blocks are free." in text


def test_a_full_host_says_no_block_is_free() -> None:
    data: dict[str, Any] = {"siteops_sites": {}}
    for block in range(MAX_BLOCKS):
        answers = SiteAnswers(
            domains=[f"s{block}.example.net"], block=block, runtime="static", database=False
        )
        site = new_site(f"site{block}", answers)
        data["siteops_sites"][f"site{block}"] = site.model_dump(mode="json")
    text = render_registry("full", HostSites.model_validate(data))
    assert "Free (next)" not in text
    assert f"All {MAX_BLOCKS} blocks are in use: archive a site before adding one." in text


def test_an_empty_host_renders_every_section() -> None:
    text = render_registry("fresh", HostSites())
    assert "No active sites on this host yet" in text
    assert "| 0 | 3100-3109 | 4000-4009 | 5000-5009 | — | ⚪ Free (next) |" in text
    assert "No site has a database." in text
    assert "No site serves HTTPS." in text
    assert "No archived sites." in text


def test_pipes_in_free_text_do_not_break_tables() -> None:
    text = render_registry("vps1", with_archive())
    assert "| blog | Old \\| blog | 2026-11-01T09:30:00Z |" in text
    facts = {"shop": {"disk_use": "1G|2G"}}
    assert "| shop | 1G\\|2G |" in render_registry("vps1", example(), facts)


def test_slices_escape_dashes_like_systemd() -> None:
    assert slice_name("shop") == "shop.slice"
    assert slice_name("web-app-v2") == "web\\x2dapp\\x2dv2.slice"


def test_facts_refuse_unknown_fields_so_no_secret_can_slip_in() -> None:
    with pytest.raises(ValidationError, match="db_password"):
        render_registry("vps1", example(), {"shop": {"db_password": "hunter2"}})


def test_facts_for_a_site_that_is_not_on_the_host_are_an_error() -> None:
    with pytest.raises(ValueError, match="'blog', which is not an active site of this host"):
        render_registry("vps1", example(), {"blog": {}})


def test_nothing_resembling_a_secret_is_rendered() -> None:
    text = render_registry("vps1", with_archive(), FACTS, as_of="2026-11-22T20:00:00Z").lower()
    for word in ("password", "secret", "token", "passwd", "api_key"):
        assert word not in text


@pytest.mark.parametrize("status", [s.value for s in SiteStatus])
def test_every_status_has_a_label_and_a_block_state(status: str) -> None:
    data = example().to_yaml_data()
    data["siteops_sites"]["shop"]["status"] = status
    text = render_registry("vps1", HostSites.model_validate(data))
    assert f"**Status:** {STATUS_LABELS[status]}" in text
    assert f"| shop | {BLOCK_STATES[status]} |" in text


@pytest.mark.parametrize(
    ("tls", "label"),
    [
        ({"enabled": False}, "❌ off (plain HTTP)"),
        (
            {
                "email": "ops@example.com",
                "ca_directory": "https://acme-staging-v02.api.letsencrypt.org/directory",
            },
            "🧪 Let's Encrypt staging (browsers do not trust it)",
        ),
        (
            {"email": "ops@example.com", "ca_directory": "https://pebble.test:14000/dir"},
            "✅ CA `https://pebble.test:14000/dir`",
        ),
    ],
)
def test_the_tls_column_names_the_ca(tls: dict[str, Any], label: str) -> None:
    data = example().to_yaml_data()
    data["siteops_sites"]["shop"]["tls"] = tls
    text = render_registry("vps1", HostSites.model_validate(data))
    assert f"| shop.example.com | shop | primary | {label} |" in text
    assert ("| shop | shop.example.com, www.shop.example.com |" in text) == tls.get("enabled", True)
