"""The site model: the one description of a host's sites.

It describes exactly the YAML the inventory holds
(``inventory/<env>/host_vars/<host>/sites.yml``, variable ``siteops_sites``),
which the playbooks read directly and only the CLI writes. Defaults here are
the defaults the roles apply when a field is left out.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from siteops.access import ACCESS_NAME_PATTERN, check_access_key, check_access_name, key_blob
from siteops.fileformat import FORMAT_KEY, SITES_FORMAT, check_format
from siteops.naming import (
    COMPONENT_NAME_PATTERN,
    SITE_NAME_MAX,
    SITE_NAME_MIN,
    SITE_NAME_PATTERN,
    check_component_name,
    check_site_name,
    normalize_domain,
)
from siteops.ports import MAX_BLOCK, ports_of, range_for_component
from siteops.runtime import Runtime

SITES_VARIABLE = "siteops_sites"
LETSENCRYPT_DIRECTORY = "https://acme-v02.api.letsencrypt.org/directory"

SiteName = Annotated[
    str,
    AfterValidator(check_site_name),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": SITE_NAME_PATTERN,
            "minLength": SITE_NAME_MIN,
            "maxLength": SITE_NAME_MAX,
        }
    ),
]
ComponentName = Annotated[
    str,
    AfterValidator(check_component_name),
    WithJsonSchema({"type": "string", "pattern": COMPONENT_NAME_PATTERN}),
]
AccessName = Annotated[
    str,
    AfterValidator(check_access_name),
    WithJsonSchema({"type": "string", "pattern": ACCESS_NAME_PATTERN}),
]
Domain = Annotated[
    str,
    AfterValidator(normalize_domain),
    WithJsonSchema({"type": "string", "format": "idn-hostname", "maxLength": 253}),
]

_MEMORY_PATTERN = r"^[1-9][0-9]*[KMGT]$"
_MEMORY_RE = re.compile(_MEMORY_PATTERN)
_MEMORY_FACTOR = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
MEMORY_MIN_BYTES = 32 << 20
_CPU_PATTERN = r"^[1-9][0-9]*%$"
_CPU_RE = re.compile(_CPU_PATTERN)


def _check_memory(value: str) -> str:
    if not _MEMORY_RE.fullmatch(value):
        raise ValueError(
            f"memory {value!r} must be a whole number with a unit K, M, G or T (e.g. 512M)"
        )
    if int(value[:-1]) * _MEMORY_FACTOR[value[-1]] < MEMORY_MIN_BYTES:
        raise ValueError(f"memory {value!r} is below the minimum of 32M")
    return value


def _check_cpu(value: str) -> str:
    if not _CPU_RE.fullmatch(value):
        raise ValueError(
            f"cpu {value!r} must be a percentage of one core, like 50% or 200% (systemd CPUQuota)"
        )
    return value


class _Strict(BaseModel):
    """Unknown fields are errors: a typo must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", validate_default=True, use_enum_values=True)


class SiteStatus(StrEnum):
    """Where a site stands; the CLI sets it, the roles only check it."""

    PENDING = "pending"
    ACTIVE = "active"
    FAILED = "failed"
    # A removal has started but not finished; running the removal again
    # continues it (every step of a removal is safe to repeat).
    REMOVING = "removing"


class Domains(_Strict):
    """The names the site answers to; one certificate covers all of them."""

    primary: Domain = Field(description="The site's main host name (ASCII/IDNA A-label form).")
    aliases: list[Domain] = Field(
        default_factory=list, description="Further names served by the site (e.g. www.)."
    )

    @model_validator(mode="after")
    def _no_repeats(self) -> Self:
        seen = {self.primary}
        for alias in self.aliases:
            if alias in seen:
                raise ValueError(f"domain {alias!r} is listed twice")
            seen.add(alias)
        return self

    def all(self) -> list[str]:
        return [self.primary, *self.aliases]


