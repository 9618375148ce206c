"""The ``mitogen_linear`` strategy of Mitogen for Ansible, found through this folder.

ansible.cfg names this folder in ``strategy_plugins``, so the setting does not
depend on where the virtual environment keeps its site-packages. Mitogen keeps
one Python interpreter per host and user for the whole run instead of starting
one per task and loop item, which is where most of a run's time went (see
benchmarks/RESULTS.md). Molecule does not use it: its own config keeps
Ansible's linear strategy (its create/destroy playbooks poll async tasks on
localhost, which hangs under Mitogen).

Ansible runs every task in a worker process forked from this one, so whatever
a worker loads for itself is loaded again by the next one. Before the first
task, this strategy loads once what nearly every worker needs, so the workers
inherit it: Ansible's Jinja filters and tests (each worker spent about 10 ms
importing them), and the list of installed collection folders that Mitogen
looks up for every task that runs a collection's module (about 200 ms each
time with the ``ansible`` package's collections). The results are the same;
only the time to reach them moves.

Turn it off for one run with ``ANSIBLE_STRATEGY=linear``.
"""

from __future__ import annotations

import functools
from typing import Any

import ansible.collections.list
import ansible_mitogen.planner
from ansible.plugins.loader import filter_loader, test_loader
from ansible_mitogen.plugins.strategy.mitogen_linear import StrategyModule as _MitogenLinear

__all__ = ["StrategyModule"]


@functools.cache
def _collection_dirs() -> tuple[bytes, ...]:
    return tuple(ansible.collections.list.list_collection_dirs())


def _load_collections(invocation: Any) -> None:
    """Mitogen's ``_load_collections``, reading the folder list found once per run."""
    for collection_path in _collection_dirs():
        invocation._extra_sys_paths.add(collection_path.decode("utf-8"))


class StrategyModule(_MitogenLinear):  # type: ignore[misc]
    """Mitogen's linear strategy, with what every worker needs loaded before the first fork."""

    def run(self, iterator: Any, play_context: Any) -> Any:
        for loader in (filter_loader, test_loader):
            for _plugin in loader.all():
                pass
        _collection_dirs()
        ansible_mitogen.planner._load_collections = _load_collections
        return super().run(iterator, play_context)
