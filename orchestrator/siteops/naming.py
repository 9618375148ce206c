"""The rules for site names, component names and domain names.

Plain functions that raise ``ValueError`` with a message naming the rule; the
pydantic models in :mod:`siteops.model` call them, and so does the CLI before
it touches anything. The site and component name rules are the host layout's
(:mod:`siteops.layout`), the ones the roles check too.
"""

from __future__ import annotations

import re

import idna

from siteops.layout import layout

SITE_NAME_MIN = layout().site_name_min_length
SITE_NAME_MAX = layout().site_name_max_length
# A letter, then letters/digits each optionally preceded by one hyphen: no "--",
# no trailing hyphen. (No look-arounds, so the JSON Schema can use it too.)
SITE_NAME_PATTERN = layout().site_name_pattern
SITE_NAME_RE = re.compile(SITE_NAME_PATTERN)

# A site name becomes a Unix user and group, a PostgreSQL role and database,
# systemd unit names and a Redis ACL user. Refuse names that clash with the
# accounts and services a Debian host already has, or that read as one.
_DEBIAN_ACCOUNTS = """
    root daemon bin sys sync games man lp mail news uucp proxy www-data backup list irc
    gnats nobody nogroup adm tty disk kmem dialout fax voice cdrom floppy tape sudo audio
    dip operator src shadow utmp video sasl plugdev staff users input render kvm netdev
    crontab messagebus systemd-journal systemd-network systemd-resolve systemd-timesync
    systemd-coredump polkitd
"""
_SERVICES = """
    nginx postgres postgresql redis redis-server certbot letsencrypt pebble sshd ssh ufw
    fail2ban nftables logrotate cron rsyslog syslog dbus docker containerd mysql mariadb
    memcached exim postfix dovecot bind named ntp chrony uuidd tcpdump apt dpkg debian
    ubuntu admin administrator git ftp www http https localhost siteops siteops-access
    ansible deploy
    system systemd user default template0 template1 public
"""
# Debian's base accounts, the services siteops installs or a VPS commonly runs,
# and names that read as one of them.
RESERVED_SITE_NAMES: frozenset[str] = frozenset(_DEBIAN_ACCOUNTS.split() + _SERVICES.split())
RESERVED_SITE_PREFIXES: tuple[str, ...] = ("systemd-", "pg-", "postgres-", "redis-", "nginx-")

COMPONENT_NAME_PATTERN = layout().component_pattern
COMPONENT_NAME_RE = re.compile(COMPONENT_NAME_PATTERN)

_LABEL_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
DOMAIN_MAX = 253


def check_site_name(name: str) -> str:
    """Return ``name`` if it is a usable site name, else raise ``ValueError``."""
    if not isinstance(name, str):
        raise ValueError("site name must be a string")
    if not SITE_NAME_MIN <= len(name) <= SITE_NAME_MAX:
        raise ValueError(
            f"site name {name!r} must be {SITE_NAME_MIN}-{SITE_NAME_MAX} characters long "
            f"(it has {len(name)})"
        )
    if not SITE_NAME_RE.fullmatch(name):
        raise ValueError(
            f"site name {name!r} may use only lowercase a-z, digits and single hyphens, "
            "must start with a letter and end with a letter or digit"
        )
    if name in RESERVED_SITE_NAMES or name.startswith(RESERVED_SITE_PREFIXES):
        raise ValueError(
            f"site name {name!r} is reserved: it clashes with a system user or service "
            "on a Debian host"
        )
    return name


def check_component_name(name: str) -> str:
    """Return ``name`` if it is a usable component name, else raise ``ValueError``."""
    if not COMPONENT_NAME_RE.fullmatch(name):
        raise ValueError(
            f"component name {name!r} must be 1-16 characters of lowercase a-z and digits, "
            "starting with a letter (it becomes part of the unit name <site>-<component>)"
        )
    return name


def normalize_domain(value: str) -> str:
    """Return the ASCII (IDNA A-label) form of a host name, or raise ``ValueError``.

    Internationalised names are accepted and converted (``bücher.example`` ->
    ``xn--bcher-kva.example``) because nginx and certbot need the ASCII form.
    Wildcards, IP addresses, single-label names and trailing dots are refused.
    """
    if not isinstance(value, str) or not value:
        raise ValueError("domain must be a non-empty host name")
    if value.endswith("."):
        raise ValueError(f"domain {value!r} must not end with a dot")
    if "*" in value:
        raise ValueError(
            f"domain {value!r}: wildcards cannot be validated over HTTP-01; list each name"
        )
    try:
        ascii_name = idna.encode(value, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise ValueError(f"domain {value!r} is not a valid host name ({exc})") from None
    labels = ascii_name.split(".")
    if len(labels) < 2:
        raise ValueError(f"domain {value!r} must be a fully qualified name (name.tld)")
    if len(ascii_name) > DOMAIN_MAX:
        raise ValueError(f"domain {value!r} is longer than {DOMAIN_MAX} characters")
    for label in labels:
        if not _LABEL_RE.fullmatch(label):
            raise ValueError(
                f"domain {value!r}: label {label!r} must be 1-63 characters of a-z, digits "
                "and hyphens, not starting or ending with a hyphen"
            )
    if labels[-1].isdigit():
        raise ValueError(f"domain {value!r} looks like an IP address; a host name is required")
    return ascii_name