class Component(_Strict):
    """One process of the site, run as the unit ``<site>-<component>.service``.

    ``frontend`` and ``api`` take their port from the block's frontend and API
    ranges; any other component is an extra service in the extra range. A
    ``static`` component has no process: nginx serves ``current/``.
    """

    runtime: Runtime = Field(description="How the component runs: node, nextjs, python or static.")
    port: int | None = Field(
        default=None, ge=1, le=65535, description="Loopback port inside the site's block."
    )
    command: str | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description="Start command, run in current/ (not for static components).",
    )
    stopped: bool = Field(
        default=False,
        description=(
            "Stopped by an operator (siteops stop -c): its unit is stopped and disabled, "
            "also across reboots, until siteops start."
        ),
    )

    @model_validator(mode="after")
    def _static_or_process(self) -> Self:
        if self.runtime == Runtime.STATIC:
            if self.command is not None:
                raise ValueError("a static component has no command (nginx serves current/)")
            if self.port is not None:
                raise ValueError("a static component has no port (nginx serves current/)")
            if self.stopped:
                raise ValueError("a static component has no unit to stop (stop the site)")
        elif self.command is None:
            raise ValueError(f"a {self.runtime} component needs a command")
        return self


class Job(_Strict):
    """A scheduled job: a systemd timer that runs ``command`` as the site, like its units do."""

    schedule: str = Field(
        min_length=1,
        max_length=200,
        pattern=r"^[^\n\r\x00]+$",
        description=(
            "When it runs, as systemd's OnCalendar (hourly, daily, *-*-* 03:00:00, Mon *-*-* "
            "09:00); checked on the host with systemd-analyze calendar."
        ),
    )
    command: str = Field(
        min_length=1,
        max_length=1000,
        description="What it runs, in current/ with the site's .env (sh -c).",
    )


class Database(_Strict):
    """A PostgreSQL database and role named after the site."""

    enabled: bool = Field(default=True, description="Create the site's database and role.")
    connection_limit: int = Field(
        default=20, ge=1, le=500, description="CONNECTION LIMIT of the site's role."
    )


class Cache(_Strict):
    """A Redis ACL user limited to the site's own key prefix."""

    enabled: bool = Field(default=False, description="Give the site a Redis ACL user.")


class Maintenance(_Strict):
    """A maintenance page: nginx answers the site with 503 while its units keep running."""

    enabled: bool = Field(default=False, description="Answer every request with the page.")
    message: str = Field(
        default="",
        max_length=500,
        pattern=r"^[^\n\r\x00]*$",
        description="One line shown on the page (HTML-escaped); empty: a standard text.",
    )


class Limits(_Strict):
    """Limits of the site's systemd slice: they apply to the site as a whole."""

    memory: Annotated[
        str,
        AfterValidator(_check_memory),
        WithJsonSchema({"type": "string", "pattern": _MEMORY_PATTERN}),
    ] = Field(default="512M", description="MemoryMax of the site's slice (K/M/G/T suffix).")
    cpu: Annotated[
        str, AfterValidator(_check_cpu), WithJsonSchema({"type": "string", "pattern": _CPU_PATTERN})
    ] = Field(default="50%", description="CPUQuota of the site's slice (percent of one core).")
    tasks: int = Field(default=256, ge=16, le=32768, description="TasksMax of the site's slice.")


class Tls(_Strict):
    """A Let's Encrypt (or other ACME CA) certificate covering all the site's domains."""

    enabled: bool = Field(default=True, description="Obtain a certificate and serve HTTPS.")
    email: str | None = Field(
        default=None,
        pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        description="Contact address registered with the CA (required when enabled).",
    )
    ca_directory: HttpUrl = Field(
        default=HttpUrl(LETSENCRYPT_DIRECTORY), description="ACME directory URL of the CA."
    )

    @model_validator(mode="after")
    def _email_when_enabled(self) -> Self:
        if self.enabled and self.email is None:
            raise ValueError("email is required when tls is enabled (the CA's contact address)")
        return self


