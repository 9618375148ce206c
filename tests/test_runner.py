"""The playbook runner: progress from events, results, secrets kept out, Ctrl-C, one real run."""

from __future__ import annotations

import inspect
import json
import os
import shlex
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ansible_runner  # type: ignore[import-untyped]
import ptyprocess  # type: ignore[import-untyped]
import pytest

from siteops import runner
from siteops.runner import (
    EXIT_CANCELLED,
    Failure,
    Progress,
    RunResult,
    apply_event,
    ctrl_c_cancels,
    failure_of,
    keep_log,
    run_cmdline,
    run_envvars,
    started_playbook,
)
from tests.conftest import REPO

PLAY = "Converge the host's sites"


def event(kind: str, **data: Any) -> dict[str, Any]:
    """An ansible-runner event as its event_handler receives it (trimmed to what matters)."""
    base = {"playbook": "/srv/siteops/playbooks/site.yml", "play": PLAY, "play_pattern": "all"}
    return {
        "uuid": "4436a681-824c-4628-a875-1f13396601a2",
        "counter": 1,
        "stdout": "",
        "event": kind,
        "runner_ident": "run",
        "created": "2026-11-22T19:58:36.583842+00:00",
        "event_data": {**base, **data},
    }


# A recorded-like run: two hosts, one of them unreachable; on vps1 an ok, a
# change, a skip, a loop item, an ignored failure and a real failure.
EVENTS: list[dict[str, Any]] = [
    {"event": "playbook_on_start", "event_data": {"playbook": "site.yml"}},
    event("playbook_on_play_start", name=PLAY),
    event("playbook_on_task_start", task="site_model : Check every site record", name="x"),
    event("runner_on_start", task="site_model : Check every site record", host="vps1"),
    event("runner_on_start", task="site_model : Check every site record", host="vps2"),
    event(
        "runner_on_ok",
        task="site_model : Check every site record",
        host="vps1",
        res={"changed": False, "msg": "All assertions passed"},
    ),
    event(
        "runner_on_unreachable",
        task="site_model : Check every site record",
        host="vps2",
        res={
            "unreachable": True,
            "changed": False,
            "msg": "Failed to connect to the host via ssh: ssh: connect to host 203.0.113.9 "
            "port 22: Connection timed out",
        },
    ),
    event("playbook_on_task_start", task="site_user : Ensure the site users exist"),
    event("runner_on_start", task="site_user : Ensure the site users exist", host="vps1"),
    event(
        "runner_item_on_ok",
        task="site_user : Ensure the site users exist",
        host="vps1",
        res={"changed": True, "item": "shop"},
    ),
    event(
        "runner_on_ok",
        task="site_user : Ensure the site users exist",
        host="vps1",
        res={"changed": True, "results": [{"changed": True, "item": "shop"}]},
    ),
    event("playbook_on_task_start", task="letsencrypt : Order certificates"),
    event("runner_on_skipped", task="letsencrypt : Order certificates", host="vps1"),
    event("playbook_on_task_start", task="nginx_site : Probe old config"),
    event(
        "runner_on_failed",
        task="nginx_site : Probe old config",
        host="vps1",
        ignore_errors=True,
        res={"changed": True, "rc": 1, "msg": "non-zero return code", "stderr": ""},
    ),
    event("playbook_on_task_start", task="nginx_site : Check the whole nginx configuration"),
    event(
        "runner_on_failed",
        task="nginx_site : Check the whole nginx configuration",
        host="vps1",
        ignore_errors=None,
        res={
            "changed": True,
            "rc": 1,
            "msg": "non-zero return code",
            "stderr": 'nginx: [emerg] unknown directive "sevrer_name" in '
            "/etc/nginx/sites-enabled/shop.conf:12\n"
            "nginx: configuration file /etc/nginx/nginx.conf test failed",
        },
    ),
    event("playbook_on_handler_task_start", task="nginx_site : Reload nginx"),
    event("runner_on_skipped", task="nginx_site : Reload nginx", host="vps1"),
    event(
        "playbook_on_stats",
        changed={"vps1": 2},
        dark={"vps2": 1},
        failures={"vps1": 1},
        ignored={"vps1": 1},
        ok={"vps1": 3},
        processed={"vps1": 1, "vps2": 1},
        rescued={},
        skipped={"vps1": 2},
        artifact_data={},
    ),
]


