"""What siteops.hosting.postgres_sites reads and changes: each site's role, database and rights.

One read of every site's role and database (:func:`state_sql`), then what
differs (:func:`roles_to_fix`, :func:`databases_to_fix`, :func:`public_sites`)
and one psql script that fixes it (:func:`fix_sql`). Pure functions: the
module runs psql, the unit tests check these.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from typing import Any

# The read of every site (one row each); {sites} is the quoted names' list.
_STATE_SQL = (
    "SELECT coalesce(json_agg(t), '[]') FROM ("
    "SELECT s.site, r.rolname, r.rolcanlogin, r.rolinherit, r.rolsuper, r.rolcreatedb, "
    "r.rolcreaterole, r.rolreplication, r.rolconnlimit, a.rolpassword, "
    "d.datname, pg_get_userbyid(d.datdba) AS owner, "
    "pg_encoding_to_char(d.encoding) AS encoding, "
    "d.datname IS NOT NULL AND (d.datacl IS NULL OR EXISTS ("
    "SELECT 1 FROM aclexplode(d.datacl) x "
    "WHERE x.grantee = 0 AND x.privilege_type IN ('CONNECT', 'TEMPORARY'))) AS public "
    "FROM unnest(ARRAY[{sites}]::text[]) AS s(site) "
    "LEFT JOIN pg_roles r ON r.rolname = s.site "
    "LEFT JOIN pg_authid a ON a.rolname = s.site "
    "LEFT JOIN pg_database d ON d.datname = s.site) t"
)


def state_sql(sites: Iterable[str]) -> str:
    """One query for every site's role, database and PUBLIC's rights, as one JSON array.

    One row per site: ``site``, the role's ``rolname`` (null when missing) and
    attributes, its ``rolpassword`` verifier, the database's ``datname`` (null
    when missing), ``owner`` and ``encoding``, and ``public``: whether PUBLIC
    may connect to it or make temporary tables there. Every name is quoted.
    """
    return _STATE_SQL.replace("{sites}", ", ".join(_pg_literal(site) for site in sites))


_SCRAM = re.compile(r"SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)")


def scram_matches(verifier: str | None, password: str) -> bool:
    """Whether ``password`` is the one PostgreSQL's SCRAM-SHA-256 ``verifier`` was made from.

    ``verifier`` is ``pg_authid.rolpassword``:
    ``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`` (RFC 5802,
    7677). siteops' passwords are letters and digits, which SASLprep leaves as
    they are. Anything else (md5, none) does not match.
    """
    found = _SCRAM.fullmatch(verifier or "")
    if not found:
        return False
    iterations, salt, stored = int(found[1]), base64.b64decode(found[2]), found[3]
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    wanted = base64.b64encode(hashlib.sha256(client_key).digest()).decode("ascii")
    return hmac.compare_digest(wanted, stored)


def roles_to_fix(rows: Any, limits: Mapping[str, int], passwords: Mapping[str, str]) -> list[str]:
    """The sites whose PostgreSQL role is missing or differs from what siteops makes.

    ``rows`` is the read of :func:`state_sql` (one row per site: ``site``,
    ``rolname`` (null when missing), the role's attributes, ``rolpassword``).
    A role must log in and inherit, be nothing more (superuser, createdb,
    createrole, replication), have the site's connection limit and the
    site's password. ``limits`` holds each site's connection limit, by site.
    """
    by_site = {row["site"]: row for row in _rows(rows)}
    out: list[str] = []
    for site, limit in limits.items():
        row = by_site.get(site)
        if (
            row is None
            or row.get("rolname") is None
            or not row.get("rolcanlogin")
            or not row.get("rolinherit")
            or row.get("rolsuper")
            or row.get("rolcreatedb")
            or row.get("rolcreaterole")
            or row.get("rolreplication")
            or row.get("rolconnlimit") != limit
            or not scram_matches(row.get("rolpassword"), passwords[site])
        ):
            out.append(site)
    return out


def databases_to_fix(rows: Any, sites: Iterable[str]) -> list[str]:
    """The sites whose database is missing, not owned by the site's role, or not UTF-8."""
    by_site = {row["site"]: row for row in _rows(rows)}
    out: list[str] = []
    for site in sites:
        row = by_site.get(site, {})
        if row.get("datname") is None or row.get("owner") != site or row.get("encoding") != "UTF8":
            out.append(site)
    return out


def public_sites(rows: Any) -> list[str]:
    """The sites whose database PUBLIC may still connect to (the read's ``public`` column)."""
    return [row["site"] for row in _rows(rows) if row.get("public")]


def _pg_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _pg_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def fix_sql(
    roles: Iterable[str],
    databases: Iterable[str],
    public: Iterable[str],
    limits: Mapping[str, int],
    passwords: Mapping[str, str],
) -> str:
    """One psql script making each listed site's role, database and rights what siteops makes.

    ``roles``, ``databases`` and ``public`` are :func:`roles_to_fix`,
    :func:`databases_to_fix` and the databases PUBLIC may still connect
    to. A role logs in and inherits and is nothing more, with the site's
    connection limit and password; a database is owned by the site's role,
    in UTF-8 (an existing one in another encoding stops the script, naming
    it); PUBLIC may neither connect to a site's database nor make temporary
    tables there, the site's role may. Roles and databases are created only
    when missing (psql's ``\\gexec``: CREATE DATABASE cannot run inside a
    function). The script holds passwords: it goes to psql's standard input.
    """
    # Names and texts are quoted (_pg_ident, _pg_literal) before they are put in.
    lines: list[str] = []
    for site in roles:
        limit = int(limits[site])
        role, name = _pg_ident(site), _pg_literal(site)
        missing = f"NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {name})"  # noqa: S608
        lines += [
            f"SELECT {_pg_literal(f'CREATE ROLE {role}')} WHERE {missing} \\gexec",
            f"ALTER ROLE {role} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
            f"INHERIT CONNECTION LIMIT {limit} PASSWORD {_pg_literal(passwords[site])};",
        ]
    for site in databases:
        owner, name = _pg_ident(site), _pg_literal(site)
        where = f"FROM pg_database WHERE datname = {name}"
        encoding = f"(SELECT pg_encoding_to_char(encoding) {where})"
        create = _pg_literal(f"CREATE DATABASE {owner} OWNER {owner} ENCODING 'UTF8'")
        lines += [
            f"SELECT {create} WHERE NOT EXISTS (SELECT 1 {where}) \\gexec",
            f"DO $siteops$ BEGIN IF {encoding} <> 'UTF8' THEN RAISE EXCEPTION "
            f"'database % exists in encoding %, not UTF8', {name}, {encoding}; "
            "END IF; END $siteops$;",
            f"ALTER DATABASE {owner} OWNER TO {owner};",
        ]
    for site in public:
        lines += [
            f"REVOKE CONNECT, TEMPORARY ON DATABASE {_pg_ident(site)} FROM PUBLIC;",
            f"GRANT CONNECT, TEMPORARY ON DATABASE {_pg_ident(site)} TO {_pg_ident(site)};",
        ]
    return "".join(line + "\n" for line in lines)


def _rows(rows: Any) -> list[Mapping[str, Any]]:
    """The read of :func:`state_sql`: a list of rows (anything else: none)."""
    return list(rows) if isinstance(rows, list) else []
