"""The human-readable registry of a host: reference 003's "ACTIVE SITES REGISTRY".

:func:`render_registry` turns a host's site model (and, optionally, live facts
gathered from the host) into Markdown: one section per site, then the port
block, domain, database, certificate, resource-use and archive tables. The
output depends only on its inputs — no clock, no host access — so rendering
the same inputs twice gives the same bytes, and the file can be kept in git.

Only names, paths, ports, limits and states appear: the model holds no secret
and :class:`SiteFacts` refuses any field it does not know, so a password in
gathered facts is an error rather than a line of the registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from siteops.layout import layout
from siteops.model import LETSENCRYPT_DIRECTORY, HostSites, Site, SiteStatus
from siteops.ports import MAX_BLOCKS, PortRange, allocate_block, ports_of, range_for_component
from siteops.runtime import Runtime

if TYPE_CHECKING:
    import jinja2

NGINX_AVAILABLE = "/etc/nginx/sites-available"
CERTIFICATES_DIR = "/etc/letsencrypt/live"
LETSENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"
REFRESH_COMMAND = "siteops registry --refresh"
REFRESH_HINT = f"unknown — run `{REFRESH_COMMAND}`"

STATUS_LABELS: dict[str, str] = {
    SiteStatus.ACTIVE: "🟢 **ACTIVE**",
    SiteStatus.PENDING: "🔵 **PENDING** (not deployed yet)",
    SiteStatus.FAILED: "🔴 **FAILED** (the last run failed: see its log, fix, run again)",
    SiteStatus.REMOVING: "🟠 **REMOVING** (removal in progress: run the removal again to finish)",
}
BLOCK_STATES: dict[str, str] = {
    SiteStatus.ACTIVE: "✅ In use",
    SiteStatus.PENDING: "🔒 Reserved (pending)",
    SiteStatus.FAILED: "❌ In use (failed)",
    SiteStatus.REMOVING: "🟠 Being removed",
}
UNIT_STATES: dict[str, str] = {
    "active": "✅ active",
    "failed": "❌ failed",
    "inactive": "⏸️ inactive",
    "activating": "🔄 activating",
    "deactivating": "🔄 deactivating",
    "reloading": "🔄 reloading",
}


class SiteFacts(BaseModel):
    """Live facts about one site, gathered from the host (all optional).

    Example: ``{"cert_expiry": "2027-01-01", "disk_use": "12M",
    "units": {"shop-frontend.service": "active"}}``. Values are shown as
    given; unknown keys are refused so that nothing else (and never a
    secret) can slip into the registry.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    cert_expiry: str | None = Field(
        default=None, description="Expiry date of the site's certificate (YYYY-MM-DD)."
    )
    cert_issued: str | None = Field(
        default=None, description="Issue date of the current certificate (last renewal)."
    )
    disk_use: str | None = Field(
        default=None, description="Disk used by the site's tree (du -sh), e.g. 12M."
    )
    memory_use: str | None = Field(
        default=None, description="Memory the site's slice uses now (MemoryCurrent), e.g. 180M."
    )
    db_connections: int | None = Field(
        default=None, ge=0, description="Open connections of the site's database role."
    )
    units: dict[str, str] = Field(
        default_factory=dict,
        description="ActiveState of the site's units by unit name, e.g. active or failed.",
    )


FactsInput = Mapping[str, SiteFacts | Mapping[str, Any]]


def slice_name(site: str) -> str:
    """The site's top-level slice; ``-`` escaped as systemd does (not nested)."""
    return layout().slice_name(site)


def unit_name(site: str, component: str) -> str:
    """The systemd unit of a process component (see the systemd_service role)."""
    return layout().unit_name(site, component)


def _ca_label(enabled: bool, directory: str) -> str:
    if not enabled:
        return "❌ off (plain HTTP)"
    if directory == LETSENCRYPT_DIRECTORY:
        return "✅ Let's Encrypt"
    if directory == LETSENCRYPT_STAGING:
        return "🧪 Let's Encrypt staging (browsers do not trust it)"
    return f"✅ CA `{directory}`"


