"""postgres_db's PostgreSQL logic: module_utils/postgres.py and siteops.hosting.postgres_sites."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from ansible_collections.siteops.hosting.plugins.module_utils import (  # type: ignore[import-untyped]
    postgres as pg,
)
from ansible_collections.siteops.hosting.plugins.module_utils import site_secrets

from tests.conftest import load_plugin

MODULE = Path(__file__).resolve().parent.parent / "plugins" / "modules" / "postgres_sites.py"


@pytest.fixture(scope="module")
def module() -> ModuleType:
    return load_plugin(MODULE, "siteops_test_postgres_sites")


def _scram(password: str, salt: bytes = b"0123456789abcdef", iterations: int = 4096) -> str:
    """A SCRAM-SHA-256 verifier as PostgreSQL stores it (RFC 5802, independently of the filter)."""
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client = hmac.new(salted, b"Client Key", "sha256").digest()
    server = hmac.new(salted, b"Server Key", "sha256").digest()
    b64 = base64.b64encode
    stored = b64(hashlib.sha256(client).digest()).decode()
    return f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}${stored}:{b64(server).decode()}"


def test_scram_matches_only_the_password_it_was_made_from() -> None:
    verifier = _scram("s3cretXYZ")
    assert pg.scram_matches(verifier, "s3cretXYZ")
    assert not pg.scram_matches(verifier, "s3cretXYz")
    assert not pg.scram_matches("md5" + "0" * 32, "s3cretXYZ")
    assert not pg.scram_matches(None, "s3cretXYZ")
    assert not pg.scram_matches("", "s3cretXYZ")


def _row(site: str, password: str, **changes: Any) -> dict[str, Any]:
    row = {
        "site": site, "rolname": site, "rolcanlogin": True, "rolinherit": True,
        "rolsuper": False, "rolcreatedb": False, "rolcreaterole": False,
        "rolreplication": False, "rolconnlimit": 20, "rolpassword": _scram(password),
        "datname": site, "owner": site, "encoding": "UTF8",
    }  # fmt: skip
    row.update(changes)
    return row


def test_roles_to_fix_names_missing_and_differing_roles_only() -> None:
    limits = {s: 20 for s in ["ok", "gone", "super", "limit", "pw", "own"]}
    limits["own"] = 5
    passwords = {s: f"pw{s}" for s in limits}
    rows = [
        _row("ok", "pwok"),
        _row("gone", "x", rolname=None, rolpassword=None),
        _row("super", "pwsuper", rolsuper=True),
        _row("limit", "pwlimit", rolconnlimit=-1),
        _row("pw", "changed"),
        _row("own", "pwown", rolconnlimit=5),
    ]
    assert pg.roles_to_fix(rows, limits, passwords) == ["gone", "super", "limit", "pw"]
    assert pg.roles_to_fix({}, {"new": 20}, {"new": "p"}) == ["new"]


def test_databases_to_fix_names_missing_or_foreign_databases() -> None:
    rows = [
        _row("ok", "p"),
        _row("nodb", "p", datname=None, owner=None, encoding=None),
        _row("foreign", "p", owner="postgres"),
        _row("latin", "p", encoding="LATIN1"),
    ]
    names = ["ok", "nodb", "foreign", "latin", "unread"]
    assert pg.databases_to_fix(rows, names) == ["nodb", "foreign", "latin", "unread"]


def test_fix_sql_makes_only_what_is_listed_quoted_with_the_sites_limits() -> None:
    limits = {"shop": 5, "blog": 20}
    passwords = {"shop": "it's", "blog": "b1"}
    lines = pg.fix_sql(["shop"], ["blog"], ["blog"], limits, passwords).splitlines()
    role_missing = "WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'shop')"
    assert lines[0] == f"""SELECT 'CREATE ROLE "shop"' {role_missing} \\gexec"""
    assert lines[1] == (
        'ALTER ROLE "shop" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION '
        "INHERIT CONNECTION LIMIT 5 PASSWORD 'it''s';"
    )
    create = """SELECT 'CREATE DATABASE "blog" OWNER "blog" ENCODING ''UTF8''' WHERE NOT EXISTS"""
    assert lines[2].startswith(create)
    assert lines[2].endswith("(SELECT 1 FROM pg_database WHERE datname = 'blog') \\gexec")
    assert "RAISE EXCEPTION 'database % exists in encoding %, not UTF8', 'blog'" in lines[3]
    assert lines[4:] == [
        'ALTER DATABASE "blog" OWNER TO "blog";',
        'REVOKE CONNECT, TEMPORARY ON DATABASE "blog" FROM PUBLIC;',
        'GRANT CONNECT, TEMPORARY ON DATABASE "blog" TO "blog";',
    ]
    # Each site's own limit (database_sites resolves the default); nothing listed, nothing to run.
    blog_only = pg.fix_sql(["blog"], [], [], limits, passwords)
    assert "CONNECTION LIMIT 20 PASSWORD 'b1';" in blog_only
    assert pg.fix_sql([], [], [], limits, passwords) == ""


def test_public_sites_are_the_rows_marked_public() -> None:
    rows = [_row("a", "p", public=True), _row("b", "p", public=False), _row("c", "p")]
    assert pg.public_sites(rows) == ["a"]
    assert pg.public_sites({}) == []


def test_the_read_names_every_site_quoted_and_answers_one_json_array() -> None:
    sql = pg.state_sql(["shop", "o'neil"])
    assert sql.startswith("SELECT coalesce(json_agg(t), '[]') FROM (")
    assert "unnest(ARRAY['shop', 'o''neil']::text[])" in sql
    assert "{sites}" not in sql


def test_a_sites_password_is_read_from_its_env_line_only_when_siteops_made_it() -> None:
    env = "APP_ENV=production\nDATABASE_URL=postgresql://shop:Ab12cd@127.0.0.1:5432/shop\n"
    assert site_secrets.env_password(env, "DATABASE_URL") == "Ab12cd"
    assert site_secrets.env_password(env, "REDIS_URL") is None
    odd = "DATABASE_URL=postgresql://shop:p%40ss@127.0.0.1:5432/shop\n"
    assert site_secrets.env_password(odd, "DATABASE_URL") is None  # not letters and digits
    assert site_secrets.env_password(None, "DATABASE_URL") is None  # no .env yet
    new = site_secrets.new_password(32)
    assert len(new) == 32 and new.isalnum() and new != site_secrets.new_password(32)


def test_each_sites_env_entry_gets_its_name_everywhere_and_its_password_in_the_block_only(
    module: ModuleType,
) -> None:
    spec = {
        "path": "/srv/www/{site}/shared/.env",
        "state": "block",
        "marker": "# {mark} siteops postgres_db",
        "block": "DATABASE_URL=postgresql://{site}:{password}@127.0.0.1:5432/{site}",
        "owner": "{site}",
        "mode": "0600",
        "insert_after": None,
    }
    entry = module.site_entry(spec, "shop", "Pw1")
    assert entry == {
        "path": "/srv/www/shop/shared/.env",
        "state": "block",
        "marker": "# {mark} siteops postgres_db",
        "block": "DATABASE_URL=postgresql://shop:Pw1@127.0.0.1:5432/shop",
        "owner": "shop",
        "mode": "0600",
        "insert_after": None,
    }
    assert module.psql_argv("/usr/lib/postgresql/17/bin/psql", "postgres")[:4] == [
        "runuser", "-u", "postgres", "--",
    ]  # fmt: skip


def test_the_read_rows_decide_what_the_script_fixes(module: ModuleType) -> None:
    # What psql -tA prints for the read: one JSON array, one row per site.
    rows = json.loads(
        json.dumps([_row("ok", "pwok"), _row("new", "x", rolname=None, datname=None)])
    )
    limits = {"ok": 20, "new": 20}
    passwords = {"ok": "pwok", "new": "fresh"}
    roles = pg.roles_to_fix(rows, limits, passwords)
    databases = pg.databases_to_fix(rows, passwords)
    assert (roles, databases) == (["new"], ["new"])
    script = pg.fix_sql(roles, databases, databases, limits, passwords)
    assert "'fresh'" in script and "pwok" not in script
