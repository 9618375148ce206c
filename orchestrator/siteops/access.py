"""The rules of deploy access grants: a grant's name and its OpenSSH public key.

A site's record grants ``access`` (``{name: {key}}``): each key may deploy,
roll back and read that one site (roles/site_access). The roles check the same
rules (plugins/filter/siteops.py: ``ACCESS_NAME``, ``access_key_blob``;
tests/test_filters.py holds the two equal).
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from siteops.model import HostSites

# A grant's name: it becomes a word of a sudoers rule and of the forced command.
ACCESS_NAME_PATTERN = r"^[a-z][a-z0-9-]{0,31}$"
ACCESS_NAME_RE = re.compile(ACCESS_NAME_PATTERN)
ACCESS_KEY_TYPES = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-rsa",
)


def check_access_name(name: str) -> str:
    if not ACCESS_NAME_RE.match(name):
        raise ValueError(
            f"access name {name!r} must be 1-32 characters of lowercase a-z, digits and "
            "hyphens, starting with a letter"
        )
    return name


def check_access_key(key: str) -> str:
    """``key`` as one clean line ``type base64 [comment]``; ``ValueError`` naming the rule."""
    line = key.strip()
    if any(ord(c) < 32 or ord(c) == 127 for c in line):
        raise ValueError("an access key is one line without control characters")
    parts = line.split()
    if len(parts) < 2 or parts[0] not in ACCESS_KEY_TYPES:
        raise ValueError(
            "an access key must be one OpenSSH public key line (the .pub file): type ("
            + ", ".join(ACCESS_KEY_TYPES) + "), base64 key, optional comment; no options"
        )  # fmt: skip
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except ValueError:
        raise ValueError("the access key's base64 part does not decode") from None
    length = int.from_bytes(blob[:4], "big") if len(blob) >= 4 else -1
    if blob[4 : 4 + length].decode("ascii", "replace") != parts[0]:
        raise ValueError(f"the access key's base64 part is not a {parts[0]} key")
    return " ".join(parts)


def key_blob(key: str) -> str:
    """The base64 key of a checked key line (what makes two lines the same key)."""
    return key.split()[1]


def key_fingerprint(key: str) -> str:
    """``SHA256:…`` as ``ssh-keygen -lf`` prints it."""
    digest = hashlib.sha256(base64.b64decode(key_blob(key))).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def public_key(value: str) -> str:
    """The key line of ``value``: a public key file's first line, or ``value`` itself, checked."""
    path = Path(value).expanduser()
    if "\n" not in value and len(value) < 4096 and path.is_file():
        if path.suffix != ".pub" and "PRIVATE KEY" in path.read_text("utf-8", "replace"):
            raise ValueError(f"{path} is a private key; give its .pub file")
        value = (path.read_text("utf-8", "replace").strip().splitlines() or [""])[0]
    return check_access_key(value)


def grants(sites: HostSites, names: list[str]) -> list[dict[str, Any]]:
    """Each grant of the named sites (all without names): site, name, fingerprint, comment."""
    out: list[dict[str, Any]] = []
    for site, record in sorted(sites.sites.items()):
        if names and site not in names:
            continue
        for name, grant in sorted(record.access.items()):
            out.append({"site": site, "name": name, "fingerprint": key_fingerprint(grant.key),
                        "comment": " ".join(grant.key.split()[2:])})  # fmt: skip
    return out
