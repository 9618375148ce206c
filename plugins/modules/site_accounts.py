#!/usr/bin/python
"""Ensure many sites' system groups and nologin users, then their files, with one read."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: site_accounts
short_description: Ensure many system groups and nologin users with one read, then files
description:
  - Reads every account of O(accounts) with C(getent) (passwd and shadow for
    those names, and every group), then changes only the accounts that are
    missing or differ. Each account is a system group and a system user of
    that name. The user's primary group is its own and it is in no other
    group. It has the given home (not created here), shell and comment, and
    a locked password (C(!)).
  - With O(files), the entries as siteops.hosting.site_files takes them are
    ensured after the accounts, in the same call, so a new account can own
    its files. A no-op costs one module call.
  - Used by the siteops role site_user for each site's account and tree.
version_added: 0.1.0
author: siteops
options:
  accounts:
    description: The accounts to ensure.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: The group's and the user's name.
        type: str
        required: true
      home:
        description: The user's home directory (written into passwd, never created).
        type: path
        required: true
      shell:
        description: The user's shell (a nologin shell for a site).
        type: path
        required: true
      comment:
        description: The user's comment (GECOS) field.
        type: str
        required: true
  files:
    description:
      - Entries as siteops.hosting.site_files takes them (templates rendered
        by the action plugin), ensured after the accounts.
    type: list
    elements: dict
    default: []
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Ensure the site's group, nologin user and tree
  siteops.hosting.site_accounts:
    accounts:
      - {name: shop, home: /srv/www/shop, shell: /usr/sbin/nologin, comment: siteops site shop}
    files:
      - {path: /srv/www/shop, state: directory, owner: shop, group: shop, mode: "0750"}
"""

RETURN = r"""
groups:
  description: The groups created (in check mode, that would be).
  type: list
  elements: str
  returned: always
users:
  description: The users created or corrected (in check mode, that would be).
  type: list
  elements: str
  returned: always
changed_paths:
  description: The paths of O(files) that changed (in check mode, that would change).
  type: list
  elements: str
  returned: always
"""

from collections.abc import Iterable, Mapping
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.siteops.hosting.plugins.module_utils.site_files import (
    ENTRY,
    ensure_files,
)

LOCKED = "!"


def fields(text: str) -> list[list[str]]:
    """The colon-separated fields of each non-empty line of ``getent`` output."""
    return [line.split(":") for line in text.splitlines() if line]


def accounts_to_fix(
    passwd: list[list[str]],
    shadow: list[list[str]],
    group: list[list[str]],
    accounts: Iterable[Mapping[str, str]],
) -> dict[str, list[str]]:
    """The accounts whose group, and whose user, is missing or differs.

    ``passwd`` and ``shadow`` hold the entries of the accounts' names, ``group``
    every group (a site's user must be in no group but its own). A user differs
    when its primary group is not its own, its comment, home or shell differ,
    its password is not locked (``!``), or it is in another group. Returns
    ``{"groups": [...], "users": [...]}`` in the accounts' order.
    """
    users = {f[0]: f for f in passwd if len(f) >= 7}
    locked = {f[0]: f[1] for f in shadow if len(f) >= 2}
    gids: dict[str, str] = {}
    member_of: dict[str, set[str]] = {}
    for entry in group:
        if len(entry) < 4:
            continue
        gids[entry[0]] = entry[2]
        for member in filter(None, entry[3].split(",")):
            member_of.setdefault(member, set()).add(entry[0])
    out: dict[str, list[str]] = {"groups": [], "users": []}
    for account in accounts:
        name = account["name"]
        if name not in gids:
            out["groups"].append(name)
        user = users.get(name)
        if (
            user is None
            or user[3] != gids.get(name)
            or user[4] != account["comment"]
            or user[5] != account["home"]
            or user[6] != account["shell"]
            or locked.get(name) != LOCKED
            or member_of.get(name, set()) - {name}
        ):
            out["users"].append(name)
    return out


def user_command(account: Mapping[str, str], exists: bool) -> list[str]:
    """The useradd (new) or usermod (existing) command that makes the user as wanted."""
    common = [
        "--gid", account["name"],
        "--home-dir" if not exists else "--home", account["home"],
        "--shell", account["shell"],
        "--comment", account["comment"],
        "--password", LOCKED,
    ]  # fmt: skip
    if exists:
        # No group but its own: the supplementary list emptied.
        return ["usermod", *common, "--groups", "", "--", account["name"]]
    return ["useradd", "--system", "--no-create-home", *common, "--", account["name"]]


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            accounts=dict(
                type="list",
                elements="dict",
                required=True,
                options=dict(
                    name=dict(type="str", required=True),
                    home=dict(type="path", required=True),
                    shell=dict(type="path", required=True),
                    comment=dict(type="str", required=True),
                ),
            ),
            files=dict(type="list", elements="dict", default=[], options=ENTRY),
        ),
        supports_check_mode=True,
    )
    accounts = module.params["accounts"]
    names = [a["name"] for a in accounts]
    read: dict[str, list[list[str]]] = {"passwd": [], "shadow": [], "group": []}
    for database, keys in (("passwd", names), ("shadow", names), ("group", [])):
        if database != "group" and not keys:
            continue
        # getent exits 2 when a name is not found (a new account).
        rc, out, err = module.run_command(["getent", database, *keys])
        if rc not in (0, 2):
            module.fail_json(msg=f"getent {database} failed: {err.strip()}", rc=rc)
        read[database] = fields(out)
    fix = accounts_to_fix(read["passwd"], read["shadow"], read["group"], accounts)
    done: dict[str, Any] = {**fix, "changed_paths": []}
    if not module.check_mode:
        existing = {entry[0] for entry in read["passwd"]}
        for name in fix["groups"]:
            rc, _, err = module.run_command(["groupadd", "--system", "--", name])
            if rc != 0:
                module.fail_json(msg=f"groupadd {name} failed: {err.strip()}", **done)
        for account in accounts:
            if account["name"] in fix["users"]:
                command = user_command(account, account["name"] in existing)
                rc, _, err = module.run_command(command)
                if rc != 0:
                    module.fail_json(
                        msg=f"{command[0]} {account['name']} failed: {err.strip()}", **done
                    )
    changed_paths = ensure_files(module, module.params["files"], done)
    changed = bool(fix["groups"] or fix["users"] or changed_paths)
    module.exit_json(changed=changed, **done)


if __name__ == "__main__":
    main()
