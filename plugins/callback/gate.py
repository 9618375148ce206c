"""A run waits at the start of its first play until siteops opens its gate.

siteops starts ansible-playbook before it has taken the host's lock, with the
environment variable ``SITEOPS_GATE`` naming a named pipe, and turns this
callback on for that run. At the start of the first play, before any task
touches a host, the run waits here until siteops writes to the pipe (see
``plugins/module_utils/gate.py``). If the pipe closes without that word, or
cannot be read, the run ends there with exit status 99: no task has run.

Without ``SITEOPS_GATE`` (a plain ansible-playbook run, or any other siteops
command) it does nothing.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from ansible.plugins.callback import CallbackBase
from ansible_collections.siteops.hosting.plugins.module_utils.gate import (
    ENV,
    SHUT_EXIT,
    wait,
)

DOCUMENTATION = r"""
name: gate
type: aggregate
short_description: Holds a run before its first task until siteops opens its gate
description:
  - At the start of the first play, if the environment variable C(SITEOPS_GATE) names
    a named pipe, waits until siteops writes to it; ends the run (exit status 99)
    if the pipe closes without that.
  - Without C(SITEOPS_GATE), does nothing. Prints nothing unless the gate stays shut.
requirements:
  - enabled in C(callbacks_enabled) (siteops does that for the runs it gates)
"""


class CallbackModule(CallbackBase):  # type: ignore[misc]
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "siteops.hosting.gate"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._passed = False

    def v2_playbook_on_play_start(self, play: Any) -> None:
        if self._passed:
            return
        self._passed = True
        path = os.environ.get(ENV)
        if not path:
            return
        shut = wait(path)
        if shut is not None:
            # Ansible turns a callback's exception into a warning and goes on:
            # leave before any task instead.
            sys.stderr.write(f"siteops.hosting.gate: {shut}; no task has run\n")
            sys.stderr.flush()
            os._exit(SHUT_EXIT)
