#!/usr/bin/python
"""Ensure many systemd units are enabled and running with one query and only the needed actions."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: site_units
short_description: Ensure many systemd units' enablement and state with one query
description:
  - Reads the state of every unit of O(units) with one C(systemctl show), then
    acts only on what differs, with one C(systemctl) call per kind of action
    (enable, disable, start, stop, restart) for all the units that need it. A
    no-op costs one query instead of one module call per unit.
  - With O(files), the units' files (and any other files of the same
    entries as siteops.hosting.site_files takes) are ensured first, in the
    same call; a changed path under C(/etc/systemd/) makes a
    C(systemctl daemon-reload) happen before the units are ensured.
  - With O(stale), unit files no longer wanted are found, stopped, disabled and
    deleted first, in the same call. Those are the files of O(stale.directory) whose name
    matches one of O(stale.patterns) and whose first line matches
    O(stale.marker), except the units of O(units) and the files of O(files).
  - Used by the siteops roles for a site's component units, slices and timers.
version_added: 0.1.0
author: siteops
options:
  units:
    description: The units to ensure.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Unit name with its suffix (C(shop-frontend.service), C(shop.slice)).
        type: str
        required: true
      enabled:
        description: Enabled (V(true)) or disabled (V(false)); left alone when not given.
        type: bool
      state:
        description:
          - V(started), V(stopped), V(restarted) (always restarted) or V(reloaded)
            (always reloaded, or started when it is not running); left alone when not given.
        type: str
        choices: [started, stopped, restarted, reloaded]
      restart_on_change:
        description:
          - A V(started) unit is restarted when a path of O(files) named as the unit
            (its unit file) changed in this call.
        type: bool
        default: false
      restart_when_newer:
        description:
          - Files the unit reads when it starts (a site's C(.env)). A V(started) unit
            that runs is restarted when one of them was modified after it last started
            (systemd's C(ActiveEnterTimestamp)), so that it runs with what they hold.
        type: list
        elements: path
        default: []
      check:
        description:
          - A command (argument list) that must succeed before the unit is started,
            restarted or reloaded, such as V([nginx, -t]); when it fails, the call fails
            with its message and the unit is left as it was (never reload a broken
            configuration). Not run when the unit needs none of these, nor in check mode.
        type: list
        elements: str
      unless_exists:
        description:
          - While this path exists (links followed), O(units[].state) is not ensured,
            only O(units[].enabled) (a site still on its placeholder release, whose
            units' condition would keep them from starting anyway).
        type: path
  files:
    description:
      - Entries as siteops.hosting.site_files takes them (templates rendered
        by the action plugin), ensured before the units.
    type: list
    elements: dict
    default: []
  calendars:
    description:
      - Calendar expressions (timers' C(OnCalendar=)) that C(systemd-analyze calendar)
        must read, checked first. One that it cannot read fails the call, naming it,
        before anything changes.
    type: list
    elements: str
    default: []
  daemon_reload:
    description: Run C(systemctl daemon-reload) first (after unit files changed).
    type: bool
    default: false
  stale:
    description:
      - Which unit files this call owns, so that those no longer wanted are removed.
        A deleted unit file makes a C(systemctl daemon-reload) happen.
    type: dict
    suboptions:
      directory:
        description: Where the unit files are.
        type: path
        default: /etc/systemd/system
      patterns:
        description:
          - Regular expressions; a file whose name matches one (from its start) may be stale.
        type: list
        elements: str
        required: true
      marker:
        description:
          - A regular expression the whole first line of a stale file matches (its owner's mark).
        type: str
        required: true
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Ensure the site's units are enabled and running
  siteops.hosting.site_units:
    daemon_reload: "{{ files is changed }}"
    units:
      - {name: shop-frontend.service, enabled: true, state: started}
      - {name: siteops-backup@shop.timer, enabled: true, state: started}

- name: Reload nginx once nginx -t accepts the whole configuration
  siteops.hosting.site_units:
    units: [{name: nginx.service, state: reloaded, check: [nginx, -t]}]
- name: Ensure the site's units, and no unit of a component it no longer has
  siteops.hosting.site_units:
    units:
      - {name: shop-frontend.service, enabled: true, state: started}
    stale:
      patterns: ['^shop-[a-z]+\\.service$']
      marker: '# siteops component unit of site shop'
"""

