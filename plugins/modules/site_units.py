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
          - V(started), V(stopped) or V(restarted) (always restarted); left alone when not given.
        type: str
        choices: [started, stopped, restarted]
      restart_on_change:
        description:
          - A V(started) unit is restarted when a path of O(files) named as the unit
            (its unit file) changed in this call.
        type: bool
        default: false
  files:
    description:
      - Entries as siteops.hosting.site_files takes them (templates rendered
        by the action plugin), ensured before the units.
    type: list
    elements: dict
    default: []
  daemon_reload:
    description: Run C(systemctl daemon-reload) first (after unit files changed).
    type: bool
    default: false
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
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.siteops.hosting.plugins.module_utils.site_files import (
    ENTRY,
    Ensurer,
    ensure_entries,
)

# systemctl show's ActiveState values of a unit that runs or is on its way.
RUNNING = {"active", "activating", "reloading", "refreshing"}
# UnitFileState values that count as enabled.
ENABLED = {"enabled", "enabled-runtime", "alias", "static", "indirect", "generated"}
ACTIONS = ("enable", "disable", "restart", "start", "stop")
PROPERTIES = "Id,LoadState,ActiveState,UnitFileState"


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


def plan(wanted: list[dict[str, Any]], shown: list[dict[str, str]]) -> dict[str, list[str]]:
    """The actions each unit needs, by name (units needing none are left out).

    ``shown`` is in the order of ``wanted`` (systemctl show keeps it). A unit
    systemd does not know is reported as ``missing`` when it should be enabled
    or running (in check mode: its file is not written yet), and needs nothing
    when it should be disabled and stopped.
    """
    out: dict[str, list[str]] = {}
    for unit, now in zip(wanted, shown, strict=True):
        actions: list[str] = []
        if now.get("LoadState") == "not-found":
            # Absent is what a disabled, stopped unit may be; anything else needs it.
            if unit.get("enabled") or unit.get("state") in ("started", "restarted"):
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
        elif state == "started" and not running:
            actions.append("start")
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
                    state=dict(type="str", choices=["started", "stopped", "restarted"]),
                    restart_on_change=dict(type="bool", default=False),
                ),
            ),
            files=dict(type="list", elements="dict", default=[], options=ENTRY),
            daemon_reload=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    ensurer = Ensurer(check=module.check_mode)
    failure = ensure_entries(ensurer, module.params["files"])
    if failure is not None:
        module.fail_json(msg=failure, changed_paths=ensurer.changed)
    done: dict[str, Any] = {"changed_paths": ensurer.changed}
    if module._diff:
        done["diff"] = ensurer.diffs
    units = restarts(module.params["units"], ensurer.changed)
    systemctl = module.get_bin_path("systemctl", required=True)
    changed = bool(ensurer.changed)
    reload = module.params["daemon_reload"] or any(
        path.startswith("/etc/systemd/") for path in ensurer.changed
    )
    if reload:
        changed = True
        if not module.check_mode:
            module.run_command([systemctl, "daemon-reload"], check_rc=True)
    if not units:
        module.exit_json(changed=changed, actions={}, **done)
    rc, out, err = module.run_command(
        [systemctl, "show", f"--property={PROPERTIES}", "--", *[u["name"] for u in units]]
    )
    if rc != 0:
        module.fail_json(msg=f"systemctl show failed: {err.strip()}", rc=rc)
    shown = parse_show(out)
    if len(shown) != len(units):
        module.fail_json(msg=f"systemctl show answered for {len(shown)} of {len(units)} units")
    actions = plan(units, shown)
    missing = [name for name, todo in actions.items() if "missing" in todo]
    if missing and not module.check_mode:
        module.fail_json(msg=f"systemd does not know these units: {', '.join(missing)}")
    if not module.check_mode:
        for action in ACTIONS:
            names = [name for name, todo in actions.items() if action in todo]
            if names:
                rc, out, err = module.run_command([systemctl, action, "--", *names])
                if rc != 0:
                    module.fail_json(
                        msg=f"systemctl {action} {' '.join(names)} failed: {err.strip()}",
                        actions=actions,
                        **done,
                    )
    module.exit_json(changed=changed or bool(actions), actions=actions, **done)


if __name__ == "__main__":
    main()
