"""Filters of the siteops.hosting roles: the logic of their variables, in Python.

A role's ``vars/main.yml`` names the result (``__systemd_service_units: "{{
systemd_service_sites | siteops.hosting.site_units(site_layout_unit_format) }}"``)
and this file computes it; tests/test_filters.py checks each filter. The roles
call them by their full name, which resolves both when the collection is
installed and from a checkout (ansible.cfg's ``collections_path``).

The inputs are site records as in ``siteops_sites`` (orchestrator/siteops/model.py)
and registered loop results; the outputs are plain lists and dicts.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from typing import Any

# Imported here, once: the filters load before Ansible forks its workers.
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible_collections.siteops.hosting.plugins.module_utils.site_secrets import (
    env_password,
    new_password,
)

# Jinja's truncate filter: its default end and leeway (jinja2 policy truncate.leeway).
_TRUNCATE_END = "..."
_TRUNCATE_LEEWAY = 5
# In the output of `openssl x509 -ext subjectAltName` and a certbot renewal config.
_SAN_LINE = re.compile(r"\s*DNS:")
_SAN_NAME = re.compile(r"DNS:([^,\s]+)")
_SERVER_LINE = re.compile(r"server = ")


def _truncate(text: str, length: int) -> str:
    """What Jinja's ``truncate(length)`` gives (whole words, "..." appended)."""
    if len(text) <= length + _TRUNCATE_LEEWAY:
        return text
    return text[: length - len(_TRUNCATE_END)].rsplit(" ", 1)[0] + _TRUNCATE_END


