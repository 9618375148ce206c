"""ansible-playbook as siteops runs it (siteops.ansible_playbook): real runs on the controller."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from siteops.ansible_playbook import GC_THRESHOLD
from siteops.runner import ANSIBLE_PLAYBOOK
from tests.conftest import local_ansible_env

# What the garbage collector of a task's worker (forked from ansible-playbook) is set to.
LOOKUP = """
import gc
from ansible.plugins.lookup import LookupBase

class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        return [",".join(str(n) for n in gc.get_threshold())]
"""
PLAY = """
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - ansible.builtin.debug:
        msg: "threshold={{ lookup('gc_threshold') }};"
"""


def _threshold(tmp_path: Path, command: list[str]) -> tuple[int, ...]:
    (tmp_path / "lookup_plugins").mkdir(exist_ok=True)
    (tmp_path / "lookup_plugins" / "gc_threshold.py").write_text(LOOKUP, encoding="utf-8")
    (tmp_path / "play.yml").write_text(PLAY, encoding="utf-8")
    run = subprocess.run(
        [*command, "-i", "localhost,", str(tmp_path / "play.yml")],
        env=local_ansible_env(), cwd=tmp_path, capture_output=True, text=True, check=False,
        timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    (found,) = re.findall(r"threshold=([\d,]+);", run.stdout)
    return tuple(int(n) for n in found.split(","))


def test_siteops_runs_play_with_the_raised_collector_threshold(tmp_path: Path) -> None:
    assert _threshold(tmp_path, list(ANSIBLE_PLAYBOOK)) == GC_THRESHOLD


def test_plain_ansible_playbook_keeps_python_s_default_threshold(tmp_path: Path) -> None:
    assert _threshold(tmp_path, [str(Path(sys.executable).parent / "ansible-playbook")]) == (
        700, 10, 10,
    )  # fmt: skip


def test_it_is_ansible_playbook_itself_with_its_name_and_exit_status(tmp_path: Path) -> None:
    version = subprocess.run(
        [*ANSIBLE_PLAYBOOK, "--version"], env=local_ansible_env(), cwd=tmp_path,
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("ansible-playbook [core 2.")
    missing = subprocess.run(
        [*ANSIBLE_PLAYBOOK, str(tmp_path / "absent.yml")], env=local_ansible_env(),
        cwd=tmp_path, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert missing.returncode == 1
    assert "the playbook: " in missing.stderr and "could not be found" in missing.stderr


def test_a_module_in_the_working_directory_does_not_shadow_ansible(tmp_path: Path) -> None:
    # Runs start in a project folder; -P keeps it off sys.path.
    (tmp_path / "ansible.py").write_text("raise SystemExit('shadowed')\n", encoding="utf-8")
    assert _threshold(tmp_path, list(ANSIBLE_PLAYBOOK)) == GC_THRESHOLD
