#!/usr/bin/python
"""The host's distribution and release as facts, from /etc/os-release alone."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: debian_release
short_description: The host's distribution and release, as the setup module names them
description:
  - Sets the facts C(ansible_distribution), C(ansible_distribution_version),
    C(ansible_distribution_major_version) and C(ansible_distribution_release)
    from C(/etc/os-release) (and C(/etc/debian_version) for a Debian point
    release), the values the setup module's C(distribution) subset gives on
    Debian.
  - The roles choose per-release settings with them (PostgreSQL's version,
    nginx's http2 directive). The setup module loads Ansible's whole fact
    machinery first, ~0.2 s of every run; this reads two small files.
  - Reads only; runs in check mode as well.
version_added: 0.1.0
author: siteops
options: {}
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  facts:
    support: full
"""

EXAMPLES = r"""
- name: Read the host's Debian release (it decides per-release settings)
  siteops.hosting.debian_release:
"""

RETURN = r"""
ansible_facts:
  description: The distribution facts.
  type: dict
  returned: always
  sample:
    ansible_distribution: Debian
    ansible_distribution_version: "13.1"
    ansible_distribution_major_version: "13"
    ansible_distribution_release: trixie
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.siteops.hosting.plugins.module_utils.debian import (
    DEBIAN_VERSION,
    OS_RELEASE,
    parse_os_release,
    release_facts,
)

__all__ = ["DEBIAN_VERSION", "OS_RELEASE", "main", "parse_os_release", "release_facts"]


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return None


def main() -> None:
    module = AnsibleModule(argument_spec={}, supports_check_mode=True)
    os_release = _read(OS_RELEASE)
    if os_release is None:
        module.fail_json(msg=f"{OS_RELEASE} cannot be read: the host's release is unknown")
    facts: dict[str, Any] = release_facts(os_release or "", _read(DEBIAN_VERSION))
    module.exit_json(changed=False, ansible_facts=facts)


if __name__ == "__main__":
    main()