def replay(events: list[dict[str, Any]], start: Progress | None = None) -> list[Progress]:
    states = [start or Progress()]
    for item in events:
        states.append(apply_event(states[-1], item))
    return states[1:]


def changes(states: list[Progress]) -> list[Progress]:
    """The states a caller is told about: each one that differs from the one before."""
    previous = Progress()
    told: list[Progress] = []
    for state in states:
        if state != previous:
            told.append(state)
        previous = state
    return told


# --- apply_event -----------------------------------------------------------------


def test_a_play_start_names_the_play() -> None:
    assert apply_event(Progress(), EVENTS[1]).play == PLAY


def test_a_task_start_names_the_task_and_counts_the_previous_one_done() -> None:
    first = apply_event(Progress(play=PLAY), EVENTS[2])
    assert (first.task, first.tasks_done) == ("site_model : Check every site record", 0)
    second = apply_event(replace_host(first, "vps1"), EVENTS[7])
    assert (second.task, second.host, second.tasks_done) == (
        "site_user : Ensure the site users exist",
        None,
        1,
    )


def replace_host(progress: Progress, host: str) -> Progress:
    return apply_event(progress, event("runner_on_start", host=host))


def test_a_host_starting_a_task_becomes_the_current_host() -> None:
    assert apply_event(Progress(task="t"), EVENTS[3]).host == "vps1"


@pytest.mark.parametrize(
    ("item", "counts"),
    [
        (EVENTS[5], {"ok": 1, "changed": 0}),
        (EVENTS[10], {"ok": 1, "changed": 1}),
        (EVENTS[6], {"unreachable": 1}),
        (EVENTS[12], {"skipped": 1}),
        (EVENTS[14], {"ok": 1, "changed": 1}),  # an ignored failure counts as ok, like the recap
        (EVENTS[16], {"failed": 1}),
        (EVENTS[9], {}),  # loop items are counted once, by the task's own event
    ],
)
def test_each_result_event_counts_like_the_ansible_recap(
    item: dict[str, Any], counts: dict[str, int]
) -> None:
    after = apply_event(Progress(task="t"), item)
    expected = {"ok": 0, "changed": 0, "failed": 0, "unreachable": 0, "skipped": 0, **counts}
    got = {key: getattr(after, key) for key in expected}
    assert got == expected
    assert after.host == item["event_data"]["host"]


def test_unknown_events_change_nothing() -> None:
    progress = Progress(play=PLAY, task="t", host="vps1", ok=3)
    assert apply_event(progress, {"event": "verbose", "stdout": "x"}) is progress
    assert apply_event(progress, {"event": "playbook_on_include"}) is progress
    assert apply_event(progress, {}) is progress


def test_a_whole_run_ends_with_the_recap_totals() -> None:
    states = replay(EVENTS)
    before_stats = states[-2]
    assert (before_stats.ok, before_stats.changed, before_stats.failed) == (3, 2, 1)
    assert (before_stats.unreachable, before_stats.skipped) == (1, 2)
    assert before_stats.tasks_done == 5
    assert before_stats.task == "nginx_site : Reload nginx"
    final = states[-1]
    assert final == Progress(
        play=PLAY,
        task=None,
        host=None,
        ok=3,
        changed=2,
        failed=1,
        unreachable=1,
        skipped=2,
        tasks_done=6,
        tasks_total=6,
        finished=True,
    )


def test_the_recap_replaces_the_live_counts() -> None:
    # A failure rescued by a rescue: block counts as failed live, not in the recap.
    live = Progress(task="t", failed=1, ok=2)
    stats = event("playbook_on_stats", ok={"h": 3}, failures={}, rescued={"h": 1})
    final = apply_event(live, stats)
    assert (final.failed, final.ok, final.finished) == (0, 3, True)


