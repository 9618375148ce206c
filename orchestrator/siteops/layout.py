"""The host layout, read from the roles' own source: ``roles/site_layout/defaults/main.yml``.

Where sites, backups and release logs live on a host, and how sites,
components, their units and slices are named, is written once, as the
defaults of the role ``site_layout`` that the other roles depend on. siteops
reads the same file from the collection it runs (:func:`siteops.resources.find_collection`:
a checkout, or the collection its wheel installed), once per process, so the
command and the roles cannot disagree.

The inventory can override ``site_layout_*`` for the roles; siteops does not
read those overrides (the file says so): the registry, ``siteops show`` and
``siteops logs`` follow the file.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from siteops import yamltext
from siteops.resources import running_collection

LAYOUT_FILE = Path("roles") / "site_layout" / "defaults" / "main.yml"
PREFIX = "site_layout_"


class LayoutError(RuntimeError):
    """The layout file is missing a value, or holds one of the wrong type."""


@dataclass(frozen=True)
class Layout:
    """The values of the layout file, named without their ``site_layout_`` prefix."""

    sites_root: str
    logs_subdir: str
    env_file: str
    uploads_subdir: str
    placeholder_marker: str
    backup_root: str
    release_log_dir: str
    acme_webroot: str
    site_name_pattern: str
    site_name_min_length: int
    site_name_max_length: int
    component_pattern: str
    unit_format: str
    spare_unit_format: str
    spare_link: str
    nginx_config_format: str
    slice_format: str
    slice_dash_escape: str
    unit_marker: str
    host_lock: str
    registry_dir: str
    audit_log: str
    firewall_dir: str
    redis_acl_file: str

    def site_root(self, site: str) -> str:
        """The site's tree: ``<sites root>/<site>``."""
        return f"{self.sites_root}/{site}"

    def logs_dir(self, site: str) -> str:
        """Where the site's units, nginx and builds write their logs."""
        return f"{self.site_root(site)}/{self.logs_subdir}"

    def env_path(self, site: str) -> str:
        """The site's environment file (managed blocks, then the operator's lines)."""
        return f"{self.site_root(site)}/{self.env_file}"

    def uploads_dir(self, site: str) -> str:
        """The site's uploaded files, kept across releases and in every backup."""
        return f"{self.site_root(site)}/{self.uploads_subdir}"

    def unit_name(self, site: str, component: str) -> str:
        """The systemd unit of a process component (``shop-frontend.service``)."""
        return self.unit_format % (site, component)

    def slice_name(self, site: str) -> str:
        """The site's top-level slice, ``-`` escaped as systemd does (so it is not nested)."""
        return self.slice_format % site.replace("-", self.slice_dash_escape)


def parse_layout(data: Any, source: str) -> Layout:
    """The :class:`Layout` in the mapping ``data`` (the YAML of the layout file)."""
    if not isinstance(data, dict):
        raise LayoutError(f"{source}: expected a mapping of site_layout_* values")
    values: dict[str, Any] = {}
    for field in fields(Layout):
        key = PREFIX + field.name
        value = data.get(key)
        # bool is an int to Python; a YAML true is never a length.
        if type(value) is not (int if field.type == "int" else str):
            raise LayoutError(f"{source}: {key} must be a {field.type}, not {value!r}")
        if isinstance(value, str) and "{{" in value:
            raise LayoutError(f"{source}: {key} must be a plain value (siteops reads it as is)")
        values[field.name] = value
    return Layout(**values)


def layout_path() -> Path:
    """The layout file of the collection siteops runs (or, without one, of its own)."""
    return running_collection() / LAYOUT_FILE


@functools.cache
def layout() -> Layout:
    """The host layout, read once per process."""
    path = layout_path()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LayoutError(f"cannot read the host layout {path}: {exc.strerror}") from None
    return parse_layout(yamltext.load(text), str(path))
