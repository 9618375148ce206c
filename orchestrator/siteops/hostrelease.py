"""The host's Debian release, read by a command's lock session in the same round trip.

The roles choose per-release settings (PostgreSQL's version, nginx's http2
directive) from the facts ``siteops.hosting.debian_release`` sets, and the
playbooks read them first unless they are given. A changing command's lock
session reads the same two files on the host (:mod:`siteops.hostsession`), and
the command's runs started after it get the facts as extra variables: one task
and one call on the host fewer per run. (``apply`` starts its run before the
session, :meth:`siteops.target.Target.started`: that run reads them
itself, in the task that opens its connection anyway.) Files and parsing are
the collection's own (``plugins/module_utils/debian.py``, standard library
only), loaded by path.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import ModuleType

from siteops.resources import collection_module

PARSER = Path("plugins") / "module_utils" / "debian.py"

# The facts of the hosts whose lock session is open in this process: host -> facts.
_OPEN: dict[str, dict[str, str]] = {}


def _parser() -> ModuleType:
    return collection_module(PARSER)


def release_files() -> list[str]:
    """The files the session reads on the host."""
    parser = _parser()
    return [parser.OS_RELEASE, parser.DEBIAN_VERSION]


def release_facts(texts: Mapping[str, str | None]) -> dict[str, str]:
    """The facts for the files' texts (by path); none when os-release was not read."""
    parser = _parser()
    os_release = texts.get(parser.OS_RELEASE)
    if not os_release:
        return {}
    facts: dict[str, str] = parser.release_facts(os_release, texts.get(parser.DEBIAN_VERSION))
    return facts if facts.get("ansible_distribution_major_version") else {}


def remember(host: str, facts: Mapping[str, str]) -> None:
    """Keep ``host``'s facts while its session is open (:func:`forget` when it closes)."""
    if facts:
        _OPEN[host] = dict(facts)


def forget(host: str) -> None:
    _OPEN.pop(host, None)


def facts_of(host: str) -> dict[str, str]:
    """``host``'s release facts while this process holds its session open, else none."""
    return dict(_OPEN.get(host, {}))
