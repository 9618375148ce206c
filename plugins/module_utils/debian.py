"""A host's Debian release from its two files, as the setup module names the facts.

Shared by the module siteops.hosting.debian_release (which reads the files on
the host) and the siteops command (whose lock session reads them in the same
round trip, so that a run need not ask again). Standard library only: the
command loads this file by its path.
"""

from __future__ import annotations

# The files, in the order release_facts takes them.
OS_RELEASE = "/etc/os-release"
DEBIAN_VERSION = "/etc/debian_version"


def parse_os_release(text: str) -> dict[str, str]:
    """KEY=value lines of os-release(5), quotes removed."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            fields[key] = value
    return fields


def release_facts(os_release: str, debian_version: str | None) -> dict[str, str]:
    """The facts for an os-release text (and /etc/debian_version's, if the host has one)."""
    fields = parse_os_release(os_release)
    name = fields.get("ID", "linux")
    version = fields.get("VERSION_ID", "")
    point = (debian_version or "").strip()
    # Debian's point release ("13.1") is in /etc/debian_version; testing says "trixie/sid".
    if name == "debian" and point[:1].isdigit():
        version = point
    # Named as the setup module returns them: Ansible keeps them as ansible_facts.distribution, …
    return {
        "ansible_distribution": "Debian" if name == "debian" else name.capitalize(),
        "ansible_distribution_version": version,
        "ansible_distribution_major_version": version.split(".")[0] if version else "",
        "ansible_distribution_release": fields.get("VERSION_CODENAME", ""),
    }