RETURN = r"""
actions:
  description: What was done (in check mode, would be done) to each unit, by unit name.
  type: dict
  returned: always
  sample: {"shop-frontend.service": ["enable", "start"]}
changed_paths:
  description: The paths of O(files) that changed (in check mode, that would change).
  type: list
  elements: str
  returned: always
stale:
  description: The unit files found stale and deleted (in check mode, that would be), by name.
  type: list
  elements: str
  returned: always
"""

import datetime
import os
import re
from collections.abc import Iterable
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.siteops.hosting.plugins.module_utils.site_files import (
    ENTRY,
    ensure_files,
)

# systemctl show's ActiveState values of a unit that runs or is on its way.
RUNNING = {"active", "activating", "reloading", "refreshing"}
# UnitFileState values that count as enabled.
ENABLED = {"enabled", "enabled-runtime", "alias", "static", "indirect", "generated"}
ACTIONS = ("enable", "disable", "restart", "reload", "start", "stop")
PROPERTIES = "Id,LoadState,ActiveState,UnitFileState,ActiveEnterTimestamp"
# How systemctl show prints ActiveEnterTimestamp with --timestamp=us+utc.
TIMESTAMP = "%a %Y-%m-%d %H:%M:%S.%f UTC"


def parse_show(output: str) -> list[dict[str, str]]:
    """``systemctl show`` of several units: one mapping per unit, in order."""
    units: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in [*output.splitlines(), ""]:
        if not line.strip():
            if current:
                units.append(current)
                current = {}
            continue
        key, _, value = line.partition("=")
        current[key] = value
    return units


def started_at(shown: dict[str, str]) -> float | None:
    """When a unit last became active (seconds since the epoch), from ``systemctl show``."""
    text = shown.get("ActiveEnterTimestamp", "")
    if not text:
        return None
    try:
        when = datetime.datetime.strptime(text, TIMESTAMP)
    except ValueError:
        return None
    return when.replace(tzinfo=datetime.UTC).timestamp()


def modified(path: str) -> float | None:
    """When ``path`` was last modified (seconds since the epoch); None when it is missing."""
    try:
        return os.stat(path).st_mtime
    except FileNotFoundError:
        return None


def outdated(unit: dict[str, Any], now: dict[str, str]) -> bool:
    """Whether a running unit started before one of its ``restart_when_newer`` files changed."""
    since = started_at(now)
    if since is None:
        return False
    return any((modified(path) or 0.0) > since for path in unit.get("restart_when_newer") or [])


