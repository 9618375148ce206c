"""The ``mitogen_linear`` strategy of Mitogen for Ansible, found through this folder.

ansible.cfg names this folder in ``strategy_plugins``, so the setting does not
depend on where the virtual environment keeps its site-packages. Mitogen keeps
one Python interpreter per host and user for the whole run instead of starting
one per task and loop item, which is where most of a run's time went (see
benchmarks/RESULTS.md). Molecule does not use it: its own config keeps
Ansible's linear strategy (its create/destroy playbooks poll async tasks on
localhost, which hangs under Mitogen).

Turn it off for one run with ``ANSIBLE_STRATEGY=linear``.
"""

from ansible_mitogen.plugins.strategy.mitogen_linear import StrategyModule

__all__ = ["StrategyModule"]
