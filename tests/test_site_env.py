"""A site's .env as `siteops env` changes it: the operator's lines only, values never echoed.

The host side (:mod:`siteops.hostsession`) runs here on real files.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from siteops.control import parse_assignments
from siteops.errors import SiteModelError
from siteops.hostsession import _quote, _unquote, change_env, parse_env, rotate_db_password

ENV = """\
# BEGIN siteops site_user: managed, changes here are overwritten (add your own below)
SITE_NAME=shop
PORT=3100
# END siteops site_user: managed, changes here are overwritten (add your own below)
# BEGIN siteops postgres_db: managed, changes here are overwritten
DATABASE_URL=postgresql://shop:secret@127.0.0.1:5432/shop
# END siteops postgres_db: managed, changes here are overwritten
# my own settings
GREETING=hello
GREETING=hi
"""


@pytest.fixture
def env(tmp_path: Path) -> Path:
    path = tmp_path / ".env"
    path.write_text(ENV, encoding="utf-8")
    path.chmod(0o600)
    return path


def test_parse_marks_the_roles_keys_as_managed(env: Path) -> None:
    entries = parse_env(env.read_text(encoding="utf-8"))
    assert [(e["key"], e["managed"]) for e in entries] == [
        ("SITE_NAME", True), ("PORT", True), ("DATABASE_URL", True),
        ("GREETING", False), ("GREETING", False),
    ]  # fmt: skip


def test_set_replaces_the_operators_line_appends_new_ones_and_keeps_the_rest(env: Path) -> None:
    done = change_env(str(env), {"GREETING": "hey there", "NEW": "1"}, [])
    assert done == {"refused": [], "changed": ["GREETING", "NEW"]}
    text = env.read_text(encoding="utf-8")
    assert (
        text == ENV.replace("GREETING=hello\nGREETING=hi\n", "GREETING='hey there'\n") + "NEW=1\n"
    )
    assert env.stat().st_mode & 0o777 == 0o600
    assert env.stat().st_uid == os.getuid()
    # The same values again change nothing.
    assert change_env(str(env), {"GREETING": "hey there"}, [])["changed"] == []
    assert change_env(str(env), {}, ["NEW", "ABSENT"])["changed"] == ["NEW"]
    assert "NEW=" not in env.read_text(encoding="utf-8")


def test_managed_keys_are_refused_and_the_file_is_untouched(env: Path) -> None:
    assert change_env(str(env), {"PORT": "1", "X": "y"}, ["DATABASE_URL"]) == {
        "refused": ["DATABASE_URL", "PORT"], "changed": []}  # fmt: skip
    assert env.read_text(encoding="utf-8") == ENV


@pytest.mark.parametrize(
    "value", ["plain", "with space", "a$HOME${X}`b`", 'it\'s "quoted" \\ back', "", "=x="]
)
def test_values_read_back_as_they_were_given(value: str) -> None:
    assert _unquote(_quote(value)) == value
    if "$" in value:  # never left where systemd would expand it
        assert _quote(value).startswith("'") or "\\$" in _quote(value)


def test_bad_assignments_are_refused_naming_the_key_but_never_the_value() -> None:
    with pytest.raises(SiteModelError) as caught:
        parse_assignments(["GOOD=1", "9BAD=s3cret"])
    assert "'9BAD'" in str(caught.value) and "s3cret" not in str(caught.value)
    with pytest.raises(SiteModelError) as caught:
        parse_assignments(["TOKEN=line1\nline2"])
    assert "TOKEN: a value must be one line" in str(caught.value)
    assert "line1" not in str(caught.value)
    with pytest.raises(SiteModelError, match="expected KEY=VALUE"):
        parse_assignments(["NOVALUE"])
    assert parse_assignments(["A=b=c", "EMPTY="]) == {"A": "b=c", "EMPTY": ""}


def test_rotation_needs_the_database_url_siteops_wrote(env: Path) -> None:
    # The operator's own DATABASE_URL below the blocks is not siteops' to rotate.
    env.write_text("DATABASE_URL=postgresql://shop:abc@127.0.0.1:5432/shop\n", encoding="utf-8")
    assert rotate_db_password(str(env), "shop")["error"].startswith("no DATABASE_URL written")
    assert env.read_text(encoding="utf-8").endswith("abc@127.0.0.1:5432/shop\n")