def test_a_known_total_is_kept() -> None:
    states = replay(EVENTS, Progress(tasks_total=40))
    assert all(state.tasks_total == 40 for state in states)


# --- failures and results --------------------------------------------------------


def test_a_failure_names_host_task_message_and_the_end_of_stderr() -> None:
    failure = failure_of(EVENTS[16])
    assert failure == Failure(
        host="vps1",
        task="nginx_site : Check the whole nginx configuration",
        message='non-zero return code; stderr: nginx: [emerg] unknown directive "sevrer_name" '
        "in /etc/nginx/sites-enabled/shop.conf:12 / nginx: configuration file "
        "/etc/nginx/nginx.conf test failed",
    )


def test_ignored_failures_and_successes_are_not_failures() -> None:
    assert failure_of(EVENTS[14]) is None
    assert failure_of(EVENTS[5]) is None


def test_an_unreachable_host_is_a_failure_of_its_own_kind() -> None:
    failure = failure_of(EVENTS[6])
    assert failure is not None
    assert failure.unreachable
    assert failure.line().startswith(
        "vps2: site_model : Check every site record unreachable: Failed to connect"
    )


def test_no_log_results_stay_hidden() -> None:
    item = event("runner_on_failed", task="t", host="h", res={"censored": "the output has been"})
    failure = failure_of(item)
    assert failure is not None
    assert failure.message == "(details hidden: the task uses no_log)"


def test_failed_loop_items_are_named_and_long_messages_trimmed() -> None:
    res = {
        "msg": "One or more items failed",
        "results": [
            {"item": "shop", "failed": False},
            {"item": "blog", "failed": True, "msg": "x" * 2000},
        ],
    }
    failure = failure_of(event("runner_on_failed", task="t", host="h", res=res))
    assert failure is not None
    assert failure.message.startswith("One or more items failed; item blog: xxx")
    assert len(failure.message) == 600
    assert failure.message.endswith("…")


def result(**changes: Any) -> RunResult:
    base: dict[str, Any] = {
        "rc": 0,
        "status": "successful",
        "stats": {"ok": {"vps1": 4}},
        "log_path": Path("/var/log/siteops/20261122T200505Z-site.log"),
    }
    return RunResult(**{**base, **changes})


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({}, 0),
        ({"rc": 2, "status": "failed", "stats": {"failures": {"vps1": 1}}}, 2),
        ({"rc": 4, "status": "failed", "stats": {"dark": {"vps1": 1}}}, 3),
        ({"rc": 2, "status": "failed", "stats": {"failures": {"a": 1}, "dark": {"b": 1}}}, 3),
        ({"rc": 254, "status": "canceled", "cancelled": True}, 130),
        ({"rc": 4, "status": "failed", "stats": {}}, 1),  # e.g. a syntax error: no play ran
        ({"rc": 0, "status": "timeout"}, 1),
    ],
)
def test_exit_codes(changes: dict[str, Any], code: int) -> None:
    assert result(**changes).exit_code == code


def test_the_failure_summary_lists_each_failure_and_says_what_to_do() -> None:
    failures = tuple(f for f in (failure_of(e) for e in EVENTS) if f is not None)
    done = result(rc=4, status="failed", stats={"dark": {"vps2": 1}}, failures=failures)
    assert done.failure_summary() == [
        "vps2: site_model : Check every site record unreachable: Failed to connect to the host "
        "via ssh: ssh: connect to host 203.0.113.9 port 22: Connection timed out",
        "vps1: nginx_site : Check the whole nginx configuration failed: non-zero return code; "
        'stderr: nginx: [emerg] unknown directive "sevrer_name" in '
        "/etc/nginx/sites-enabled/shop.conf:12 / nginx: configuration file "
        "/etc/nginx/nginx.conf test failed",
    ]
    assert "check its address, SSH user and key" in done.next_step()
    assert done.next_step().endswith("Full log: /var/log/siteops/20261122T200505Z-site.log.")
    assert "run the same command again" in result(stats={"failures": {"a": 1}}).next_step()
    assert "Run the same command again to finish" in result(cancelled=True).next_step()


