#!/usr/bin/python
"""Ensure a set of directories, files, links and absent paths in one call."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: site_files
short_description: Ensure many directories, files and links in one call, reporting each changed path
description:
  - Ensures every entry of O(files), in order, with its owner, group and mode,
    in one module call instead of one call per path (a task per path is a round
    trip to the host). Used by the siteops roles for a site's tree, units and
    settings.
  - Entries with O(files[].template) are rendered on the controller by the action
    plugin of the same name, with the task's variables and the entry's own
    O(files[].vars), and arrive here as O(files[].content).
  - A file is replaced atomically (written beside it, checked by
    O(files[].validate) when given, then renamed over it). Only what differs is
    changed; RV(changed_paths) names each path that was (or, in check mode, would be).
version_added: 0.1.0
author: siteops
options:
  files:
    description: The paths to ensure, in order (a directory before what it holds).
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description: Absolute path.
        type: path
        required: true
      state:
        description:
          - V(directory), V(file) (with O(files[].content)), V(block) (the lines
            of O(files[].block) between the two O(files[].marker) lines, the rest
            of the file left alone, as ansible.builtin.blockinfile does),
            V(block_absent) (that block and its marker lines removed, the rest of
            the file, its owner and mode kept; nothing when it has none), V(touch)
            (an empty file when missing, its content and times left alone),
            V(link) (to O(files[].src)), V(assemble) (a file made of the
            regular files of the directory O(files[].src) whose names match
            O(files[].regexp), in name order, as ansible.builtin.assemble makes
            it; in check mode, as the entries before it would leave them) or
            V(absent) (a file, link or whole directory removed).
        type: str
        choices: [directory, file, block, block_absent, touch, link, assemble, absent]
      block:
        description: The managed lines (V(block)).
        type: str
      marker:
        description: The marker line, C({mark}) standing for C(BEGIN) and C(END) (V(block)).
        type: str
      insert_after:
        description:
          - Where a new block goes (V(block)) - after the last line matching this
            regular expression; at the end when none does, or when not given.
        type: str
      insert_before:
        description: V(BOF) puts a new block at the start of the file (V(block)).
        type: str
        choices: [BOF]
        default: file
      content:
        description: The file's content (V(file)).
        type: str
      template:
        description: A template of the role, rendered by the action plugin into O(files[].content).
        type: str
      vars:
        description: Variables for O(files[].template) only (for example C(item)).
        type: dict
      exists:
        description:
          - Paths on the host that O(files[].template) may depend on, by name
            (such as V(certificate) for the path of a site's certificate). The
            action plugin renders the template once for each combination, the
            template reading C(exists.<name>) (true or false), and hands the
            module the O(files[].variants) that differ; no read of the host
            beforehand.
        type: dict
      variants:
        description:
          - The possible contents of a V(file), each with the paths that must exist
            (true) or not (false) for it; the first that matches the host is
            written. Made by the action plugin from O(files[].exists).
        type: list
        elements: dict
        suboptions:
          when:
            description: Path to whether it must exist (links followed).
            type: dict
            required: true
          content:
            description: The file's content when O(files[].variants[].when) holds.
            type: str
            required: true
      src:
        description: Where a V(link) points; the directory of fragments (V(assemble)).
        type: str
      regexp:
        description: Only fragments whose name matches this regular expression (V(assemble)).
        type: str
      force:
        description:
          - A V(link) that exists and points elsewhere is replaced; when false it is left alone.
        type: bool
        default: true
      owner:
        description: Owner (name). Not for links.
        type: str
      group:
        description: Group (name). Not for links.
        type: str
      mode:
        description: Mode as an octal string such as V("0640"). Not for links.
        type: str
      validate:
        description:
          - A command checking the new content before it replaces the file; C(%s) is the new file.
        type: str
      backup:
        description:
          - Before a V(file) whose content differs is replaced, the old one is kept beside it
            (C(<path>.<time>~), as ansible.builtin.template's O(backup) does); RV(backups) names it.
        type: bool
        default: false
      acl:
        description:
          - POSIX ACL entries the path must have besides its mode, in setfacl's form
            (V(user:www-data:x), V(default:user:www-data:rX)); missing or different ones
            are set with one C(setfacl -m), other entries are left alone. Not for links.
        type: list
        elements: str
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Ensure the site's tree and log rotation are in place
  siteops.hosting.site_files:
    files:
      - {path: /var/www/shop, state: directory, owner: shop, group: shop, mode: "0750"}
      - {path: /var/www/shop/current, state: link, src: releases/placeholder, force: false}
      - path: /etc/logrotate.d/siteops-shop
        template: etc/logrotate.d/siteops-site.j2
        vars: {item: {key: shop}}
        owner: root
        group: root
        mode: "0644"
        validate: logrotate --debug %s
  register: tree
"""

RETURN = r"""
changed_paths:
  description: The paths that changed (in check mode, that would change), in the order given.
  type: list
  elements: str
  returned: always
created_paths:
  description: >-
    The paths among RV(changed_paths) that did not exist before (in check mode,
    that would be created).
  type: list
  elements: str
  returned: always
backups:
  description: >-
    For each replaced V(file) with O(files[].backup), its path and where the
    old content was kept.
  type: dict
  returned: always
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.siteops.hosting.plugins.module_utils.site_files import (
    ENTRY,
    Ensurer,
    EntryError,
    ensure_entries,
)

__all__ = ["ENTRY", "Ensurer", "EntryError", "main"]


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(files=dict(type="list", elements="dict", required=True, options=ENTRY)),
        supports_check_mode=True,
    )
    ensurer = Ensurer(check=module.check_mode)
    failure = ensure_entries(ensurer, module.params["files"])
    if failure is not None:
        module.fail_json(
            msg=failure,
            changed_paths=ensurer.changed,
            created_paths=ensurer.created,
            backups=ensurer.backups,
        )
    result: dict[str, Any] = {
        "changed": bool(ensurer.changed),
        "changed_paths": ensurer.changed,
        "created_paths": ensurer.created,
        "backups": ensurer.backups,
    }
    if module._diff:
        result["diff"] = ensurer.diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
