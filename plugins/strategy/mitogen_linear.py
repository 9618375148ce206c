"""The ``mitogen_linear`` strategy of Mitogen for Ansible, found through this folder.

ansible.cfg (and Molecule's config) name this folder in ``strategy_plugins``,
so the setting does not depend on where the virtual environment keeps its
site-packages. Mitogen keeps one Python interpreter per host and connection
for the whole run instead of starting one per task and loop item, which is
where most of a run's time went (see benchmarks/RESULTS.md). Its ssh transport
is used for SSH hosts; other connections (Molecule's docker) run as usual.

Turn it off for one run with ``ANSIBLE_STRATEGY=linear``.
"""

from ansible_mitogen.plugins.strategy.mitogen_linear import StrategyModule

__all__ = ["StrategyModule"]