def _results(registered: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    """The ``results`` of a registered loop; none when the task did not run."""
    if not registered:
        return []
    return list(registered.get("results") or [])


def _plain(data: Any) -> Any:
    """``data`` as plain lists, dicts and scalars (JSON's types).

    Ansible 2.19 hands filters lazy containers that template each value when
    it is read; Ansible's argument spec validator copies and walks them, at
    ~0.1 s per site record, against ~1 ms for plain data.
    """
    return json.loads(json.dumps(data))


def site_model_errors(
    sites: Any,
    site_spec: Mapping[str, Any],
    component_spec: Mapping[str, Any],
    layout: Mapping[str, Any],
) -> list[str]:
    """What is wrong with the site records, one message per fault naming its field.

    Each record is checked against ``site_spec`` and each of its components
    against ``component_spec`` (Ansible's argument specs, as the
    ``validate_argument_spec`` action checks them), and the names against the
    host layout's rules (``layout``: ``site_name_pattern``,
    ``site_name_min_length``, ``site_name_max_length``, ``component_pattern``).
    No faults: an empty list.
    """
    sites, site_spec, component_spec = _plain(sites), _plain(site_spec), _plain(component_spec)
    if not isinstance(sites, Mapping):
        kind = type(sites).__name__
        return [f"siteops_sites: must be a mapping of site name to record, got {kind}"]
    sites_check = ArgumentSpecValidator(dict(site_spec))
    components_check = ArgumentSpecValidator(dict(component_spec))
    low, high = int(layout["site_name_min_length"]), int(layout["site_name_max_length"])
    out: list[str] = []
    for site, record in sites.items():
        where = f"siteops_sites.{site}"
        name = str(site)
        if not re.match(layout["site_name_pattern"], name) or not low <= len(name) <= high:
            out.append(
                f"{where}: site name must be {low}-{high} characters of lowercase a-z, digits and"
                " single hyphens, starting with a letter and ending with a letter or digit"
            )
        if not isinstance(record, Mapping):
            out.append(f"{where}: must be a mapping (a site record), got {type(record).__name__}")
            continue
        out.extend(f"{where}: {m}" for m in sites_check.validate(dict(record)).error_messages)
        components = record.get("components")
        if not isinstance(components, Mapping):
            continue
        for component, fields in components.items():
            at = f"{where}.components.{component}"
            if not re.match(layout["component_pattern"], str(component)):
                out.append(
                    f"{at}: component name must be 1-16 characters of lowercase a-z and digits,"
                    " starting with a letter"
                )
            if not isinstance(fields, Mapping):
                kind = type(fields).__name__
                out.append(f"{at}: must be a mapping (a component record), got {kind}")
                continue
            out.extend(f"{at}: {m}" for m in components_check.validate(dict(fields)).error_messages)
    return out


def site_units(sites: Mapping[str, Any], unit_format: str) -> list[dict[str, Any]]:
    """Every process component (not ``static``) of every site, with its unit name.

    Each item is ``{site, name, unit, component, database, stopped}``:
    ``unit`` is ``unit_format % (site, name)`` (site_layout_unit_format),
    ``database`` whether the site has a database (true unless its record says
    otherwise), ``stopped`` whether an operator stopped the site or the
    component (``siteops stop``).
    """
    out: list[dict[str, Any]] = []
    for site, record in sites.items():
        database = (record.get("database") or {}).get("enabled", True)
        site_stopped = bool(record.get("stopped", False))
        for name, component in record["components"].items():
            if component["runtime"] == "static":
                continue
            out.append(
                {
                    "site": site,
                    "name": name,
                    "unit": unit_format % (site, name),
                    "component": component,
                    "database": database,
                    "stopped": site_stopped or bool(component.get("stopped", False)),
                }
            )
    return out


# The components nginx proxies to: each has a spare slot for switching releases.
PROXIED_COMPONENTS = ("frontend", "api")


def spare_port(port: int) -> int:
    """The spare slot's port of a component on ``port``: the other port of its pair.

    Every range of a port block starts at an even port, so its ten ports form
    five pairs (+0/+1, +2/+3, ...): 3100 has 3101, 3101 has 3100. A frontend
    and an api are each alone in their range, so the pair is theirs.
    """
    return port + 1 if port % 2 == 0 else port - 1


def spare_units(units: Iterable[Mapping[str, Any]], spare_format: str) -> list[dict[str, Any]]:
    """The spare slot of each unit of :func:`site_units` that nginx proxies to.

    A frontend or api with a port (static sites have no unit): the same item
    with ``unit`` = ``spare_format % (site, name)``, ``main_unit`` the unit it
    stands in for, ``port`` its spare port, ``main_port`` the component's own
    and ``spare`` true.
    """
    out: list[dict[str, Any]] = []
    for unit in units:
        port = unit["component"].get("port")
        if unit["name"] not in PROXIED_COMPONENTS or port is None:
            continue
        out.append(
            {
                **unit,
                "unit": spare_format % (unit["site"], unit["name"]),
                "main_unit": unit["unit"],
                "port": spare_port(int(port)),
                "main_port": int(port),
                "spare": True,
            }
        )
    return out


def release_slots(spares: Iterable[Mapping[str, Any]]) -> str:
    """The SLOTS setting of siteops-release: ``main_unit,spare_unit,port,spare_port,name`` each."""
    return " ".join(
        f"{s['main_unit']},{s['unit']},{s['main_port']},{s['port']},{s['name']}"
        for s in spares
        if not s.get("stopped")
    )


def release_settings(
    sites: Mapping[str, Any], layout: Mapping[str, str], common: Mapping[str, Any]
) -> dict[str, dict[str, str]]:
    """What siteops-release reads about each site (its settings file), by site.

    ``layout`` holds the host layout's ``unit_format``, ``spare_unit_format``,
    ``slice_format``, ``slice_dash_escape``, ``nginx_config_format`` and
    ``spare_link``; ``common`` the settings every site shares (KEEP,
    DRAIN_TIMEOUT, HOOK_TIMEOUT and the build environment). Per site: RUNTIME,
    UNITS (its process units), HEALTH_PORT (the frontend's port; empty for a
    static site, checked through nginx), HEALTH_HOST, SLOTS, SPARE_LINK, SLICE,
    NGINX_CONF and DATABASE (the site's name, or empty without a database).
    """
    slices = slice_names(sites, layout["slice_format"], layout["slice_dash_escape"])
    out: dict[str, dict[str, str]] = {}
    for site, record in sites.items():
        units = site_units({site: record}, layout["unit_format"])
        frontend = record["components"]["frontend"]
        static = frontend["runtime"] == "static"
        database = (record.get("database") or {}).get("enabled", True)
        out[site] = {
            **{str(k): str(v) for k, v in common.items()},
            "RUNTIME": str(frontend["runtime"]),
            "UNITS": " ".join(u["unit"] for u in units),
            "HEALTH_PORT": "" if static else str(frontend["port"]),
            "HEALTH_HOST": str(record["domains"]["primary"]),
            "SLOTS": release_slots(spare_units(units, layout["spare_unit_format"])),
            "SPARE_LINK": layout["spare_link"],
            "SLICE": slices[site],
            "NGINX_CONF": layout["nginx_config_format"] % site,
            "DATABASE": site if database else "",
        }
    return out


_SHELL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def shell_settings(settings: Mapping[str, Any]) -> str:
    """``KEY='value'`` lines for a shell to source, in key order, each value quoted.

    A name a shell could not assign (``ValueError``) is refused rather than
    written into a file that root sources.
    """
    lines = []
    for key in sorted(settings):
        if not _SHELL_NAME.match(str(key)):
            raise ValueError(f"{key!r} is not a shell variable name")
        lines.append(f"{key}={shlex.quote(str(settings[key]))}\n")
    return "".join(lines)


def settings_files(settings: Mapping[str, Mapping[str, Any]], path: str) -> list[dict[str, Any]]:
    """The entries of siteops.hosting.site_files writing each site's settings (root only, 0600).

    ``settings`` is ``{site: {KEY: value}}``; ``path`` a format string given
    ``site`` (``"/var/lib/siteops/releases/{site}.settings"``); each file holds
    :func:`shell_settings` of the site's settings.
    """
    return [
        {"path": path.format(site=site), "state": "file", "content": shell_settings(values),
         "owner": "root", "group": "root", "mode": "0600"}
        for site, values in settings.items()
    ]  # fmt: skip


# An access grant's name, and an OpenSSH public key as authorized_keys takes it
# (orchestrator/siteops/model.py checks the same; tests/test_filters.py holds them equal).
ACCESS_NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
ACCESS_KEY_TYPES = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-rsa",
)


