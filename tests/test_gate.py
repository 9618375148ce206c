"""The gate a started run waits at before its first task (plugins/module_utils/gate.py,
plugins/callback/gate.py, siteops.runner.started_playbook).

The protocol is tried on a real named pipe; the callback in real ansible-playbook
runs on the controller, whose tasks leave files behind: a file that is not there
is a task that did not run.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from siteops import runner
from siteops.resources import collection_module, collections_path
from siteops.runner import (
    GATE,
    GATE_CALLBACK,
    PastGate,
    Progress,
    run_envvars,
    started_playbook,
)
from tests.conftest import REPO

gate = collection_module(GATE)


def waiting_reader(path: Path) -> tuple[threading.Thread, list[str | None]]:
    said: list[str | None] = []
    reader = threading.Thread(target=lambda: said.append(gate.wait(str(path))), daemon=True)
    reader.start()
    return reader, said


def test_the_gate_opens_only_for_a_run_waiting_at_it(tmp_path: Path) -> None:
    path = tmp_path / "gate"
    gate.make(str(path))
    assert (path.stat().st_mode & 0o777) == 0o600
    # Nobody waits yet: nothing is written, and a later reader is not let through by it.
    assert gate.try_open(str(path)) is False
    reader, said = waiting_reader(path)
    deadline = time.monotonic() + 10
    while not gate.try_open(str(path)):
        assert time.monotonic() < deadline, "the waiting reader never counted"
        time.sleep(0.01)
    reader.join(10)
    assert said == [None]  # open


def test_a_gate_closed_without_the_word_or_missing_stays_shut(tmp_path: Path) -> None:
    path = tmp_path / "gate"
    gate.make(str(path))
    reader, said = waiting_reader(path)
    fd = os.open(path, os.O_WRONLY)  # waits for the reader, then closes without writing
    os.close(fd)
    reader.join(10)
    assert said == [f"the gate {path} closed without opening"]
    said_missing = gate.wait(str(tmp_path / "missing"))
    assert said_missing is not None and "cannot read the gate" in said_missing


def test_a_gated_run_turns_the_gate_callback_on_after_the_configured_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANSIBLE_CALLBACKS_ENABLED", raising=False)
    plain = run_envvars(tmp_path)
    assert gate.ENV not in plain and "ANSIBLE_CALLBACKS_ENABLED" not in plain
    env = run_envvars(tmp_path, gate=tmp_path / "gate")
    assert env[gate.ENV] == str(tmp_path / "gate")
    assert env["ANSIBLE_CALLBACKS_ENABLED"] == GATE_CALLBACK
    config = tmp_path / "ansible.cfg"
    config.write_text(
        "[defaults]\ncallbacks_enabled = siteops.hosting.gc_freeze, profile_tasks ; mine\n",
        encoding="utf-8",
    )
    env = run_envvars(tmp_path, config, gate=tmp_path / "gate")
    assert env["ANSIBLE_CALLBACKS_ENABLED"] == (
        f"siteops.hosting.gc_freeze,profile_tasks,{GATE_CALLBACK}"
    )
    monkeypatch.setenv("ANSIBLE_CALLBACKS_ENABLED", f"timer,{GATE_CALLBACK}")
    env = run_envvars(tmp_path, config, gate=tmp_path / "gate")
    assert env["ANSIBLE_CALLBACKS_ENABLED"] == f"timer,{GATE_CALLBACK}"


# --- real runs on the controller ------------------------------------------------

PLAYBOOK = """\
- name: Leave marks
  hosts: all
  gather_facts: false
  tasks:
    - name: Mark the first task
      ansible.builtin.file:
        path: "{{ marks }}/first"
        state: touch
        mode: "0600"
    - name: Take a while
      ansible.builtin.command: sleep {{ pause | default(0) }}
      changed_when: false
    - name: Mark the last task
      ansible.builtin.file:
        path: "{{ marks }}/last"
        state: touch
        mode: "0600"
"""


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The runs' private folders land here, where the test can see them."""
    folder = tmp_path / "scratch"
    folder.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(folder))
    return folder


def start(tmp_path: Path, progress: list[Progress], text: str = PLAYBOOK, **extravars: Any) -> Any:
    playbook = tmp_path / "marks.yml"
    playbook.write_text(text, encoding="utf-8")
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
        "      ansible_python_interpreter: '{{ ansible_playbook_python }}'\n",
        encoding="utf-8",
    )
    (tmp_path / "marks").mkdir(exist_ok=True)
    return started_playbook(
        playbook, inventory, limit="localhost",
        extravars={"marks": str(tmp_path / "marks"), **extravars},
        check=False, diff=False, on_progress=progress.append, project_dir=REPO,
        log_dir=tmp_path / "logs", collections=collections_path(REPO), gated=True,
    )  # fmt: skip


def run_processes(scratch: Path) -> list[int]:
    """The processes whose command line names a run's private folder under ``scratch``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if str(scratch).encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def at_the_gate(scratch: Path) -> None:
    """Wait until the run has reached its first play (its output names the play)."""
    deadline = time.monotonic() + 60
    while not any(
        b"PLAY [Leave marks]" in p.read_bytes() for p in scratch.glob("*/artifacts/run/stdout")
    ):
        assert time.monotonic() < deadline, "the run never reached its play"
        time.sleep(0.05)


def test_a_gated_run_waits_before_its_first_task_until_its_result_is_asked(
    tmp_path: Path, scratch: Path
) -> None:
    progress: list[Progress] = []
    with start(tmp_path, progress) as run:
        at_the_gate(scratch)
        time.sleep(1.0)  # time enough for a task that was not held
        assert not (tmp_path / "marks" / "first").exists()
        assert progress == []  # held: the command is still taking the lock, and says so
        done = run.result()
    assert done.exit_code == 0, done.failure_summary()
    assert (tmp_path / "marks" / "last").exists()
    assert progress[-1].finished and progress[-1].ok == 3
    assert done.log_path is not None and "TASK [Mark the first task]" in done.log_path.read_text()
    assert list(scratch.iterdir()) == []


def test_an_abandoned_gated_run_is_killed_before_any_task(tmp_path: Path, scratch: Path) -> None:
    with pytest.raises(RuntimeError, match="the lock was refused"), start(tmp_path, []):
        at_the_gate(scratch)
        assert run_processes(scratch)  # ansible-playbook waits at the gate
        time.sleep(1.0)  # time enough for a task that was not held
        raise RuntimeError("the lock was refused")
    assert run_processes(scratch) == []
    assert list(scratch.iterdir()) == []
    assert not (tmp_path / "marks" / "first").exists()
    assert not (tmp_path / "logs").exists()  # nothing ran: no log is kept


def test_a_run_that_ends_before_its_gate_is_reported_as_it_ended(
    tmp_path: Path, scratch: Path
) -> None:
    with start(tmp_path, [], text="- hosts: [\n") as run:
        done = run.result()
    assert done.exit_code == 1
    assert not (tmp_path / "marks" / "first").exists()


def test_a_run_past_a_gate_that_did_not_hold_it_is_stopped_and_reported(
    tmp_path: Path, scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if the callback could not be loaded: Ansible warns and goes on.
    monkeypatch.setattr(runner, "GATE_CALLBACK", "siteops.hosting.no_such_callback")
    with start(tmp_path, [], pause=30) as run:
        at_the_gate(scratch)
        started = time.monotonic()
        with pytest.raises(PastGate, match="before siteops held the host's lock"):
            run.result()
    assert time.monotonic() - started < 20  # stopped, not waited for
    assert not (tmp_path / "marks" / "last").exists()
    assert run_processes(scratch) == []