def _span(r: range) -> str:
    return f"{r.start}-{r.stop - 1}"


@dataclass(frozen=True)
class ComponentView:
    name: str
    runtime: str
    port: str
    port_range: str
    unit: str | None
    command: str | None
    state: str


@dataclass(frozen=True)
class SiteView:
    number: int
    name: str
    status: str
    description: str
    primary: str
    aliases: list[str]
    block: int
    components: list[ComponentView]
    proxy_rules: list[tuple[str, str]]
    slice: str
    root: str
    env_file: str
    logs_dir: str
    uploads_dir: str
    has_database: bool
    connection_limit: int
    database: str
    cache: str
    memory: str
    cpu: str
    tasks: int
    tls_enabled: bool
    tls_label: str
    ca_directory: str
    email: str | None
    nginx_config: str
    certificate: str
    # From live facts; "unknown" (or the refresh hint) when not gathered.
    cert_expiry: str
    cert_issued: str
    disk_use: str
    memory_use: str
    db_connections: str


def _unit_state(facts: SiteFacts | None, unit: str) -> str:
    if facts is None or unit not in facts.units:
        return "❔ unknown"
    state = facts.units[unit]
    return UNIT_STATES.get(state, f"⚠️ {state}")


def _component_views(name: str, site: Site, facts: SiteFacts | None) -> list[ComponentView]:
    views: list[ComponentView] = []
    for component_name, component in site.components.items():
        allowed = ports_of(site.port_block, range_for_component(component_name))
        static = component.runtime == Runtime.STATIC
        unit = None if static else unit_name(name, component_name)
        views.append(
            ComponentView(
                name=component_name,
                runtime=component.runtime,
                port="—" if component.port is None else str(component.port),
                port_range=_span(allowed),
                unit=unit,
                command=component.command,
                state="📄 served by nginx" if unit is None else _unit_state(facts, unit),
            )
        )
    return views


def _proxy_rules(name: str, site: Site) -> list[tuple[str, str]]:
    rules: list[tuple[str, str]] = []
    api = site.components.get("api")
    if api is not None and api.port is not None:
        rules.append(("/api/", f"http://127.0.0.1:{api.port}"))
    frontend = site.components["frontend"]
    if frontend.port is None:
        rules.append(("/", f"files in {layout().site_root(name)}/current/"))
    else:
        rules.append(("/", f"http://127.0.0.1:{frontend.port}"))
    return rules


def _site_view(number: int, name: str, site: Site, facts: SiteFacts | None) -> SiteView:
    database = (
        f"`{name}` (PostgreSQL, owner role `{name}`, "
        f"connection limit {site.database.connection_limit})"
        if site.database.enabled
        else "none"
    )
    cache = (
        f"Redis ACL user `{name}`, keys and channels `{name}:*`" if site.cache.enabled else "none"
    )
    directory = str(site.tls.ca_directory)
    live = facts or SiteFacts()
    if not site.database.enabled:
        db_connections = "no database"
    elif live.db_connections is None:
        db_connections = f"unknown / {site.database.connection_limit}"
    else:
        db_connections = f"{live.db_connections} / {site.database.connection_limit}"
    return SiteView(
        number=number,
        name=name,
        status=STATUS_LABELS[site.status],
        description=site.description,
        primary=site.domains.primary,
        aliases=list(site.domains.aliases),
        block=site.port_block,
        components=_component_views(name, site, facts),
        proxy_rules=_proxy_rules(name, site),
        slice=slice_name(name),
        root=layout().site_root(name),
        env_file=layout().env_path(name),
        logs_dir=layout().logs_dir(name),
        uploads_dir=layout().uploads_dir(name),
        has_database=site.database.enabled,
        connection_limit=site.database.connection_limit,
        database=database,
        cache=cache,
        memory=site.limits.memory,
        cpu=site.limits.cpu,
        tasks=site.limits.tasks,
        tls_enabled=site.tls.enabled,
        tls_label=_ca_label(site.tls.enabled, directory),
        ca_directory=directory,
        email=site.tls.email,
        nginx_config=f"{NGINX_AVAILABLE}/{name}.conf",
        certificate=f"{CERTIFICATES_DIR}/{name}/",
        cert_expiry=live.cert_expiry or REFRESH_HINT,
        cert_issued=live.cert_issued or "unknown",
        disk_use=live.disk_use or "unknown",
        memory_use=f"{live.memory_use or 'unknown'} / {site.limits.memory}",
        db_connections=db_connections,
    )


