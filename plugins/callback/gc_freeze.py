"""Ansible's workers leave the controller's objects alone when they collect garbage.

Ansible forks a worker from its main process for every task and host. By the
first task, that process holds the inventory, every variable, the parsed
playbook and the loaded plugins: a few hundred thousand objects. Python's
cyclic garbage collector, running in a worker, walks every object it
tracks, the inherited ones too, and writes to each one it walks, so the
kernel copies their memory pages into the worker (copy-on-write) and the
walk itself costs CPU. At the start of each play this callback collects
garbage once, then moves every object still alive to the collector's
permanent generation (``gc.freeze()``, Python's documented remedy for
processes that fork): neither the workers nor the main process walk them
again. Objects made later are collected as before; objects freed by their
reference count are freed as before.

Measured on a sandbox with 30 static sites, a no-op ``siteops apply`` of one
site, 5 to 6 rounds taking turns (the CPU time of siteops and everything it
started): 3.11 s without against 2.89 s with under Ansible's linear
strategy, 2.84 s against 2.73 s under Mitogen's.

It prints nothing; ansible.cfg turns it on (``callbacks_enabled``).
"""

from __future__ import annotations

import gc
from typing import Any

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: gc_freeze
type: aggregate
short_description: Freezes the controller's objects before the workers fork
description:
  - At the start of each play, collects garbage once and moves the surviving
    objects to Python's permanent generation (C(gc.freeze())), so the garbage
    collector of each forked worker does not walk (and copy) them again.
  - Prints nothing.
requirements:
  - enabled in C(callbacks_enabled)
"""


class CallbackModule(CallbackBase):  # type: ignore[misc]
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "siteops.hosting.gc_freeze"
    CALLBACK_NEEDS_ENABLED = True

    def v2_playbook_on_play_start(self, play: Any) -> None:
        gc.collect()
        gc.freeze()
