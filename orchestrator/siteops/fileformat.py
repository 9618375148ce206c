"""The format version of ``sites.yml`` and the upgrades from older formats.

A ``sites.yml`` says which format it is in with its top-level key
``siteops_sites_format``. A file without the key was written before the format
was versioned: it is format 0. Loading a file upgrades it in memory, one format
at a time, through :data:`MIGRATIONS`; the file itself changes only when a
command that changes the sites saves them (always in :data:`SITES_FORMAT`).
A file in a format newer than :data:`SITES_FORMAT` is refused: this siteops
cannot know what it means.

To change the format: raise :data:`SITES_FORMAT`, add the migration from the
previous format to :data:`MIGRATIONS`, and keep the fixture file of every
older format in ``tests/fixtures`` as it is (a new siteops must read them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

FORMAT_KEY = "siteops_sites_format"
# The format this siteops writes, and the newest it reads.
SITES_FORMAT = 3
# The format of a file without FORMAT_KEY (written before the format was versioned).
UNVERSIONED_FORMAT = 0
UPGRADE_HINT = "upgrade siteops (pip install --upgrade siteops)"

Migration = Callable[[dict[str, Any]], dict[str, Any]]


def _from_0(data: dict[str, Any]) -> dict[str, Any]:
    """0 -> 1: the content is unchanged; the file now says its format (as its first key)."""
    return {FORMAT_KEY: 1, **data}


def _from_1(data: dict[str, Any]) -> dict[str, Any]:
    """1 -> 2: sites and components may be stopped, sites in maintenance (both off by
    default), and sites have scheduled jobs (none by default)."""
    return {**data, FORMAT_KEY: 2}


def _from_2(data: dict[str, Any]) -> dict[str, Any]:
    """2 -> 3: sites may grant deploy access to SSH keys (none by default)."""
    return {**data, FORMAT_KEY: 3}


# The migration from each format to the next one, keyed by the format it reads.
# Each one returns new data and leaves its argument as it was.
MIGRATIONS: dict[int, Migration] = {
    0: _from_0,
    1: _from_1,
    2: _from_2,
}


def check_format(value: object) -> int:
    """``value`` as a format this siteops reads, or ``ValueError`` naming the rule."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(
            f"the format must be a whole number (the version of the file's layout, "
            f"{SITES_FORMAT} for files this siteops writes), not {value!r}"
        )
    if value < 0:
        raise ValueError(f"the format must be 0 or more, not {value}")
    if value > SITES_FORMAT:
        raise ValueError(
            f"this file is format {value}, written by a newer siteops; this siteops reads "
            f"formats up to {SITES_FORMAT}: {UPGRADE_HINT}"
        )
    return value


def file_format(data: Mapping[str, Any]) -> int:
    """The format of loaded ``sites.yml`` data; ``ValueError`` (naming the key) if unusable."""
    if FORMAT_KEY not in data:
        return UNVERSIONED_FORMAT
    try:
        return check_format(data[FORMAT_KEY])
    except ValueError as exc:
        raise ValueError(f"{FORMAT_KEY}: {exc}") from None


def upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """Loaded ``sites.yml`` data in :data:`SITES_FORMAT`, migrated step by step.

    ``data`` itself is not changed. Raises ``ValueError`` (the message starts
    with the key's name) for a format that is not a whole number, is negative,
    or is newer than this siteops.
    """
    version = file_format(data)
    while version < SITES_FORMAT:
        data = MIGRATIONS[version](data)
        version += 1
    return data
