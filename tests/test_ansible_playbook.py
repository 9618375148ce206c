"""ansible-playbook as siteops runs it (siteops.ansible_playbook): real runs on the controller."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from siteops.ansible_playbook import GC_THRESHOLD
from siteops.runner import ANSIBLE_PLAYBOOK
from tests.conftest import local_ansible_env, probe_in_a_worker


def _threshold(tmp_path: Path, command: list[str]) -> tuple[int, ...]:
    """What the garbage collector of a task's worker (forked from ansible-playbook) is set to."""
    return tuple(probe_in_a_worker(tmp_path, "gc.get_threshold()", command=command))


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
