"""plugins/callback/gc_freeze.py: the workers of a run inherit a loaded, frozen heap.

The worker of each task is forked from Ansible's main process; at the start of
each play the callback loads there what every worker would load for itself,
then freezes that process's objects, so a worker's garbage collector finds
them in the permanent generation. A lookup runs in the worker: it reports how
many objects it inherited frozen, and which of the modules the callback loads
it found already imported (the task itself uses none of them).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO, local_ansible_env, probe_in_a_worker

CALLBACK = "ansible_collections.siteops.hosting.plugins.callback.gc_freeze"
FILTERS = "ansible_collections.siteops.hosting.plugins.filter.siteops"
DECODER = "ansible.module_utils._internal._json._profiles._module_legacy_m2c"

# Run by ansible-playbook's Python: the callback's warm-up as the collection
# loader finds it, then what templating a string adds to Jinja's lexer cache.
WARM = f"""
import importlib, json
from ansible.plugins.loader import init_plugin_loader
from ansible.template import Templar, trust_as_template
from ansible._internal._templating._jinja_bits import AnsibleEnvironment

init_plugin_loader([])
missing = importlib.import_module({CALLBACK!r}).warm_workers()
lexers = len(AnsibleEnvironment._lexer_cache)
Templar().template(trust_as_template("{{{{ 1 + 1 }}}}"))
print(json.dumps([missing, lexers, len(AnsibleEnvironment._lexer_cache)]))
"""


def _worker(tmp_path: Path, config: Path) -> tuple[int, list[str]]:
    """What a task's worker inherited: its frozen objects, the warmed modules it found."""
    env = {**local_ansible_env(), "ANSIBLE_CONFIG": str(config), "ANSIBLE_STRATEGY": "linear"}
    frozen, inherited = probe_in_a_worker(
        tmp_path,
        f"(gc.get_freeze_count(), [m for m in {[FILTERS, DECODER]!r} if m in sys.modules])",
        env=env,
    )
    return int(frozen), list(inherited)


def test_with_the_checkout_s_ansible_cfg_each_worker_inherits_a_frozen_heap(
    tmp_path: Path,
) -> None:
    frozen, inherited = _worker(tmp_path, REPO / "ansible.cfg")
    assert frozen > 10_000, f"the worker inherited {frozen} frozen objects"
    assert inherited == [FILTERS, DECODER]


def test_without_the_callback_a_worker_walks_the_whole_heap(tmp_path: Path) -> None:
    config = tmp_path / "ansible.cfg"
    config.write_text("[defaults]\n", encoding="utf-8")
    assert _worker(tmp_path, config) == (0, [])


def test_the_warm_up_finds_every_module_and_builds_the_lexer_templating_uses() -> None:
    # A module renamed by an Ansible release would no longer be loaded ahead:
    # this test names it. The lexer the warm-up built is the one templating
    # then uses: the cache does not grow.
    run = subprocess.run(
        [sys.executable, "-c", WARM], env=local_ansible_env(),
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    missing, lexers_after_warm_up, lexers_after_template = json.loads(run.stdout)
    assert missing == []
    assert lexers_after_warm_up == 1
    assert lexers_after_template == 1