def _block_rows(sites: HostSites) -> tuple[list[dict[str, str]], str]:
    """The used blocks and the next free one, in block order, plus a line on what is free."""
    holders = {site.port_block: (name, site) for name, site in sites.sites.items()}
    rows = {
        block: _block_row(block, name, BLOCK_STATES[site.status])
        for block, (name, site) in holders.items()
    }
    if len(holders) < MAX_BLOCKS:
        # Without host facts the next free block ignores live listeners; add-site
        # checks them and may skip ahead.
        block = allocate_block(set(holders), set())
        rows[block] = _block_row(block, "—", "⚪ Free (next)")
        free = f"{MAX_BLOCKS - len(holders)} of {MAX_BLOCKS} blocks are free."
    else:
        free = f"All {MAX_BLOCKS} blocks are in use: archive a site before adding one."
    return [rows[block] for block in sorted(rows)], free


def _block_row(block: int, site: str, state: str) -> dict[str, str]:
    return {
        "block": str(block),
        "frontend": _span(ports_of(block, PortRange.FRONTEND)),
        "api": _span(ports_of(block, PortRange.API)),
        "extra": _span(ports_of(block, PortRange.EXTRA)),
        "site": site,
        "state": state,
    }


def _parse_facts(sites: HostSites, facts: FactsInput | None) -> dict[str, SiteFacts] | None:
    if facts is None:
        return None
    parsed: dict[str, SiteFacts] = {}
    for name, value in facts.items():
        if name not in sites.sites:
            raise ValueError(
                f"facts given for {name!r}, which is not an active site of this host; "
                "gather facts for the sites in the registry only"
            )
        parsed[name] = value if isinstance(value, SiteFacts) else SiteFacts.model_validate(value)
    return parsed


def _cell(value: object) -> str:
    """Text safe inside a Markdown table cell (no column breaks, no line breaks)."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def _code(value: object) -> str:
    """Inline code that survives backticks inside the value."""
    text = str(value)
    fence = "``" if "`" in text else "`"
    pad = " " if fence == "``" else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _environment() -> jinja2.Environment:
    # Imported here: most commands (a no-op apply among them) render no registry,
    # and Jinja is a tenth of siteops' import time.
    import jinja2

    env = jinja2.Environment(
        autoescape=False,  # noqa: S701 (Markdown, not HTML: nothing to escape)
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["cell"] = _cell
    env.filters["code"] = _code
    return env


def _template() -> jinja2.Template:
    text = resources.files("siteops").joinpath("templates/registry.md.j2").read_text("utf-8")
    return _environment().from_string(text)


def render_registry(
    host: str,
    sites: HostSites,
    facts: FactsInput | None = None,
    *,
    as_of: str | None = None,
) -> str:
    """The registry of ``host`` as Markdown.

    ``facts`` maps site names to :class:`SiteFacts` (or plain mappings of its
    fields); without it, live columns say how to refresh them. ``as_of`` is
    the time the facts were gathered, shown as given (the renderer never reads
    the clock). Raises ``ValueError`` for facts of a site that is not active
    on this host and ``pydantic.ValidationError`` for malformed facts.
    """
    parsed = _parse_facts(sites, facts)
    views = [
        _site_view(number, name, site, None if parsed is None else parsed.get(name))
        for number, (name, site) in enumerate(sites.sites.items(), start=1)
    ]
    blocks, blocks_free = _block_rows(sites)
    return _template().render(
        host=host,
        sites=views,
        facts=parsed,
        as_of=as_of,
        blocks=blocks,
        blocks_free=blocks_free,
        archived=sites.archived,
        refresh_hint=REFRESH_HINT,
        refresh_command=REFRESH_COMMAND,
    )