def access_key_blob(key: str) -> tuple[str, str]:
    """``(type, base64 blob)`` of an OpenSSH public key line; ``ValueError`` naming the rule.

    The blob must decode and name the same type inside; a comment after it is
    allowed (and dropped by the callers); options before the type are not.
    """
    parts = str(key).strip().split()
    if len(parts) < 2 or parts[0] not in ACCESS_KEY_TYPES:
        raise ValueError(
            "an access key must be one OpenSSH public key line: type ("
            + ", ".join(ACCESS_KEY_TYPES)
            + "), base64 key, optional comment"
        )
    if any(ord(c) < 32 or ord(c) == 127 for c in str(key).strip()):
        raise ValueError("an access key is one line without control characters")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except ValueError:
        raise ValueError("the access key's base64 part does not decode") from None
    length = int.from_bytes(blob[:4], "big") if len(blob) >= 4 else -1
    if blob[4 : 4 + length].decode("ascii", "replace") != parts[0]:
        raise ValueError(f"the access key's base64 part is not a {parts[0]} key")
    return parts[0], parts[1]


def access_files(
    sites: Mapping[str, Any], paths: Mapping[str, str], command: str, user: str
) -> list[dict[str, Any]]:
    """The entries of siteops.hosting.site_files for each site's deploy access.

    A site whose record grants ``access`` (``{name: {key}}``) gets
    ``paths["fragment"]`` (authorized_keys lines: each key forced to run
    ``sudo -n <command> <site> <name>``, with ``restrict``) and
    ``paths["sudoers"]`` (``user`` may run exactly that command as root, once
    per grant; checked with visudo); a site without grants gets neither.
    ``paths`` are format strings given ``site``. A key granted twice (to two
    names or sites) is refused: sshd would use its first line only.
    """
    out: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    for site, record in sites.items():
        keys_path = paths["fragment"].format(site=site)
        sudoers_path = paths["sudoers"].format(site=site)
        grants = (record or {}).get("access") or {}
        if not grants:
            out += [{"path": p, "state": "absent"} for p in (keys_path, sudoers_path)]
            continue
        keys = [f"# siteops: deploy access to site {site} (roles/site_access)\n"]
        rules = [f"# siteops: deploy access to site {site}: its access command, nothing else\n"]
        for name in sorted(grants):
            if not ACCESS_NAME.match(str(name)):
                raise ValueError(f"siteops_sites.{site}.access: {name!r} is not a valid grant name")
            kind, blob = access_key_blob(str((grants[name] or {}).get("key", "")))
            holder = seen.setdefault(blob, f"{site}/{name}")
            if holder != f"{site}/{name}":
                raise ValueError(
                    f"siteops_sites.{site}.access.{name}: the key is already granted as {holder}"
                )
            forced = f"sudo -n {command} {site} {name}"
            keys.append(f'restrict,command="{forced}" {kind} {blob} siteops:{site}:{name}\n')
            rules.append(f"{user} ALL=(root) NOPASSWD: {command} {site} {name}\n")
        out.append({"path": keys_path, "state": "file", "content": "".join(keys),
                    "owner": "root", "group": "root", "mode": "0644"})  # fmt: skip
        out.append({"path": sudoers_path, "state": "file", "content": "".join(rules),
                    "owner": "root", "group": "root", "mode": "0440",
                    "validate": "/usr/sbin/visudo -cqf %s"})  # fmt: skip
    return out


