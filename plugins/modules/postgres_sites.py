#!/usr/bin/python
"""Ensure many sites' PostgreSQL role, database, rights and DATABASE_URL with one read."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: postgres_sites
short_description: Ensure each site's PostgreSQL role, database, rights and DATABASE_URL in one call
description:
  - For every site of O(sites), on the host and in one call. The password
    already in the site's C(.env) (its DATABASE_URL) is kept; a site without
    one gets a new one, made here. Then one query reads every site's role,
    database and PUBLIC's rights on it. One psql script fixes what is missing
    or differs, and the C(.env) block with the DATABASE_URL is ensured.
  - A site's role logs in and inherits and is nothing more (superuser,
    createdb, createrole, replication). It has the site's connection limit and
    password. Its database is owned by it, in UTF-8; an existing one in another
    encoding stops the script, naming it. PUBLIC may neither connect to a site's
    database nor make temporary tables there; the site's role may.
  - Passwords never leave the host. The script goes to psql's standard input,
    and every password is masked in what the module returns.
  - psql runs as the database superuser through C(runuser), without a second
    connection as the postgres user (C(become_user)).
  - A no-op costs one query. In check mode nothing is changed; what would
    change is reported.
version_added: 0.1.0
author: siteops
options:
  sites:
    description: The sites that have a database, each with its connection limit.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: The site's name; its role and database are named so.
        type: str
        required: true
      connection_limit:
        description: The most connections the site's role may hold at once.
        type: int
        required: true
  env:
    description:
      - The C(.env) block entry, as one entry of siteops.hosting.site_files (C(state=block)).
        C({site}) in its strings is replaced by the site's name, C({password}) in its
        O(env.block) by the site's password.
    type: dict
    required: true
  key:
    description: The C(.env) variable holding the URL with the password (the one of O(env.block)).
    type: str
    default: DATABASE_URL
  password_length:
    description: The length of a new password (letters and digits).
    type: int
    default: 32
  psql:
    description: The psql program (the server's own, not Debian's wrapper).
    type: path
    default: psql
  user:
    description: The Unix user psql runs as (peer authentication).
    type: str
    default: postgres
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Ensure each site has its own role and database, and its DATABASE_URL
  siteops.hosting.postgres_sites:
    psql: /usr/lib/postgresql/17/bin/psql
    sites:
      - {name: shop, connection_limit: 20}
    env:
      path: /srv/www/{site}/shared/.env
      state: block
      marker: "# {mark} siteops postgres_db"
      block: "DATABASE_URL=postgresql://{site}:{password}@127.0.0.1:5432/{site}"
      owner: "{site}"
      group: "{site}"
      mode: "0600"
"""

RETURN = r"""
roles:
  description: The sites whose role was created or corrected (in check mode, would be).
  type: list
  elements: str
  returned: always
databases:
  description: The sites whose database was created or corrected (in check mode, would be).
  type: list
  elements: str
  returned: always
public:
  description: The sites whose database PUBLIC could still connect to (in check mode, could).
  type: list
  elements: str
  returned: always
changed_paths:
  description: The C(.env) files that changed (in check mode, that would change).
  type: list
  elements: str
  returned: always
"""

import json
from collections.abc import Mapping
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.siteops.hosting.plugins.module_utils.postgres import (
    databases_to_fix,
    fix_sql,
    public_sites,
    roles_to_fix,
    state_sql,
)
from ansible_collections.siteops.hosting.plugins.module_utils.site_files import (
    ENTRY,
    ensure_files,
)
from ansible_collections.siteops.hosting.plugins.module_utils.site_secrets import (
    env_password,
    new_password,
)


def psql_argv(psql: str, user: str) -> list[str]:
    """psql as ``user`` on the maintenance database: quiet, stopping at the first error."""
    return [
        "runuser",
        "-u",
        user,
        "--",
        psql,
        "-X",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "-d",
        "postgres",
    ]


def site_entry(spec: Mapping[str, Any], site: str, password: str) -> dict[str, Any]:
    """The ``.env`` entry of ``site``: ``{site}`` filled in, ``{password}`` in the block only."""
    entry: dict[str, Any] = {}
    for key, value in spec.items():
        if isinstance(value, str):
            value = value.replace("{site}", site)
            if key == "block":
                value = value.replace("{password}", password)
        entry[key] = value
    return entry


def read_text(path: str) -> str | None:
    """The file's text, or None when it is missing."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            sites=dict(
                type="list",
                elements="dict",
                required=True,
                options=dict(
                    name=dict(type="str", required=True),
                    connection_limit=dict(type="int", required=True),
                ),
            ),
            env=dict(type="dict", required=True, options=ENTRY),
            key=dict(type="str", default="DATABASE_URL"),
            password_length=dict(type="int", default=32, no_log=False),
            psql=dict(type="path", default="psql"),
            user=dict(type="str", default="postgres"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    sites = params["sites"]
    spec = params["env"]
    passwords: dict[str, str] = {}
    for site in sites:
        name = site["name"]
        found = env_password(read_text(str(spec["path"]).replace("{site}", name)), params["key"])
        passwords[name] = found or new_password(params["password_length"])
        # Masked wherever the module's answer holds it (psql may quote a statement).
        module.no_log_values.add(passwords[name])
    done: dict[str, Any] = {"roles": [], "databases": [], "public": [], "changed_paths": []}
    if not sites:
        module.exit_json(changed=False, **done)
    argv = psql_argv(params["psql"], params["user"])
    rc, out, err = module.run_command([*argv, "-tA", "-c", state_sql(passwords)], cwd="/")
    if rc != 0:
        module.fail_json(msg=f"psql could not read the sites' roles (exit {rc}): {err.strip()}")
    rows = json.loads(out or "[]")
    limits = {s["name"]: s["connection_limit"] for s in sites}
    done["roles"] = roles_to_fix(rows, limits, passwords)
    done["databases"] = databases_to_fix(rows, passwords)
    # A database created by the script gets PostgreSQL's default rights: PUBLIC's go too.
    done["public"] = sorted(set(public_sites(rows)) | set(done["databases"]))
    if (done["roles"] or done["databases"] or done["public"]) and not module.check_mode:
        script = fix_sql(done["roles"], done["databases"], done["public"], limits, passwords)
        rc, _out, err = module.run_command(argv, data=script, cwd="/")
        if rc != 0:
            module.fail_json(msg=f"psql failed (exit {rc}): {err.strip()}", **done)
    entries = [site_entry(spec, name, password) for name, password in passwords.items()]
    # No diff: the block holds the password.
    changed_paths = ensure_files(module, entries, done, diff=False)
    changed = bool(done["roles"] or done["databases"] or done["public"] or changed_paths)
    module.exit_json(changed=changed, **done)


if __name__ == "__main__":
    main()
