"""Read a host's site registry (``sites.yml``) from an Ansible inventory.

Layout: ``<inventory>/hosts.yml`` and ``<inventory>/host_vars/<host>/sites.yml``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from siteops.errors import SiteModelError, describe
from siteops.model import HostSites

SITES_FILE = "sites.yml"


def sites_path(inventory: Path, host: str) -> Path:
    """Where the registry of ``host`` lives inside ``inventory``."""
    return inventory / "host_vars" / host / SITES_FILE


def parse_host_sites(data: Any, source: str) -> HostSites:
    """Validate already-loaded YAML data, raising :class:`SiteModelError`."""
    if data is None:
        data = {}
    try:
        return HostSites.model_validate(data)
    except ValidationError as exc:
        raise SiteModelError(source, describe(exc)) from None


def load_host_sites(path: Path) -> HostSites:
    """Load and validate one ``sites.yml``; a missing file is an empty registry."""
    if not path.exists():
        return HostSites()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SiteModelError(str(path), [f"not valid YAML: {exc}"]) from None
    return parse_host_sites(data, str(path))