# --- settings of every run -------------------------------------------------------


def test_the_run_environment(tmp_path: Path) -> None:
    env = run_envvars(tmp_path)
    assert env["ANSIBLE_ROLES_PATH"] == str(tmp_path / "roles")
    assert env["ANSIBLE_FORCE_HANDLERS"] == "1"
    assert env["ANSIBLE_PIPELINING"] == "1"
    assert env["ANSIBLE_GATHERING"] == "explicit"
    assert env["ANSIBLE_HOST_KEY_CHECKING"] == "True"
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
    assert "ANSIBLE_CONFIG" not in env
    (tmp_path / "ansible.cfg").write_text("[defaults]\n", encoding="utf-8")
    assert run_envvars(tmp_path)["ANSIBLE_CONFIG"] == str(tmp_path / "ansible.cfg")


def test_a_run_inside_a_host_session_connects_through_its_ssh_master(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANSIBLE_SSH_ARGS", raising=False)
    assert "ANSIBLE_SSH_ARGS" not in run_envvars(tmp_path)
    socket = tmp_path / "ssh" / "master"
    # Ansible's default ssh_args when ansible.cfg names none.
    args = run_envvars(tmp_path, ssh_via=socket)["ANSIBLE_SSH_ARGS"]
    assert args == f"-o ControlMaster=no -o ControlPath={socket} {runner.DEFAULT_SSH_ARGS}"
    config = tmp_path / "ansible.cfg"
    ini = "[ssh_connection]\nssh_args = -o ControlMaster=auto -o ControlPersist=9s ; c\n"
    config.write_text(ini, encoding="utf-8")
    args = run_envvars(tmp_path, ssh_via=socket)["ANSIBLE_SSH_ARGS"]
    assert args.endswith(" -o ControlMaster=auto -o ControlPersist=9s")
    # ssh takes the first value of an option: the master's socket, never a master of its own.
    seen = subprocess.run(["ssh", "-G", *shlex.split(args), "h"], capture_output=True, text=True,
                          check=True).stdout.splitlines()  # fmt: skip
    assert {"controlmaster false", f"controlpath {socket}"} <= set(seen)
    monkeypatch.setenv("ANSIBLE_SSH_ARGS", "-o Compression=no")
    assert run_envvars(tmp_path, ssh_via=socket)["ANSIBLE_SSH_ARGS"].endswith(" -o Compression=no")


@pytest.mark.parametrize(
    ("check", "diff", "expected"),
    [
        (False, False, "-e @/run/siteops-run-x/extravars.json"),
        (True, False, "-e @/run/siteops-run-x/extravars.json --check"),
        (True, True, "-e @/run/siteops-run-x/extravars.json --check --diff"),
    ],
)
def test_the_command_line_passes_variables_by_file(check: bool, diff: bool, expected: str) -> None:
    assert (
        run_cmdline(Path("/run/siteops-run-x/extravars.json"), check=check, diff=diff) == expected
    )


def test_the_log_is_kept_private_without_carriage_returns(tmp_path: Path) -> None:
    stdout = tmp_path / "stdout"
    stdout.write_bytes(b"\r\nPLAY [x] ***\r\nok: [vps1]\r\n")
    moment = datetime(2026, 11, 22, 20, 5, 5, tzinfo=UTC)
    logs = tmp_path / "logs"
    first = keep_log(stdout, logs, Path("playbooks/site.yml"), moment)
    second = keep_log(stdout, logs, Path("playbooks/site.yml"), moment)
    assert first == logs / "20261122T200505Z-site.log"
    assert second == logs / "20261122T200505Z-site-1.log"
    assert first.read_text(encoding="utf-8") == "PLAY [x] ***\nok: [vps1]\n"
    assert stat.S_IMODE(first.stat().st_mode) == 0o600
    assert stat.S_IMODE(logs.stat().st_mode) == 0o700
    assert keep_log(tmp_path / "missing", logs, Path("site.yml"), moment) is None


# --- a run's wiring, with ansible_runner.run replaced -----------------------------


def run_playbook(
    playbook: Path, inventory: Path, *, cancel: threading.Event | None = None, **arguments: Any
) -> RunResult:
    """A run started and waited for, as siteops.target.Target.run does."""
    with started_playbook(playbook, inventory, **arguments) as run:
        return run.result(cancel)


@dataclass
class FakeRunner:
    rc: int
    status: str
    canceled: bool


@dataclass
class Seen:
    kwargs: dict[str, Any]
    extravars: Any
    extravars_mode: int
    private_mode: int
    settings: Any
    guard: str


def fake_run(
    seen: list[Seen],
    events: list[dict[str, Any]],
    *,
    until_cancelled: Callable[[], None] | None = None,
) -> Callable[..., FakeRunner]:
    def run(**kwargs: Any) -> FakeRunner:
        private = Path(kwargs["private_data_dir"])
        args = shlex.split(kwargs["cmdline"])
        extravars_file = Path(args[args.index("-e") + 1].removeprefix("@"))
        seen.append(
            Seen(
                kwargs=kwargs,
                extravars=json.loads(extravars_file.read_text(encoding="utf-8")),
                extravars_mode=stat.S_IMODE(extravars_file.stat().st_mode),
                private_mode=stat.S_IMODE(private.stat().st_mode),
                settings=json.loads((private / "env" / "settings").read_text(encoding="utf-8")),
                guard=Path(kwargs["binary"]).read_text(encoding="utf-8"),
            )
        )
        artifacts = private / "artifacts" / kwargs["ident"]
        artifacts.mkdir(parents=True)
        (artifacts / "stdout").write_text("PLAY [x]\r\n", encoding="utf-8")
        for item in events:
            assert kwargs["event_handler"](item) is False  # never written to disk
        if until_cancelled is not None:
            until_cancelled()
            deadline = time.monotonic() + 10
            while not kwargs["cancel_callback"]():
                assert time.monotonic() < deadline, "the run was never cancelled"
                time.sleep(0.01)
            return FakeRunner(rc=254, status="canceled", canceled=True)
        return FakeRunner(rc=2, status="failed", canceled=False)

    return run


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make the runs' private directories land where the test can see them."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    return scratch


def call(tmp_path: Path, progress: list[Progress], **changes: Any) -> RunResult:
    arguments: dict[str, Any] = {
        "limit": "vps1",
        "extravars": {"siteops_only": ["shop"], "db_password": "hunter2-secret"},
        "check": True,
        "diff": False,
        "on_progress": progress.append,
        "project_dir": REPO,
        "log_dir": tmp_path / "logs",
    }
    arguments.update(changes)
    return run_playbook(REPO / "playbooks" / "site.yml", tmp_path / "hosts.yml", **arguments)


def test_a_runs_wiring(tmp_path: Path, private_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Seen] = []
    monkeypatch.setattr(ansible_runner, "run", fake_run(seen, EVENTS))
    progress: list[Progress] = []

    done = call(tmp_path, progress)

    kwargs = seen[0].kwargs
    assert kwargs["quiet"] is True
    assert kwargs["suppress_env_files"] is True
    assert kwargs["limit"] == "vps1"
    assert kwargs["playbook"] == str(REPO / "playbooks" / "site.yml")
    assert kwargs["inventory"] == str((tmp_path / "hosts.yml").resolve())
    assert kwargs["project_dir"] == str(REPO)
    assert kwargs["envvars"]["ANSIBLE_ROLES_PATH"] == str(REPO / "roles")
    assert "extravars" not in kwargs
    # ansible-playbook runs under siteops.guard (ansible-runner's binary), which
    # takes the playbook on its command line.
    assert kwargs["cmdline"].endswith(f" --check {REPO / 'playbooks' / 'site.yml'}")
    assert kwargs["binary"].endswith("/siteops-guard")
    assert seen[0].guard.startswith("#!/bin/sh\nexec ")
    # The guard gets the run's private directory, to remove it if siteops dies.
    private = Path(kwargs["binary"]).parent
    assert private.parent == private_tmp
    assert seen[0].guard.endswith(
        f' -m siteops.guard "$PPID" --private {private}'
        f' {sys.executable} -P -m siteops.ansible_playbook "$@"\n'
    )
    # The secret went through a private file only: not the command line, not the environment.
    assert seen[0].extravars == {"siteops_only": ["shop"], "db_password": "hunter2-secret"}
    assert (seen[0].extravars_mode, seen[0].private_mode) == (0o600, 0o700)
    assert "hunter2" not in json.dumps({k: v for k, v in kwargs.items() if isinstance(v, str)})
    assert "hunter2" not in json.dumps(kwargs["envvars"])
    assert seen[0].settings == {"pexpect_timeout": 0.5}
    # Everything private is gone; only the log is kept.
    assert list(private_tmp.iterdir()) == []
    assert done.log_path is not None
    assert done.log_path.read_text(encoding="utf-8") == "PLAY [x]\n"
    # Progress and result come from the events.
    assert progress == changes(replay(EVENTS))
    assert progress[-1].finished
    assert done.stats["dark"] == {"vps2": 1}
    assert "processed" not in done.stats
    assert [f.host for f in done.failures] == ["vps2", "vps1"]
    assert (done.rc, done.status, done.exit_code) == (2, "failed", 3)


def test_progress_is_reported_only_when_it_changes(
    tmp_path: Path, private_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    noise = [{"event": "verbose", "stdout": "x"}] * 5 + EVENTS[:2]
    monkeypatch.setattr(ansible_runner, "run", fake_run([], noise))
    progress: list[Progress] = []
    call(tmp_path, progress)
    assert progress == [Progress(play=PLAY)]


def test_ctrl_c_cancels_the_run_and_keeps_the_log(
    tmp_path: Path, private_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    main = threading.main_thread().ident
    assert main == threading.get_ident()
    before = signal.getsignal(signal.SIGINT)

    def press_ctrl_c() -> None:
        assert main is not None
        # Once the command waits for its run: the run starts in the background
        # before that, and Ctrl-C earlier is an ordinary KeyboardInterrupt.
        deadline = time.monotonic() + 10
        while signal.getsignal(signal.SIGINT) is before:
            assert time.monotonic() < deadline, "the command never waited for its run"
            time.sleep(0.01)
        signal.pthread_kill(main, signal.SIGINT)  # what the terminal does on Ctrl-C

    monkeypatch.setattr(
        ansible_runner, "run", fake_run([], EVENTS[:4], until_cancelled=press_ctrl_c)
    )
    done = call(tmp_path, [])
    assert done.cancelled
    assert done.exit_code == EXIT_CANCELLED
    assert done.log_path is not None and done.log_path.exists()
    assert list(private_tmp.iterdir()) == []


def test_a_cancel_event_from_another_thread_cancels_the_run(
    tmp_path: Path, private_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cancel = threading.Event()
    monkeypatch.setattr(ansible_runner, "run", fake_run([], EVENTS[:4], until_cancelled=cancel.set))
    assert call(tmp_path, [], cancel=cancel).exit_code == EXIT_CANCELLED


def test_a_failing_progress_display_stops_the_run_and_is_raised(
    tmp_path: Path, private_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_progress: Progress) -> None:
        raise RuntimeError("terminal went away")

    monkeypatch.setattr(
        ansible_runner, "run", fake_run([], EVENTS[:4], until_cancelled=lambda: None)
    )
    with pytest.raises(RuntimeError, match="terminal went away"):
        call(tmp_path, [], on_progress=broken)
    assert list(private_tmp.iterdir()) == []


def test_an_error_inside_ansible_runner_is_raised_and_cleaned_up(
    tmp_path: Path, private_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(**_kwargs: Any) -> None:
        raise OSError("ansible-playbook not found")

    monkeypatch.setattr(ansible_runner, "run", explode)
    with pytest.raises(OSError, match="ansible-playbook not found"):
        call(tmp_path, [])
    assert list(private_tmp.iterdir()) == []


def test_ctrl_c_sets_the_cancel_event_only_while_the_run_lasts() -> None:
    cancel = threading.Event()
    before = signal.getsignal(signal.SIGINT)
    with ctrl_c_cancels(cancel):
        signal.raise_signal(signal.SIGINT)  # no KeyboardInterrupt
        assert cancel.is_set()
    assert signal.getsignal(signal.SIGINT) is before
    with pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)


def test_an_ignored_ctrl_c_stays_ignored_during_the_run() -> None:
    # siteops started as a background job by a shell without job control.
    cancel = threading.Event()
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with ctrl_c_cancels(cancel):
            assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
            signal.raise_signal(signal.SIGINT)
        assert not cancel.is_set()
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)


# --- one real run ----------------------------------------------------------------

REAL_PLAYBOOK = """\
- name: Prove the runner wiring
  hosts: all
  gather_facts: false
  tasks:
    - name: Say hello
      ansible.builtin.debug:
        msg: "hello {{ greeting_target }}"
    - name: Handle a secret
      ansible.builtin.debug:
        msg: "{{ secret_value }}"
      no_log: true
    - name: Hand a result back to the caller
      ansible.builtin.set_stats:
        data:
          answer: {ports: [3100, 4000]}
        per_host: false
        aggregate: false
"""


def test_a_real_playbook_runs_quietly_with_progress_and_a_kept_log(
    tmp_path: Path, private_tmp: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    playbook = tmp_path / "prove.yml"
    playbook.write_text(REAL_PLAYBOOK, encoding="utf-8")
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  hosts:\n    localhost:\n      ansible_connection: local\n", encoding="utf-8"
    )
    progress: list[Progress] = []

    done = run_playbook(
        playbook,
        inventory,
        limit="localhost",
        extravars={"greeting_target": "siteops", "secret_value": "hunter2-do-not-log"},
        check=False,
        diff=False,
        on_progress=progress.append,
        project_dir=REPO,
        log_dir=tmp_path / "logs",
    )

    assert done.exit_code == 0, done.failure_summary()
    assert (done.rc, done.status, done.failures) == (0, "successful", ())
    assert done.stats["ok"] == {"localhost": 3}
    assert {p.task for p in progress} >= {"Say hello", "Handle a secret"}
    assert progress[-1].finished
    assert (progress[-1].ok, progress[-1].tasks_done, progress[-1].tasks_total) == (3, 3, 3)
    assert done.artifacts == {"answer": {"ports": [3100, 4000]}}
    assert done.log_path is not None
    log = done.log_path.read_text(encoding="utf-8")
    assert "TASK [Say hello]" in log
    assert "hello siteops" in log
    assert "hunter2" not in log
    assert "\x1b[" not in log  # no colour codes
    assert list(private_tmp.iterdir()) == []
    out, err = capfd.readouterr()
    assert "TASK [" not in out + err  # quiet: nothing of Ansible's on the terminal


def test_a_reaped_ptys_close_skips_ptyprocess_wait() -> None:
    # ansible-runner closes ansible-playbook's pty once it has seen it end: the
    # exit status is known, so ptyprocess's 0.1 s wait for it is dropped.
    pty = ptyprocess.PtyProcess.spawn(["true"])
    while pty.isalive():
        time.sleep(0.01)
    pty.close()
    assert pty.closed
    assert pty.delayafterclose == 0
    assert pty.exitstatus == 0


def test_a_running_ptys_close_still_waits_then_ends_it() -> None:
    pty = ptyprocess.PtyProcess.spawn(["sleep", "30"])
    pty.close(force=True)
    assert pty.closed
    assert pty.delayafterclose == pytest.approx(0.1)
    assert not pty.isalive()
    assert pty.signalstatus in (signal.SIGHUP, signal.SIGINT, signal.SIGKILL)


def test_siteops_closes_ptys_through_its_close_and_ptyprocess_still_waits() -> None:
    # A ptyprocess release whose close no longer sleeps delayafterclose (or was
    # renamed) makes the replacement pointless: this test says so.
    assert ptyprocess.PtyProcess.close is runner._close_reaped
    assert "time.sleep(self.delayafterclose)" in inspect.getsource(runner._pty_close)
