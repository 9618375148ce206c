"""Ansible's workers leave the controller's objects alone when they collect garbage.

Ansible forks a worker from its main process for every task and host. By the
first task, that process holds the inventory, every variable, the parsed
playbook and the loaded plugins: a few hundred thousand objects. Python's
cyclic garbage collector, running in a worker, walks every object it
tracks, the inherited ones too, and writes to each one it walks, so the
kernel copies their memory pages into the worker (copy-on-write) and the
walk itself costs CPU. At the start of each play this callback moves every
object the collector tracks to its permanent generation (``gc.freeze()``,
Python's documented remedy for processes that fork): neither the workers nor
the main process walk them again. Objects made later are collected as
before; objects freed by their reference count are freed as before. It does
not collect garbage first, as Python's documentation advises: a collection
walked the whole heap once more (25 ms with 50 sites), and the garbage it
would free (the cycles left by parsing) is a few MB that ansible-playbook
releases when it exits.

Measured on a sandbox with 30 static sites, a no-op ``siteops apply`` of one
site, 5 to 6 rounds taking turns (the CPU time of siteops and everything it
started): 3.11 s without against 2.89 s with under Ansible's linear
strategy, 2.84 s against 2.73 s under Mitogen's.

Before it freezes, it loads what every worker would otherwise load for
itself, only to lose it when the worker exits (a worker lives for one task):
the Jinja filters and tests of Ansible and of this collection (with the
module_utils they import), Jinja's lexer for Ansible's template syntax
(Ansible keeps it in a class-level cache; each worker built its own, ~1.5
ms), and the modules that encode a module's arguments and decode its
result. Measured on a sandbox with 5 static sites, a no-op run of one site,
10 rounds taking turns: the workers' CPU time went from 0.78 s to 0.71 s. A
module a later Ansible release no longer has is left out (the unit tests say
so).

It prints nothing; ansible.cfg turns it on (``callbacks_enabled``).
"""

from __future__ import annotations

import gc
import importlib
import pkgutil
from typing import Any

from ansible.plugins.callback import CallbackBase
from ansible.plugins.loader import filter_loader, test_loader
from ansible.template import Templar, trust_as_template

DOCUMENTATION = r"""
name: gc_freeze
type: aggregate
short_description: Freezes the controller's objects before the workers fork
description:
  - At the start of each play, loads what each worker would otherwise load for
    itself (Jinja filters and tests, Jinja's lexer, the codecs of module
    arguments and results), then moves the objects the garbage collector tracks to
    Python's permanent generation (C(gc.freeze())), so the garbage collector of
    each forked worker does not walk (and copy) them again.
  - Prints nothing.
requirements:
  - enabled in C(callbacks_enabled)
"""


# Modules the workers import while they run a task, by name: the packages of
# ansible.builtin's filters and tests (the collection loader makes them when a
# template names one), and Ansible's encoder of module arguments and decoder of
# module results (private modules: the unit tests fail if one is renamed).
WORKER_MODULES = (
    "ansible_collections.ansible.builtin.plugins.filter",
    "ansible_collections.ansible.builtin.plugins.test",
    "ansible.module_utils._internal._json._profiles._module_legacy_c2m",
    "ansible.module_utils._internal._json._profiles._module_legacy_m2c",
)
# This collection's Jinja filters: plugins/filter/ next to this plugin's folder
# (None when this file is loaded on its own, not as part of a collection).
_COLLECTION = __name__.rpartition(".plugins.callback.")[0]
COLLECTION_FILTERS = (
    f"{_COLLECTION}.plugins.filter" if _COLLECTION.startswith("ansible_collections.") else None
)


def warm_workers() -> list[str]:
    """Load here what each worker would load for itself; the module names that were not found."""
    for loader in (filter_loader, test_loader):
        for _plugin in loader.all():
            pass
    # Jinja's lexer for the default syntax, kept in a class-level cache.
    Templar().template(trust_as_template("{{ 0 }}"))
    names = list(WORKER_MODULES)
    missing = []
    if COLLECTION_FILTERS is not None:
        try:
            package = importlib.import_module(COLLECTION_FILTERS)
        except ImportError:
            missing.append(COLLECTION_FILTERS)
        else:
            modules = pkgutil.iter_modules(package.__path__)
            names += [f"{COLLECTION_FILTERS}.{m.name}" for m in modules]
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


class CallbackModule(CallbackBase):  # type: ignore[misc]
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "siteops.hosting.gc_freeze"
    CALLBACK_NEEDS_ENABLED = True

    def v2_playbook_on_play_start(self, play: Any) -> None:
        warm_workers()
        gc.freeze()
