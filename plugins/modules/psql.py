#!/usr/bin/python
"""Run a psql script that changes something, as the postgres user, from standard input."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: psql
short_description: Run a changing SQL script with psql as the database superuser, in one call
description:
  - Runs C(runuser -u postgres -- PSQL -X -q -v ON_ERROR_STOP=1 -d postgres) with
    O(sql) on its standard input, never on a command line, as it may hold
    passwords. The first failing statement stops the script; the module then
    fails with psql's message.
  - For scripts that change something, built from a read that found a
    difference (postgres_db's roles, databases and rights to fix). The module
    always reports C(changed). In check mode it reports C(changed) and runs
    nothing.
  - One call, without a connection as the postgres user (C(become_user)),
    which would start an interpreter of its own on the host.
version_added: 0.1.0
author: siteops
options:
  sql:
    description: The script (psql's meta-commands such as C(\gexec) included).
    type: str
    required: true
  psql:
    description: The psql program (the server's own, not Debian's wrapper).
    type: path
    default: psql
  database:
    description: The database to connect to.
    type: str
    default: postgres
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
- name: Ensure each site's role, database and rights are as siteops makes them
  siteops.hosting.psql:
    psql: /usr/lib/postgresql/17/bin/psql
    sql: "{{ roles | siteops.hosting.pg_fix_sql(dbs, public, sites, passwords, 20) }}"
  no_log: true
"""

RETURN = r"""
stderr:
  description: What psql said (notices), when it succeeded.
  type: str
  returned: success
"""

from ansible.module_utils.basic import AnsibleModule


def argv(psql: str, database: str, user: str) -> list[str]:
    """The command: psql as ``user``, quiet, stopping at the first error, reading stdin."""
    return ["runuser", "-u", user, "--", psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", database]


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            sql=dict(type="str", required=True, no_log=True),
            psql=dict(type="path", default="psql"),
            database=dict(type="str", default="postgres"),
            user=dict(type="str", default="postgres"),
        ),
        supports_check_mode=True,
    )
    if module.check_mode:
        module.exit_json(changed=True)
    params = module.params
    rc, _out, err = module.run_command(
        argv(params["psql"], params["database"], params["user"]),
        data=params["sql"],
        cwd="/",
    )
    if rc != 0:
        module.fail_json(msg=f"psql failed (exit {rc}): {err.strip()}", rc=rc)
    module.exit_json(changed=True, stderr=err)


if __name__ == "__main__":
    main()
