"""The host layout is written once, in roles/site_layout, and siteops reads it from there."""

from __future__ import annotations

import re
from dataclasses import fields
from typing import Any

import pytest
import yaml

from siteops import display, markdown, naming, remote
from siteops.layout import (
    LAYOUT_FILE,
    PREFIX,
    Layout,
    LayoutError,
    layout,
    layout_path,
    parse_layout,
)
from siteops.model import Site
from siteops.resources import find_collection
from tests.conftest import REPO, VALID_SITE

FILE: dict[str, Any] = yaml.safe_load((REPO / LAYOUT_FILE).read_text(encoding="utf-8"))
LAYOUT_ROLE = REPO / "roles" / "site_layout"


def test_the_layout_is_read_from_the_collection_siteops_runs() -> None:
    assert layout_path() == find_collection() / LAYOUT_FILE
    assert layout_path().resolve() == (REPO / LAYOUT_FILE).resolve()


def test_every_value_of_the_file_is_read_and_nothing_else() -> None:
    assert set(FILE) == {PREFIX + field.name for field in fields(Layout)}
    for field in fields(Layout):
        assert getattr(layout(), field.name) == FILE[PREFIX + field.name], field.name


def test_the_name_rules_are_the_files() -> None:
    assert FILE["site_layout_site_name_pattern"] == naming.SITE_NAME_PATTERN
    assert FILE["site_layout_site_name_min_length"] == naming.SITE_NAME_MIN
    assert FILE["site_layout_site_name_max_length"] == naming.SITE_NAME_MAX
    assert FILE["site_layout_component_pattern"] == naming.COMPONENT_NAME_PATTERN
    longest = "a" * FILE["site_layout_site_name_max_length"]
    assert naming.check_site_name(longest) == longest
    with pytest.raises(ValueError, match="characters long"):
        naming.check_site_name(longest + "a")


def test_the_name_patterns_are_anchored() -> None:
    # The roles cut the anchors off (pattern[1:-1]) to find a site's units by name.
    for key in ("site_layout_site_name_pattern", "site_layout_component_pattern"):
        pattern = FILE[key]
        assert pattern.startswith("^") and pattern.endswith("$"), key
        assert "^" not in pattern[1:-1] and "$" not in pattern[1:-1], key


def test_units_slices_and_paths_follow_the_file() -> None:
    root = FILE["site_layout_sites_root"]
    assert markdown.unit_name("shop", "api") == FILE["site_layout_unit_format"] % ("shop", "api")
    escape = FILE["site_layout_slice_dash_escape"]
    assert markdown.slice_name("web-app-v2") == FILE["site_layout_slice_format"] % (
        f"web{escape}app{escape}v2"
    )
    logs = f"{root}/shop/{FILE['site_layout_logs_subdir']}"
    assert f"set -- {logs}/*.log;" in remote.log_command("shop", None, 10, follow=False)[2]
    view = display.site_view("shop", Site.model_validate(VALID_SITE))
    assert view["paths"]["root"] == f"{root}/shop"
    assert view["paths"]["logs"] == logs
    assert view["slice"] == markdown.slice_name("shop")


def test_the_documented_examples_hold() -> None:
    # The names the layout file's comments give as examples.
    assert layout().unit_name("shop", "frontend") == "shop-frontend.service"
    assert layout().slice_name("web-app-v2") == "web\\x2dapp\\x2dv2.slice"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"site_layout_sites_root": None}, "site_layout_sites_root must be a str"),
        ({"site_layout_site_name_max_length": True}, "must be a int"),
        ({"site_layout_sites_root": "{{ x }}"}, "must be a plain value"),
    ],
)
def test_a_broken_layout_file_is_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(LayoutError, match=re.escape(message)):
        parse_layout({**FILE, **change}, "layout.yml")
