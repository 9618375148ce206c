#!/usr/bin/python
"""Read, for many sites in one call, whether some of their paths exist (and a checksum)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: site_paths
short_description: Whether each site's paths exist, and their checksums, in one call
description:
  - For every site of O(sites) and every path pattern of O(files), says whether
    the path exists (links followed) and, for the labels in O(checksum), the
    SHA-1 of the file's content. One module call instead of a stat per path.
  - Reads only; runs in check mode as well.
version_added: 0.1.0
author: siteops
options:
  sites:
    description: Site names.
    type: list
    elements: str
    required: true
  files:
    description: Label -> absolute path, C({site}) standing for the site's name.
    type: dict
    required: true
  checksum:
    description: Labels whose files also get their SHA-1 (C(none) when missing).
    type: list
    elements: str
    default: []
  read:
    description:
      - Labels whose files are also read, as text (C(content); C(none) when missing).
      - The content may hold secrets (a site's .env); use C(no_log) on the task.
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Read each site's .env checksum and whether it runs the placeholder release
  siteops.hosting.site_paths:
    sites: [shop, blog]
    files:
      env: /var/www/{site}/shared/.env
      placeholder: /var/www/{site}/current/.siteops-placeholder
    checksum: [env]
  register: found
"""

RETURN = r"""
sites:
  description: By site, by label, C({exists, checksum}) (C(checksum) only for the labels asked).
  type: dict
  returned: always
  sample:
    shop:
      env: {exists: true, checksum: 0bd57ca5a5e9af89ad96b9801b0b9a3b7a1cd522}
      placeholder: {exists: false}
"""

import hashlib
import os
from typing import Any

from ansible.module_utils.basic import AnsibleModule


def read(
    sites: list[str], files: dict[str, str], checksum: list[str], contents: list[str] | None = None
) -> dict[str, Any]:
    """What each site's paths are: exists, the SHA-1 of the labels in ``checksum``

    and the text of the labels in ``contents``.
    """
    out: dict[str, Any] = {}
    for site in sites:
        found: dict[str, Any] = {}
        for label, pattern in files.items():
            path = pattern.replace("{site}", site)
            info: dict[str, Any] = {"exists": os.path.exists(path)}
            if label in checksum:
                info["checksum"] = None
                if os.path.isfile(path):
                    digest = hashlib.sha1()  # noqa: S324 - a change marker, as stat's checksum
                    with open(path, "rb") as handle:
                        for chunk in iter(lambda: handle.read(65536), b""):
                            digest.update(chunk)
                    info["checksum"] = digest.hexdigest()
            if label in (contents or []):
                info["content"] = None
                if os.path.isfile(path):
                    with open(path, encoding="utf-8", errors="replace") as handle:
                        info["content"] = handle.read()
            found[label] = info
        out[site] = found
    return out


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            sites=dict(type="list", elements="str", required=True),
            files=dict(type="dict", required=True),
            checksum=dict(type="list", elements="str", default=[]),
            read=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    files = {str(k): str(v) for k, v in module.params["files"].items()}
    module.exit_json(
        changed=False,
        sites=read(module.params["sites"], files, module.params["checksum"], module.params["read"]),
    )


if __name__ == "__main__":
    main()
