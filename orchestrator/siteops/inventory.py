"""Read the hosts of an Ansible inventory and each host's site registry (``sites.yml``).

Layout: ``<inventory>/hosts.yml`` and ``<inventory>/host_vars/<host>/sites.yml``.
Every host listed in ``hosts.yml`` has its own registry.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from siteops import yamltext
from siteops.errors import SiteModelError, describe
from siteops.fileformat import upgrade

if TYPE_CHECKING:
    from siteops.model import HostSites

SITES_FILE = "sites.yml"
HOSTS_FILE = "hosts.yml"


def sites_path(inventory: Path, host: str) -> Path:
    """Where the registry of ``host`` lives inside ``inventory``."""
    return inventory / "host_vars" / host / SITES_FILE


def parse_host_sites(data: Any, source: str) -> HostSites:
    """Validate already-loaded YAML data, raising :class:`SiteModelError`.

    Data in an older format is upgraded first (in memory only, see
    :mod:`siteops.fileformat`); a newer or unreadable format is refused alone,
    before any other check (the rest of such a file cannot be judged).
    """
    # Imported here: the model (pydantic) is needed only by what reads a registry,
    # and a run siteops starts before it reads one (apply) starts ~0.1 s sooner.
    from pydantic import ValidationError

    from siteops.model import HostSites

    if data is None:
        data = {}
    if isinstance(data, dict):
        try:
            data = upgrade(data)
        except ValueError as exc:
            raise SiteModelError(source, [str(exc)]) from None
    try:
        return HostSites.model_validate(data)
    except ValidationError as exc:
        raise SiteModelError(source, describe(exc)) from None


def load_host_sites(path: Path) -> HostSites:
    """Load and validate one ``sites.yml``; a missing file is an empty registry.

    Only reads: a file in an older format stays as it is until a command that
    changes the sites saves them (:meth:`siteops.registry.Registry.save`).
    """
    if not path.exists():
        from siteops.model import HostSites

        return HostSites()
    try:
        data = yamltext.load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SiteModelError(str(path), [f"not valid YAML: {exc}"]) from None
    return parse_host_sites(data, str(path))


def _group_hosts(group: Any, found: dict[str, None]) -> None:
    """Collect the hosts of one YAML inventory group and of its children, in file order."""
    if not isinstance(group, dict):
        return
    hosts = group.get("hosts")
    if isinstance(hosts, dict):
        found.update(dict.fromkeys(str(name) for name in hosts))
    children = group.get("children")
    if isinstance(children, dict):
        for child in children.values():
            _group_hosts(child, found)


def inventory_hosts(hosts_file: Path) -> list[str]:
    """The hosts a YAML inventory file lists (in any group), each once, in file order.

    A missing file lists no host; a file that is not YAML raises
    :class:`SiteModelError` naming it.
    """
    if not hosts_file.exists():
        return []
    try:
        data = yamltext.load(hosts_file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SiteModelError(str(hosts_file), [f"not valid YAML: {exc}"]) from None
    found: dict[str, None] = {}
    if isinstance(data, dict):
        for group in data.values():
            _group_hosts(group, found)
    return list(found)


def load_inventory_sites(inventory: Path) -> dict[str, HostSites]:
    """The registry of every host of ``inventory`` (as ``hosts.yml`` lists them), by host.

    Raises :class:`SiteModelError` when there is no ``hosts.yml`` or a registry is invalid.
    """
    hosts_file = inventory / HOSTS_FILE
    if not hosts_file.is_file():
        raise SiteModelError(
            str(hosts_file),
            ["inventory: no hosts.yml here; give --inventory the directory holding "
             "hosts.yml and host_vars/"],
        )  # fmt: skip
    return {
        host: load_host_sites(sites_path(inventory, host)) for host in inventory_hosts(hosts_file)
    }


HOSTS_HEADER = (
    "# The hosts of this inventory, written by siteops (`host add`, `sandbox up`);\n"
    "# each host's sites are in host_vars/<host>/sites.yml. Comments here are not kept.\n"
)


def read_hosts_yaml(hosts_file: Path) -> dict[str, Any]:
    """``hosts.yml`` as loaded YAML (an empty mapping when the file is missing or empty)."""
    if not hosts_file.exists():
        return {}
    try:
        data = yamltext.load(hosts_file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SiteModelError(str(hosts_file), [f"not valid YAML: {exc}"]) from None
    return data if isinstance(data, dict) else {}


def hosts_mapping(data: dict[str, Any], source: str) -> dict[str, Any]:
    """The ``all.hosts`` mapping of loaded ``hosts.yml`` data (created when missing)."""
    if data.get("all") is None:
        data["all"] = {}
    group = data["all"]
    if isinstance(group, dict) and group.get("hosts") is None:
        group["hosts"] = {}
    hosts = group.get("hosts") if isinstance(group, dict) else None
    if not isinstance(hosts, dict):
        raise SiteModelError(source, ["all.hosts: not a mapping of host names; fix the file"])
    return hosts


def hosts_yaml_text(data: dict[str, Any]) -> str:
    """The text of ``hosts.yml`` for ``data``, with the header that says who writes it."""
    return HOSTS_HEADER + "---\n" + yaml.safe_dump(data, sort_keys=False)