def site_jobs(sites: Mapping[str, Any], unit_format: str) -> list[dict[str, Any]]:
    """Every scheduled job of every site, with its service and timer names.

    Each item is ``{site, name, unit, timer, job, database, stopped,
    runtime}``: ``unit`` is ``unit_format % (site, name)`` (a ``.service``),
    ``timer`` the same name ending in ``.timer``; ``stopped`` is whether an
    operator stopped the site (its timers stop with it); ``runtime`` the
    frontend's (a job runs the site's code, so its runtime's hardening applies).
    """
    out: list[dict[str, Any]] = []
    for site, record in sites.items():
        runtime = ((record.get("components") or {}).get("frontend") or {}).get("runtime")
        for name, job in (record.get("jobs") or {}).items():
            unit = unit_format % (site, name)
            out.append(
                {
                    "site": site,
                    "name": name,
                    "unit": unit,
                    "timer": unit.removesuffix(".service") + ".timer",
                    "job": job,
                    "database": (record.get("database") or {}).get("enabled", True),
                    "stopped": bool(record.get("stopped", False)),
                    "runtime": runtime,
                }
            )
    return out


def timer_states(jobs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """What each job's timer must be for siteops.hosting.site_units: enabled and running
    (restarted when its file changes), or stopped and disabled while its site is stopped.
    A job's service is never started here: its timer starts it."""
    return [
        {"name": job["timer"], "enabled": False, "state": "stopped"}
        if job.get("stopped")
        else {"name": job["timer"], "enabled": True, "state": "started", "restart_on_change": True}
        for job in jobs
    ]


def site_env_keys(sites: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, list[str]]:
    """The variables siteops manages in each site's ``.env``, by site.

    ``SITE_NAME``, ``HOST``, ``SITE_ROOT``, the keys of ``extra``
    (site_user_env_extra), then ``<COMPONENT>_PORT`` for each component with a
    port, followed by ``PORT`` for the frontend's.
    """
    out: dict[str, list[str]] = {}
    for site, record in sites.items():
        keys = ["SITE_NAME", "HOST", "SITE_ROOT", *extra.keys()]
        for name, component in record["components"].items():
            if component.get("port") is None:
                continue
            keys.append(name.upper() + "_PORT")
            if name == "frontend":
                keys.append("PORT")
        out[site] = keys
    return out


def site_env_blocks(
    sites: Mapping[str, Any], root: str, extra: Mapping[str, Any]
) -> dict[str, str]:
    """The block site_user manages at the top of each site's ``.env``, by site.

    ``SITE_NAME``, ``SITE_ROOT``, ``HOST``, ``PORT`` (the frontend's, when it
    has one), ``<COMPONENT>_PORT`` for each component with a port, then the
    variables of ``extra`` (site_user_env_extra); one per line.
    """
    out: dict[str, str] = {}
    for site, record in sites.items():
        components = record["components"]
        lines = [f"SITE_NAME={site}", f"SITE_ROOT={root}/{site}", "HOST=127.0.0.1"]
        if components.get("frontend", {}).get("port") is not None:
            lines.append(f"PORT={components['frontend']['port']}")
        lines += [
            f"{name.upper()}_PORT={component['port']}"
            for name, component in components.items()
            if component.get("port") is not None
        ]
        lines += [f"{key}={value}" for key, value in extra.items()]
        out[site] = "\n".join(lines)
    return out


def certs_wanted(
    sites: Mapping[str, Any], default_directory: str, default_email: str
) -> dict[str, dict[str, Any]]:
    """The sites that want a certificate (TLS not off), with ``{names, server, email}``.

    ``names`` is the primary domain, then the aliases; an empty or missing CA
    directory or email is ``default_directory`` or ``default_email``.
    """
    out: dict[str, dict[str, Any]] = {}
    for site, record in sites.items():
        tls = record.get("tls") or {}
        if not tls.get("enabled", True):
            continue
        domains = record["domains"]
        out[site] = {
            "names": [domains["primary"], *domains.get("aliases", [])],
            "server": tls.get("ca_directory") or default_directory,
            "email": tls.get("email") or default_email,
        }
    return out


_CERT_SECTION = "siteops-cert "


def certs_current(registered: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """What each site's current certificate covers: ``{names, server}`` by site.

    ``registered`` is one command's output: for each site a line
    ``siteops-cert <site>``, then the SAN lines of its certificate (``DNS:a,
    DNS:b``) and the ``server = `` line of its renewal config; a site without
    them has no names and no server (``""``).
    """
    out: dict[str, dict[str, Any]] = {}
    site = None
    for line in (registered or {}).get("stdout_lines") or []:
        if line.startswith(_CERT_SECTION):
            site = line[len(_CERT_SECTION) :].strip()
            out[site] = {"names": [], "server": ""}
        elif site is None:
            continue
        elif _SAN_LINE.match(line):
            out[site]["names"].extend(_SAN_NAME.findall(line))
        elif _SERVER_LINE.match(line) and not out[site]["server"]:
            out[site]["server"] = _SERVER_LINE.sub("", line, count=1)
    return out


def certs_due(wanted: Mapping[str, Any], have: Mapping[str, Any]) -> list[str]:
    """The sites that need a new certificate order.

    ``wanted`` and ``have`` map a site to ``{names, server}``: a site is due
    when it has no certificate, or one for other names (in any order) or
    from another CA.
    """
    out: list[str] = []
    for site, want in wanted.items():
        current = have.get(site, {"names": [], "server": ""})
        if sorted(current["names"]) != sorted(want["names"]) or (
            current["server"] != want["server"]
        ):
            out.append(site)
    return out


def cert_names(sites: Iterable[str], wanted: Mapping[str, Any]) -> list[dict[str, str]]:
    """Every name of every site in ``sites``: ``{site, name}``, in ``wanted``'s order."""
    return [{"site": site, "name": name} for site in sites for name in wanted[site]["names"]]


def challenge_check_failures(registered: Mapping[str, Any] | None) -> list[dict[str, str]]:
    """The pre-order HTTP checks that did not get their check file back.

    ``registered`` is a uri loop over ``{site, name}``; a check passes when it
    got HTTP 200 and ``siteops challenge check <site>``. Each failure is
    ``{name, why}``, ``why`` being ``<name>: <message, or HTTP status>``
    (the message cut to about 160 characters).
    """
    out: list[dict[str, str]] = []
    for result in _results(registered):
        item = result["item"]
        expected = f"siteops challenge check {item['site']}"
        status = result.get("status", -1)
        if status == 200 and str(result.get("content", "")).strip() == expected:
            continue
        message = result["msg"] if "msg" in result else f"HTTP {result.get('status', '?')}"
        why = _truncate(str(message), 160)
        out.append({"name": item["name"], "why": f"{item['name']}: {why}"})
    return out


_SITE_FILES_FORMATTED = ("path", "src", "owner", "group", "block")


def site_files(
    sites: Mapping[str, Any], specs: Iterable[Mapping[str, Any]], **values: Any
) -> list[dict[str, Any]]:
    """The entries of siteops.hosting.site_files for every site: ``specs`` once per site.

    In each spec, ``path``, ``src``, ``owner`` and ``group`` are format strings
    (``"{root}/{site}/shared"``, ``owner: "{site}"``) given ``site`` and
    ``values`` (a value that is a mapping gives each site its own:
    ``slice={"shop": "shop.slice"}``), and so is each path of ``exists``
    (what a template may depend on, see the action); an entry with a ``template`` gets
    ``vars.item`` = ``{key: site, value: record}``, as in a ``dict2items``
    loop. Sites come in their order, and each site's entries in the order of
    ``specs``.
    """
    out: list[dict[str, Any]] = []
    for site, record in sites.items():
        fields = {k: v[site] if isinstance(v, Mapping) else v for k, v in values.items()}
        for spec in specs:
            entry = dict(spec)
            for field in _SITE_FILES_FORMATTED:
                if isinstance(entry.get(field), str):
                    entry[field] = entry[field].format(site=site, **fields)
            if isinstance(entry.get("exists"), Mapping):
                entry["exists"] = {
                    name: path.format(site=site, **fields) for name, path in entry["exists"].items()
                }
            if "template" in entry:
                entry["vars"] = {**entry.get("vars", {}), "item": {"key": site, "value": record}}
            out.append(entry)
    return out


def each_files(
    items: Iterable[Mapping[str, Any]], specs: Iterable[Mapping[str, Any]], **values: Any
) -> list[dict[str, Any]]:
    """The entries of siteops.hosting.site_files for every item of a list: ``specs`` once each.

    As :func:`site_files`, but for a list of mappings (such as the units of
    :func:`site_units`): the format strings get the item's own string fields
    (``"/etc/systemd/system/{unit}"``) and ``values``, and a template entry
    gets ``vars.item`` = the item itself.
    """
    out: list[dict[str, Any]] = []
    for item in items:
        fields = {k: v for k, v in item.items() if isinstance(v, str)}
        for spec in specs:
            entry = dict(spec)
            for field in _SITE_FILES_FORMATTED:
                if isinstance(entry.get(field), str):
                    entry[field] = entry[field].format(**{**fields, **values})
            if "template" in entry:
                entry["vars"] = {**entry.get("vars", {}), "item": item}
            out.append(entry)
    return out


def unit_name_pattern(sites: Iterable[str], unit_format: str, component_pattern: str) -> str:
    """A regular expression matching the name of any component unit of any of ``sites``.

    ``unit_format`` is the host layout's (``"%s-%s.service"``, site then
    component); ``component_pattern`` its component name rule, anchored
    (``"^[a-z][a-z0-9]{0,15}$"``). No sites: a pattern that matches nothing.
    """
    names = sorted(set(sites))
    if not names:
        return "(?!)"
    site_part = "(?:" + "|".join(re.escape(name) for name in names) + ")"
    component_part = "(?:" + component_pattern.removeprefix("^").removesuffix("$") + ")"
    # The format's own text escaped, the two fields replaced by their patterns.
    pieces = unit_format.split("%s")
    if len(pieces) != 3:
        raise ValueError(f"unit format {unit_format!r}: expected two %s (site, component)")
    return (
        "^"
        + re.escape(pieces[0])
        + site_part
        + re.escape(pieces[1])
        + component_part
        + re.escape(pieces[2])
        + "$"
    )


def slice_names(sites: Iterable[str], slice_format: str, dash_escape: str) -> dict[str, str]:
    """Each site's slice name (the host layout's format, every "-" escaped): ``{site: name}``."""
    return {site: slice_format % site.replace("-", dash_escape) for site in sites}


def absent_files(paths: Iterable[str]) -> list[dict[str, str]]:
    """The entries of siteops.hosting.site_files that remove each of ``paths``."""
    return [{"path": path, "state": "absent"} for path in paths]


def formatted(names: Iterable[str], formats: Iterable[str]) -> list[str]:
    """Each name put into each printf-style format, name by name (``shop`` -> ``shop.slice``)."""
    formats = list(formats)
    return [fmt % name for name in names for fmt in formats]


def unit_list(names: Iterable[str], **fields: Any) -> list[dict[str, Any]]:
    """The units of siteops.hosting.site_units: ``{name, **fields}`` for each name."""
    return [{"name": name, **fields} for name in names]


def unit_states(
    units: Iterable[Mapping[str, Any]], env: str, placeholder: str
) -> list[dict[str, Any]]:
    """What each component unit (from :func:`site_units`) must be for siteops.hosting.site_units:

    enabled, and started: restarted when its unit file changes in the same
    call, or when its site's ``.env`` (``env``, a path with ``{site}``) changed
    since it started; but not started while its site still runs the
    placeholder release (while ``placeholder`` exists: its unit's condition
    would keep it from starting, so a start would change nothing). The host
    answers both in the same call. A unit an operator stopped (``stopped``) is
    stopped and disabled, so that it stays so across reboots.
    """
    out: list[dict[str, Any]] = []
    for unit in units:
        if unit.get("stopped"):
            out.append({"name": unit["unit"], "enabled": False, "state": "stopped"})
            continue
        site = unit["site"]
        out.append(
            {
                "name": unit["unit"],
                "enabled": True,
                "state": "started",
                "restart_on_change": True,
                "restart_when_newer": [env.format(site=site)],
                "unless_exists": placeholder.format(site=site),
            }
        )
    return out


def env_secrets(found: Mapping[str, Any] | None, key: str, label: str = "env") -> dict[str, str]:
    """The password in each site's ``.env`` line ``KEY=<scheme>://<user>:<password>@...``.

    ``found`` is what siteops.hosting.site_paths read (``sites.<site>.<label>.content``);
    a site whose ``.env`` was missing, or has no such line, is left out
    (module_utils/site_secrets.py: what counts as a password).
    """
    out: dict[str, str] = {}
    for site, paths in ((found or {}).get("sites") or {}).items():
        password = env_password((paths.get(label) or {}).get("content"), key)
        if password:
            out[site] = password
    return out


def site_passwords(
    sites: Iterable[str], existing: Mapping[str, str], length: int
) -> dict[str, str]:
    """Each site's password: the one it already has, or a new one (letters and digits)."""
    return {site: existing.get(site) or new_password(length) for site in sites}


def database_sites(sites: Mapping[str, Any], default_limit: int) -> list[dict[str, Any]]:
    """Each site with a database, for siteops.hosting.postgres_sites: its name and connection limit.

    A site has one unless its record turns ``database.enabled`` off. The
    limit is the site's ``database.connection_limit``, else ``default_limit``.
    """
    out: list[dict[str, Any]] = []
    for site, record in sites.items():
        database = record.get("database") if isinstance(record, Mapping) else None
        if isinstance(database, Mapping) and "enabled" in database and not database["enabled"]:
            continue
        limit = (database or {}).get("connection_limit") or default_limit
        out.append({"name": site, "connection_limit": int(limit)})
    return out


def site_accounts(sites: Iterable[str], root: str, shell: str) -> list[dict[str, str]]:
    """Each site's account for siteops.hosting.site_accounts: a group and a nologin user.

    Named as the site, home ``<root>/<site>`` (the site's tree), ``shell``, and
    the comment ``siteops site <site>``.
    """
    return [
        {"name": site, "home": f"{root}/{site}", "shell": shell, "comment": f"siteops site {site}"}
        for site in sites
    ]


_ANY = object()


def _record_at(record: Any, path: str) -> Any:
    """The value at the dotted ``path`` of a site record; None where the path stops."""
    value = record
    for key in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _has(record: Any, path: str, value: Any) -> bool:
    found = _record_at(record, path)
    return bool(found) if value is _ANY else found == value


def sites_with(sites: Mapping[str, Any], path: str, value: Any = _ANY) -> dict[str, Any]:
    """The records of ``sites`` whose dotted ``path`` is set (true), or equals ``value``.

    ``sites_with('cache.enabled')``: the sites with a cache;
    ``sites_with('components.frontend.runtime', 'static')``: the static ones.
    A record without the path has it unset. The order of ``sites`` is kept.
    """
    return {site: record for site, record in sites.items() if _has(record, path, value)}


def sites_without(sites: Mapping[str, Any], path: str, value: Any = _ANY) -> dict[str, Any]:
    """The records of ``sites`` that :func:`sites_with` leaves out, in their order."""
    return {site: record for site, record in sites.items() if not _has(record, path, value)}


def _name_list(names: Any) -> list[Any]:
    """``names`` as a list; a string, a mapping or anything not iterable is an error."""
    if isinstance(names, (str, Mapping)) or not isinstance(names, Iterable):
        raise ValueError(f"site names: expected a list of site names, got {names!r}")
    return list(names)


def only_sites(sites: Mapping[str, Any], names: Any) -> dict[str, Any]:
    """The records of ``sites`` named in ``names`` (a run's ``siteops_only``); all when none is.

    The order of ``sites`` is kept; a name that is no site of ``sites`` selects nothing.
    """
    if not names:
        return dict(sites)
    wanted = set(_name_list(names))
    return {site: record for site, record in sites.items() if site in wanted}


def site_names(names: Any, pattern: str, min_length: int, max_length: int) -> list[str]:
    """``names`` as a list of site names, each checked against the host layout's rule.

    A removal deletes ``<sites root>/<name>``, a user and a database named so:
    a name that is not a site name (empty, ``..``, a path, a mapping given
    where a list was meant) stops the run here, before any task uses it.
    """
    out: list[str] = []
    for name in _name_list(names):
        if (
            not isinstance(name, str)
            or not min_length <= len(name) <= max_length
            or not re.fullmatch(pattern, name)
        ):
            raise ValueError(
                f"site names: {name!r} is not a site name ({pattern}, "
                f"{min_length}-{max_length} characters)"
            )
        if name not in out:
            out.append(name)
    return out


_NGINX_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
               "\\": "&#92;", "$": "&#36;", "\n": " ", "\r": " "}  # fmt: skip


def nginx_html_text(text: str) -> str:
    """``text`` as HTML text that is safe inside a single-quoted nginx string.

    HTML's special characters become entities, and so do the two nginx reads
    in a string: ``$`` (a variable) and ``\\`` (an escape); so does ``'``,
    which would end the string. Line breaks become spaces.
    """
    return "".join(_NGINX_HTML.get(char, char) for char in str(text))


class FilterModule:
    """The siteops.hosting filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {
            "site_units": site_units,
            "spare_units": spare_units,
            "spare_port": spare_port,
            "release_slots": release_slots,
            "release_settings": release_settings,
            "shell_settings": shell_settings,
            "settings_files": settings_files,
            "access_files": access_files,
            "site_env_keys": site_env_keys,
            "certs_wanted": certs_wanted,
            "certs_current": certs_current,
            "certs_due": certs_due,
            "cert_names": cert_names,
            "challenge_check_failures": challenge_check_failures,
            "site_names": site_names,
            "sites_with": sites_with,
            "sites_without": sites_without,
            "only_sites": only_sites,
            "env_secrets": env_secrets,
            "site_passwords": site_passwords,
            "site_env_blocks": site_env_blocks,
            "site_accounts": site_accounts,
            "database_sites": database_sites,
            "site_files": site_files,
            "site_model_errors": site_model_errors,
            "each_files": each_files,
            "formatted": formatted,
            "absent_files": absent_files,
            "slice_names": slice_names,
            "unit_name_pattern": unit_name_pattern,
            "unit_list": unit_list,
            "unit_states": unit_states,
            "site_jobs": site_jobs,
            "timer_states": timer_states,
            "nginx_html_text": nginx_html_text,
        }
