"""The format version of sites.yml: older files are read and upgraded, newer ones refused."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from siteops.errors import SiteModelError, describe
from siteops.fileformat import (
    FORMAT_KEY,
    MIGRATIONS,
    SITES_FORMAT,
    file_format,
    upgrade,
)
from siteops.inventory import load_host_sites, parse_host_sites
from siteops.model import HostSites
from siteops.registry import Registry
from siteops.schema import shipped
from tests.fixture_sites import fixture_sites

FIXTURES = Path(__file__).resolve().parent / "fixtures"
# Every format siteops ever wrote, as the siteops of that format wrote it (never rewritten).
FORMAT_FIXTURES = {version: FIXTURES / f"sites-format-{version}.yml" for version in (0, 1, 2, 3)}
NEWER = (
    "siteops_sites_format: this file is format 99, written by a newer siteops; "
    f"this siteops reads formats up to {SITES_FORMAT}: "
    "upgrade siteops (pip install --upgrade siteops)"
)


def copy_of(version: int, tmp_path: Path) -> Path:
    """The fixture of ``version`` as a host's sites.yml in an inventory under ``tmp_path``."""
    (tmp_path / "hosts.yml").write_text("all:\n  hosts:\n    vps1: {}\n", encoding="utf-8")
    target = tmp_path / "host_vars" / "vps1" / "sites.yml"
    target.parent.mkdir(parents=True)
    shutil.copyfile(FORMAT_FIXTURES[version], target)
    return target