class AccessGrant(_Strict):
    """An SSH key that may deploy, roll back and read this site only (roles/site_access)."""

    key: Annotated[str, AfterValidator(check_access_key)] = Field(
        min_length=1,
        max_length=16384,
        description="One OpenSSH public key line (type, base64 key, optional comment).",
    )


class Site(_Strict):
    """One site: its names, processes, ports, data services, limits and TLS."""

    description: str = Field(default="", max_length=200, description="Free text for the registry.")
    status: SiteStatus = Field(
        default=SiteStatus.PENDING,
        description=(
            "pending until its first successful run, then active; failed after an error; "
            "removing while a removal is in progress (run the removal again to finish it)."
        ),
    )
    stopped: bool = Field(
        default=False,
        description=(
            "Stopped by an operator (siteops stop): its units are stopped and disabled, also "
            "across reboots, and nginx answers it with 503 until siteops start."
        ),
    )
    maintenance: Maintenance = Field(default_factory=Maintenance)
    port_block: int = Field(
        ge=0, le=MAX_BLOCK, description="Index k of the site's port block (see ports.py)."
    )
    domains: Domains
    components: dict[ComponentName, Component] = Field(
        description="The site's processes by name; a 'frontend' is required.",
        json_schema_extra={"additionalProperties": False},
    )
    jobs: dict[ComponentName, Job] = Field(
        default_factory=dict,
        description=(
            "Scheduled jobs by name (named like components, never like one of the site's): "
            "unit <site>-<name>.service with its .timer."
        ),
        json_schema_extra={"additionalProperties": False},
    )
    database: Database = Field(default_factory=Database)
    cache: Cache = Field(default_factory=Cache)
    limits: Limits = Field(default_factory=Limits)
    # A dict, not Tls(): validated as the field (so a missing email is reported at
    # "tls") instead of failing inside the factory, which hides every other problem.
    tls: Tls = Field(default_factory=lambda: {"enabled": True})  # type: ignore[assignment]
    access: dict[AccessName, AccessGrant] = Field(
        default_factory=dict,
        description=(
            "Deploy access by name (siteops access grant): each key may deploy, roll back "
            "and read the releases, status and logs of this site, nothing else."
        ),
        json_schema_extra={"additionalProperties": False},
    )

    @field_validator("components")
    @classmethod
    def _has_frontend(cls, components: dict[str, Component]) -> dict[str, Component]:
        if "frontend" not in components:
            raise ValueError(
                "components must include 'frontend' (use runtime static to serve files)"
            )
        return components

    @model_validator(mode="after")
    def _jobs_apart_from_components(self) -> Self:
        for name in self.jobs:
            if name in self.components:
                raise ValueError(
                    f"job {name!r} has the name of a component; its unit would be the "
                    "component's: choose another name"
                )
        return self

    @model_validator(mode="after")
    def _ports_inside_block(self) -> Self:
        used: dict[int, str] = {}
        for name, component in self.components.items():
            if component.port is None:
                if name in ("frontend", "api") and component.runtime != Runtime.STATIC:
                    raise ValueError(f"component {name!r} needs a port")
                continue
            allowed = ports_of(self.port_block, range_for_component(name))
            if component.port not in allowed:
                raise ValueError(
                    f"port {component.port} of component {name!r} is outside the site's block "
                    f"{self.port_block}: it must lie in {allowed.start}-{allowed.stop - 1}"
                )
            if component.port in used:
                raise ValueError(
                    f"port {component.port} is used by both {used[component.port]!r} and {name!r}"
                )
            used[component.port] = name
        return self


def _check_utc_timestamp(value: str) -> str:
    try:
        offset = datetime.fromisoformat(value).utcoffset()
    except ValueError:
        offset = None
    if offset is None or offset.total_seconds() != 0:
        raise ValueError(
            f"timestamp {value!r} must be an ISO 8601 time in UTC, like 2025-10-09T12:17:25Z"
        )
    return value


