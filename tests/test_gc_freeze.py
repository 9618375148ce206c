"""plugins/callback/gc_freeze.py: the workers of a run inherit a frozen heap.

The worker of each task is forked from Ansible's main process; the callback
freezes that process's objects at the start of each play, so a worker's
garbage collector finds them in the permanent generation. A lookup runs in
the worker: it reports how many objects it inherited frozen.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO, local_ansible_env

LOOKUP = """
import gc
from ansible.plugins.lookup import LookupBase

class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        return [gc.get_freeze_count()]
"""

PLAY = """
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - ansible.builtin.debug:
        msg: "frozen={{ lookup('frozen_objects') }}"
"""


def _frozen_in_worker(tmp_path: Path, config: Path) -> int:
    (tmp_path / "lookup_plugins").mkdir(exist_ok=True)
    (tmp_path / "lookup_plugins" / "frozen_objects.py").write_text(LOOKUP, encoding="utf-8")
    (tmp_path / "play.yml").write_text(PLAY, encoding="utf-8")
    env = {**local_ansible_env(), "ANSIBLE_CONFIG": str(config), "ANSIBLE_STRATEGY": "linear"}
    run = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,",
         str(tmp_path / "play.yml")],
        env=env, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    (count,) = re.findall(r"frozen=(\d+)", run.stdout)
    return int(count)


def test_with_the_checkout_s_ansible_cfg_each_worker_inherits_a_frozen_heap(
    tmp_path: Path,
) -> None:
    frozen = _frozen_in_worker(tmp_path, REPO / "ansible.cfg")
    assert frozen > 10_000, f"the worker inherited {frozen} frozen objects"


def test_without_the_callback_a_worker_walks_the_whole_heap(tmp_path: Path) -> None:
    config = tmp_path / "ansible.cfg"
    config.write_text("[defaults]\n", encoding="utf-8")
    assert _frozen_in_worker(tmp_path, config) == 0
