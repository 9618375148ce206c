"""The passwords siteops keeps in a site's ``.env``: how one is read, how one is made.

Shared by the filters of the roles that read them on the controller (redis_site)
and by siteops.hosting.postgres_sites, which reads and makes them on the host.
"""

from __future__ import annotations

import re
import secrets
import string

#: What a siteops password is made of: letters and digits (no quoting anywhere).
PASSWORD_CHARS = string.ascii_letters + string.digits


def env_password(text: str | None, key: str) -> str | None:
    """The password of the ``.env`` line ``KEY=<scheme>://<user>:<password>@...``, if any.

    Passwords siteops makes are letters and digits only; anything else is not
    taken as one.
    """
    line = re.compile(rf"^{re.escape(key)}=[a-z]+://[^:\n]+:([A-Za-z0-9]+)@", re.MULTILINE)
    match = line.search(text) if isinstance(text, str) else None
    return match.group(1) if match else None


def new_password(length: int) -> str:
    """A new password of ``length`` letters and digits, from the system's secure source."""
    return "".join(secrets.choice(PASSWORD_CHARS) for _ in range(length))