UtcTimestamp = Annotated[
    str,
    AfterValidator(_check_utc_timestamp),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class ArchivedSite(_Strict):
    """A removed site, kept on record with the backup taken just before removal.

    An archived site holds no port block, domain, user, unit or database any
    more: its former record is kept only to tell what it was and to restore it.
    """

    site: Site = Field(description="The site's record as it was when it was removed.")
    archived_at: UtcTimestamp = Field(
        description="When the removal finished (ISO 8601, UTC), e.g. 2025-10-09T12:17:25Z."
    )
    backup: str = Field(
        pattern=r"^/.+$",
        max_length=4096,
        description="Absolute path, on the host, of the final backup taken before removal.",
    )


def _without_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


class HostSites(_Strict):
    """The content of a host's ``sites.yml``: every site of that host, keyed by name."""

    # The current format only: siteops.inventory.parse_host_sites upgrades the
    # data of an older file before it gets here (see siteops.fileformat).
    siteops_sites_format: Annotated[
        int, WithJsonSchema({"type": "integer", "const": SITES_FORMAT})
    ] = Field(
        default=SITES_FORMAT,
        description=(
            "The format of this file, written by siteops. A file without it is from before "
            "the format was versioned (format 0); siteops reads older formats and writes "
            "the current one, and refuses a newer one."
        ),
        # No "default" in the schema: a file without the key is format 0, not the current one.
        json_schema_extra=_without_default,
    )

    siteops_sites: dict[SiteName, Site] = Field(
        default_factory=dict,
        description="The host's sites keyed by site name.",
        json_schema_extra={"additionalProperties": False},
    )

    siteops_archived_sites: dict[SiteName, ArchivedSite] = Field(
        default_factory=dict,
        description=(
            "Removed sites keyed by their former name; they hold no port block or domain."
        ),
        json_schema_extra={"additionalProperties": False},
    )

    @field_validator(FORMAT_KEY, mode="before")
    @classmethod
    def _current_format(cls, value: object) -> int:
        version = check_format(value)
        if version != SITES_FORMAT:
            raise ValueError(
                f"format {version} is older than the model's format {SITES_FORMAT}; load the "
                "file with siteops.inventory.parse_host_sites, which upgrades it"
            )
        return version

    @field_validator("siteops_sites")
    @classmethod
    def _unique_across_sites(cls, sites: dict[str, Site]) -> dict[str, Site]:
        blocks: dict[int, str] = {}
        domains: dict[str, str] = {}
        keys: dict[str, str] = {}
        for name, site in sites.items():
            for grant, access in site.access.items():
                holder = keys.setdefault(key_blob(access.key), f"{name}/{grant}")
                if holder != f"{name}/{grant}":
                    raise ValueError(
                        f"the access key of {name}/{grant} is already granted as {holder}; "
                        "a key may deploy one site (give each site its own key)"
                    )
            holder = blocks.setdefault(site.port_block, name)
            if holder != name:
                raise ValueError(
                    f"port block {site.port_block} is given to both {holder!r} and {name!r}; "
                    "no two sites may share a block"
                )
            for domain in site.domains.all():
                owner = domains.setdefault(domain, name)
                if owner != name:
                    raise ValueError(
                        f"domain {domain!r} is claimed by both {owner!r} and {name!r}; "
                        "a domain belongs to one site"
                    )
        return sites

    @field_validator("siteops_archived_sites")
    @classmethod
    def _archived_names_are_free(
        cls, archived: dict[str, ArchivedSite], info: ValidationInfo
    ) -> dict[str, ArchivedSite]:
        # A name means one site: `restore shop` or `remove shop` must not be ambiguous.
        active = info.data.get("siteops_sites", {})
        for name in archived:
            if name in active:
                raise ValueError(
                    f"site {name!r} is both active and archived; a name belongs to one site "
                    "(drop the archived entry or rename the active site)"
                )
        return archived

    @property
    def sites(self) -> dict[str, Site]:
        return self.siteops_sites

    @property
    def archived(self) -> dict[str, ArchivedSite]:
        return self.siteops_archived_sites

    def to_yaml_data(self) -> dict[str, Any]:
        """The plain data written to ``sites.yml`` (every field explicit)."""
        return self.model_dump(mode="json")