def waiting(units: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``units``, each whose ``unless_exists`` path exists left with its enablement only."""
    return [
        {"name": unit["name"], "enabled": unit.get("enabled")}
        if unit.get("unless_exists") and os.path.exists(unit["unless_exists"])
        else unit
        for unit in units
    ]


def plan(wanted: list[dict[str, Any]], shown: list[dict[str, str]]) -> dict[str, list[str]]:
    """The actions each unit needs, by name (units needing none are left out).

    ``shown`` is in the order of ``wanted`` (systemctl show keeps it). A unit
    systemd does not know is reported as ``missing`` when it should be enabled
    or running (in check mode: its file is not written yet), and needs nothing
    when it should be disabled and stopped. A running unit that started before
    one of its ``restart_when_newer`` files changed is restarted.
    """
    out: dict[str, list[str]] = {}
    for unit, now in zip(wanted, shown, strict=True):
        actions: list[str] = []
        if now.get("LoadState") == "not-found":
            # Absent is what a disabled, stopped unit may be; anything else needs it.
            if unit.get("enabled") or unit.get("state") in ("started", "restarted", "reloaded"):
                out[unit["name"]] = ["missing"]
            continue
        enabled = now.get("UnitFileState", "") in ENABLED
        if unit.get("enabled") is True and not enabled:
            actions.append("enable")
        elif unit.get("enabled") is False and enabled and now.get("UnitFileState") != "static":
            actions.append("disable")
        running = now.get("ActiveState", "") in RUNNING
        state = unit.get("state")
        if state == "restarted":
            actions.append("restart")
        elif state == "reloaded":
            actions.append("reload" if running else "start")
        elif state == "started" and not running:
            actions.append("start")
        elif state == "started" and outdated(unit, now):
            actions.append("restart")
        elif state == "stopped" and running:
            actions.append("stop")
        if actions:
            out[unit["name"]] = actions
    return out


def restarts(units: list[dict[str, Any]], changed: list[str]) -> list[dict[str, Any]]:
    """``units``, with each started unit whose file changed (a changed path named as
    the unit, with ``restart_on_change``) to be restarted instead."""
    names = {path.rsplit("/", 1)[-1] for path in changed}

    def again(unit: dict[str, Any]) -> bool:
        return bool(unit.get("restart_on_change")) and unit.get("state") == "started"

    return [
        {**unit, "state": "restarted"} if again(unit) and unit["name"] in names else unit
        for unit in units
    ]


def stale_units(
    found: Iterable[tuple[str, str]], patterns: list[str], marker: str, keep: set[str]
) -> list[str]:
    """The names of ``found`` (name, first line) that are stale, sorted.

    Stale: named like one of ``patterns`` (matched from the name's start), marked
    by ``marker`` (the whole first line), and not in ``keep``.
    """
    names = [re.compile(p) for p in patterns]
    mark = re.compile(marker)
    return sorted(
        name
        for name, first in found
        if name not in keep
        and any(p.match(name) for p in names)
        and mark.fullmatch(first.rstrip("\r\n"))
    )


def first_lines(directory: str, patterns: list[str]) -> list[tuple[str, str]]:
    """(name, first line) of each regular file of ``directory`` named like one of ``patterns``."""
    names = [re.compile(p) for p in patterns]
    out: list[tuple[str, str]] = []
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return out
    for entry in entries:
        if not entry.is_file(follow_symlinks=False) or not any(p.match(entry.name) for p in names):
            continue
        with open(entry.path, encoding="utf-8", errors="replace") as unit_file:
            out.append((entry.name, unit_file.readline()))
    return out


class Systemd:
    """systemctl for one module call: one query for many units, then one call per action."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.systemctl = module.get_bin_path("systemctl", required=True)

    def run(self, *args: str, fail: str = "", **result: Any) -> str:
        rc, out, err = self.module.run_command([self.systemctl, *args])
        if rc != 0:
            self.module.fail_json(
                msg=f"{fail or 'systemctl ' + ' '.join(args)} failed: {err.strip()}",
                rc=rc,
                **result,
            )
        return str(out)

    def check(
        self, units: list[dict[str, Any]], actions: dict[str, list[str]], **result: Any
    ) -> None:
        """Run the ``check`` of each unit about to be started, restarted or reloaded."""
        for unit in units:
            todo = [a for a in actions.get(unit["name"], []) if a in ("start", "restart", "reload")]
            if not unit.get("check") or not todo:
                continue
            rc, out, err = self.module.run_command(unit["check"])
            if rc != 0:
                self.module.fail_json(
                    msg=f"{unit['name']} was not {todo[0]}ed: {' '.join(unit['check'])} failed: "
                    f"{(err or out).strip()}",
                    rc=rc,
                    actions=actions,
                    **result,
                )

    def ensure(self, units: list[dict[str, Any]], **result: Any) -> dict[str, list[str]]:
        """Query ``units`` once, then act on what differs (in check mode: only say what)."""
        if not units:
            return {}
        out = self.run(
            "show",
            "--timestamp=us+utc",
            f"--property={PROPERTIES}",
            "--",
            *[u["name"] for u in units],
            fail="systemctl show",
        )
        shown = parse_show(out)
        if len(shown) != len(units):
            self.module.fail_json(
                msg=f"systemctl show answered for {len(shown)} of {len(units)} units"
            )
        actions = plan(units, shown)
        missing = [name for name, todo in actions.items() if "missing" in todo]
        if missing and not self.module.check_mode:
            self.module.fail_json(msg=f"systemd does not know these units: {', '.join(missing)}")
        if not self.module.check_mode:
            self.check(units, actions, **result)
            for action in ACTIONS:
                names = [name for name, todo in actions.items() if action in todo]
                if names:
                    self.run(action, "--", *names, actions=actions, **result)
        return actions


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            units=dict(
                type="list",
                elements="dict",
                required=True,
                options=dict(
                    name=dict(type="str", required=True),
                    enabled=dict(type="bool"),
                    state=dict(type="str", choices=["started", "stopped", "restarted", "reloaded"]),
                    restart_on_change=dict(type="bool", default=False),
                    restart_when_newer=dict(type="list", elements="path", default=[]),
                    unless_exists=dict(type="path"),
                    check=dict(type="list", elements="str"),
                ),
            ),
            files=dict(type="list", elements="dict", default=[], options=ENTRY),
            calendars=dict(type="list", elements="str", default=[]),
            daemon_reload=dict(type="bool", default=False),
            stale=dict(
                type="dict",
                options=dict(
                    directory=dict(type="path", default="/etc/systemd/system"),
                    patterns=dict(type="list", elements="str", required=True),
                    marker=dict(type="str", required=True),
                ),
            ),
        ),
        supports_check_mode=True,
    )
    check = module.check_mode
    systemd = Systemd(module)
    calendars = sorted(set(module.params["calendars"]))
    if calendars:
        # Reads only; it names the expression it cannot read.
        rc, _out, err = module.run_command(
            [module.get_bin_path("systemd-analyze", required=True), "calendar", "--", *calendars]
        )
        if rc != 0:
            module.fail_json(msg=f"systemd cannot read a schedule: {err.strip()}", rc=rc)
    done: dict[str, Any] = {"changed_paths": [], "stale": []}
    actions: dict[str, list[str]] = {}
    stale_spec = module.params["stale"]
    if stale_spec:
        directory = stale_spec["directory"]
        keep = {u["name"] for u in module.params["units"]} | {
            os.path.basename(f["path"])
            for f in module.params["files"]
            if os.path.dirname(f["path"]) == directory.rstrip("/")
        }
        found = first_lines(directory, stale_spec["patterns"])
        done["stale"] = stale_units(found, stale_spec["patterns"], stale_spec["marker"], keep)
        # Stopped and disabled while systemd still knows them, then deleted.
        gone = [{"name": n, "enabled": False, "state": "stopped"} for n in done["stale"]]
        actions.update(systemd.ensure(gone, **done))
        if not check:
            for name in done["stale"]:
                os.remove(os.path.join(directory, name))
    changed_paths = ensure_files(module, module.params["files"], done)
    units = restarts(waiting(module.params["units"]), changed_paths)
    reload = (
        module.params["daemon_reload"]
        or bool(done["stale"])
        or any(path.startswith("/etc/systemd/") for path in changed_paths)
    )
    if reload and not check:
        systemd.run("daemon-reload", **done)
    actions.update(systemd.ensure(units, **done))
    changed = reload or bool(changed_paths) or bool(actions)
    module.exit_json(changed=changed, actions=actions, **done)


if __name__ == "__main__":
    main()