def with_format(path: Path, value: Any) -> Path:
    """Rewrite ``path`` (a fixture copy) with ``siteops_sites_format: value``."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data[FORMAT_KEY] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


# --- the migration table ---------------------------------------------------------------


def test_there_is_one_migration_from_each_older_format() -> None:
    assert sorted(MIGRATIONS) == list(range(SITES_FORMAT))
    assert set(FORMAT_FIXTURES) == set(range(SITES_FORMAT + 1)), "keep a fixture of each format"


@pytest.mark.parametrize("version", sorted(MIGRATIONS))
def test_each_migration_sets_the_next_format_and_leaves_its_input(version: int) -> None:
    data = yaml.safe_load(FORMAT_FIXTURES[version].read_text(encoding="utf-8"))
    before = copy.deepcopy(data)
    migrated = MIGRATIONS[version](data)
    assert migrated[FORMAT_KEY] == version + 1
    assert data == before


def test_format_0_to_1_only_sets_the_key_first() -> None:
    data = {"siteops_sites": {"a": {"x": 1}}, "siteops_archived_sites": {}}
    migrated = MIGRATIONS[0](data)
    assert list(migrated) == [FORMAT_KEY, "siteops_sites", "siteops_archived_sites"]
    assert migrated == {FORMAT_KEY: 1, **data}


def test_a_file_without_the_key_is_format_0_and_is_upgraded_to_the_current_one() -> None:
    data: dict[str, Any] = {"siteops_sites": {}}
    assert file_format(data) == 0
    upgraded = upgrade(data)
    assert upgraded[FORMAT_KEY] == SITES_FORMAT
    assert data == {"siteops_sites": {}}  # the loaded data itself is left as it was
    assert upgrade(upgraded) == upgraded  # the current format is taken as it is


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("1", "must be a whole number"),
        (1.0, "must be a whole number"),
        (True, "must be a whole number"),
        (None, "must be a whole number"),
        ([1], "must be a whole number"),
        (-1, "must be 0 or more, not -1"),
        (99, "this file is format 99, written by a newer siteops"),
    ],
)
def test_an_unusable_format_is_refused_naming_the_key(value: Any, rule: str) -> None:
    with pytest.raises(ValueError, match=r"^siteops_sites_format: ") as caught:
        upgrade({FORMAT_KEY: value, "siteops_sites": {}})
    assert rule in str(caught.value)


# --- the fixture files ---------------------------------------------------------------------


@pytest.mark.parametrize("version", sorted(FORMAT_FIXTURES))
def test_the_file_of_every_format_loads_as_the_same_sites(version: int) -> None:
    loaded = load_host_sites(FORMAT_FIXTURES[version])
    assert loaded == fixture_sites()
    assert loaded.siteops_sites_format == SITES_FORMAT
    assert sorted(loaded.sites) == ["docs-site", "shop"]
    assert sorted(loaded.archived) == ["blog"]
    shop = loaded.sites["shop"]
    assert set(shop.components) == {"frontend", "api"}
    assert (shop.database.enabled, shop.cache.enabled, shop.tls.enabled) == (True, True, True)
    assert loaded.sites["docs-site"].components["frontend"].runtime == "static"


def test_the_format_fixtures_say_their_format() -> None:
    assert FORMAT_KEY not in yaml.safe_load(FORMAT_FIXTURES[0].read_text(encoding="utf-8"))
    for version in range(1, SITES_FORMAT + 1):
        data = yaml.safe_load(FORMAT_FIXTURES[version].read_text(encoding="utf-8"))
        assert next(iter(data)) == FORMAT_KEY and data[FORMAT_KEY] == version


@pytest.mark.parametrize("version", sorted(FORMAT_FIXTURES))
def test_loading_never_writes(version: int, tmp_path: Path) -> None:
    path = copy_of(version, tmp_path)
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    load_host_sites(path)
    with Registry(path).locked() as reg:
        reg.load()
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["sites.yml", "sites.yml.lock"]


@pytest.mark.parametrize("version", sorted(FORMAT_FIXTURES))
def test_saving_writes_the_current_format(version: int, tmp_path: Path) -> None:
    path = copy_of(version, tmp_path)
    with Registry(path).locked() as reg:
        reg.save(reg.load())
    current = FORMAT_FIXTURES[SITES_FORMAT].read_bytes()
    assert path.read_bytes() == current
    assert yaml.safe_load(path.read_text(encoding="utf-8"))[FORMAT_KEY] == SITES_FORMAT


def test_siteops_writes_exactly_the_fixture_of_the_current_format(tmp_path: Path) -> None:
    # A change here is a change of what siteops writes: if older siteops could
    # not read the new file, raise SITES_FORMAT and add a migration and fixture.
    path = tmp_path / "sites.yml"
    with Registry(path).locked() as reg:
        reg.save(fixture_sites())
    assert path.read_bytes() == FORMAT_FIXTURES[SITES_FORMAT].read_bytes()


# --- refused formats -----------------------------------------------------------------------


def test_a_newer_format_is_refused_naming_the_file_and_the_field(tmp_path: Path) -> None:
    path = with_format(copy_of(SITES_FORMAT, tmp_path), 99)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["siteops_sites"]["shop"]["something_new"] = True  # what a newer format may hold
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    before = path.read_bytes()

    with pytest.raises(SiteModelError) as caught:
        load_host_sites(path)

    assert caught.value.source == str(path)
    assert caught.value.problems == [NEWER]  # alone: the rest of the file cannot be judged
    assert str(caught.value) == f"{path}: {NEWER}"
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("two", "the format must be a whole number"),
        (1.5, "the format must be a whole number"),
        (None, "the format must be a whole number"),
        (-3, "the format must be 0 or more, not -3"),
    ],
)
def test_a_format_that_is_not_a_whole_number_from_0_is_refused(
    value: Any, rule: str, tmp_path: Path
) -> None:
    path = with_format(copy_of(SITES_FORMAT, tmp_path), value)
    with pytest.raises(SiteModelError) as caught:
        load_host_sites(path)
    assert caught.value.source == str(path)
    (problem,) = caught.value.problems
    assert problem.startswith(f"siteops_sites_format: {rule}")


def test_parse_leaves_data_that_is_not_a_mapping_to_the_model() -> None:
    with pytest.raises(SiteModelError, match="valid dictionary"):
        parse_host_sites(["siteops_sites"], "x.yml")
    assert parse_host_sites(None, "x.yml") == HostSites()


# --- the model -----------------------------------------------------------------------------


def test_the_model_holds_the_current_format_only() -> None:
    assert HostSites().siteops_sites_format == SITES_FORMAT
    assert next(iter(HostSites().to_yaml_data())) == FORMAT_KEY
    for value, rule in [
        (0, f"format 0 is older than the model's format {SITES_FORMAT}"),
        (99, "this file is format 99, written by a newer siteops"),
        (True, "the format must be a whole number"),
        ("1", "the format must be a whole number"),
    ]:
        with pytest.raises(ValidationError) as caught:
            HostSites.model_validate({FORMAT_KEY: value})
        (problem,) = describe(caught.value)
        assert problem.startswith(f"siteops_sites_format: {rule}"), problem


def test_save_refuses_a_model_whose_format_was_changed_in_place(tmp_path: Path) -> None:
    path = copy_of(SITES_FORMAT, tmp_path)
    before = path.read_bytes()
    with Registry(path).locked() as reg:
        sites = reg.load()
        sites.siteops_sites_format = 99
        with pytest.raises(SiteModelError, match="siteops_sites_format: this file is format 99"):
            reg.save(sites)
    assert path.read_bytes() == before


def test_the_schema_gives_the_current_format_without_a_default() -> None:
    schema = json.loads(shipped())
    described = schema["properties"][FORMAT_KEY]
    assert described["const"] == SITES_FORMAT and described["type"] == "integer"
    assert "default" not in described  # a file without the key is format 0
    assert FORMAT_KEY not in schema.get("required", [])
