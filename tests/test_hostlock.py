"""The host's side of changing commands, run here as real processes: lock, registry record, audit.

The host program (:mod:`siteops.hostsession`) is the one siteops sends over
SSH; a host reached with ``ansible_connection: local`` runs it here, with the
layout's paths moved under ``tmp_path``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from siteops import hostlock
from siteops.coordination import parse_since
from siteops.errors import SiteModelError
from siteops.hostlock import HostLocked, host_session, lock_release, lock_status, mask_arguments
from siteops.hostrelease import facts_of, release_facts, release_files
from siteops.layout import layout
from siteops.remote import RemoteError
from siteops.revision import HostRecord, Standing, compare, sha256

LOCAL = {"ansible_connection": "local"}


@pytest.fixture(autouse=True)
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "host"
    moved = replace(
        layout(),
        host_lock=str(root / "run/host.lock"),
        registry_dir=str(root / "registry"),
        audit_log=str(root / "log/audit.jsonl"),
    )
    monkeypatch.setattr(hostlock, "layout", lambda: moved)
    return root


def session(purpose: str = "apply shop", *, timeout: float = 5, waits: list[Any] | None = None,
            args: tuple[str, ...] = ()) -> Any:  # fmt: skip
    return host_session(LOCAL, "h", purpose=purpose, args=args, sites=["shop"], timeout=timeout,
                        on_wait=(waits if waits is not None else []).append)  # fmt: skip


def audit(host: Path) -> list[dict[str, Any]]:
    text = (host / "log/audit.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def holder_process(host: Path, purpose: str) -> subprocess.Popen[str]:
    """Another siteops holding the host's lock (its own process, as on another machine)."""
    config = hostlock._config(
        holder={"pid": 4242, "user": "bob", "hostname": "laptop2", "purpose": purpose,
                "since": "2026-11-28T10:00:00Z"},
        timeout=5, args=[purpose], sites=["blog"], login="deploy",
    )  # fmt: skip
    argv = hostlock.remote_argv(LOCAL, "h", "session", config)
    process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert json.loads(process.stdout.readline())["event"] == "locked"
    return process


def test_the_lock_is_held_for_the_block_and_files_are_root_only(host: Path) -> None:
    with session() as held:
        state = lock_status(LOCAL, "h")
        assert state["held"] is True
        assert state["holder"]["purpose"] == "apply shop"
        assert state["holder"]["pid"] == os.getpid()
        assert held.taken_over is None
        held.record_sites("siteops_sites: {}\n")
    assert lock_status(LOCAL, "h") == {"event": "status", "held": False, "left": None}
    assert (host / "run").stat().st_mode & 0o777 == 0o700
    assert (host / "registry").stat().st_mode & 0o777 == 0o700
    assert (host / "registry/sites.yml").stat().st_mode & 0o777 == 0o600
    assert (host / "log/audit.jsonl").stat().st_mode & 0o777 == 0o600


def test_the_session_reads_the_hosts_release_for_the_commands_runs(host: Path) -> None:
    # This machine's own files, read by the session as they are on a host.
    text = Path("/etc/os-release").read_text(encoding="utf-8")
    major = next(
        line.split("=", 1)[1].strip().strip('"').split(".")[0]
        for line in text.splitlines()
        if line.startswith("VERSION_ID=")
    )
    assert facts_of("h") == {}
    with session() as held:
        assert held.release["ansible_distribution_major_version"] == major
        assert facts_of("h") == held.release
    # Only while the command holds the host's lock.
    assert facts_of("h") == {}


def test_the_session_names_the_ports_the_host_listens_on_as_the_facts_script_does(
    host: Path,
) -> None:
    script = Path(__file__).resolve().parent.parent / "playbooks" / "files" / "siteops_facts.py"
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with session() as held:
            read = subprocess.run(
                [sys.executable, "-c", script.read_text(encoding="utf-8")],
                input=json.dumps({"layout": dict.fromkeys(
                    ("sites_root", "backup_root", "release_log_dir"), str(host)), "sites": {}}),
                capture_output=True, text=True, check=True,
            )  # fmt: skip
        assert port in held.listening
        assert held.listening == set(json.loads(read.stdout)["listening"])


def test_release_facts_come_from_the_collections_own_parser() -> None:
    os_release, debian_version = release_files()
    trixie = 'ID=debian\nVERSION_ID="13"\nVERSION_CODENAME=trixie\n'
    assert release_facts({os_release: trixie, debian_version: "13.2\n"}) == {
        "ansible_distribution": "Debian",
        "ansible_distribution_version": "13.2",
        "ansible_distribution_major_version": "13",
        "ansible_distribution_release": "trixie",
    }
    # Unreadable or without a version: nothing given, the playbook reads it itself.
    assert release_facts({os_release: None, debian_version: "13.2\n"}) == {}
    assert release_facts({os_release: "ID=debian\n", debian_version: None}) == {}


def test_a_second_run_waits_names_the_holder_and_gives_up_after_the_timeout(host: Path) -> None:
    other = holder_process(host, "add-site blog")
    waits: list[Any] = []
    started = time.monotonic()
    try:
        with pytest.raises(HostLocked) as caught, session(timeout=1, waits=waits):
            pass
    finally:
        other.communicate("")
    assert 1 <= time.monotonic() - started < 4
    assert [w["purpose"] for w in waits] == ["add-site blog"]
    message = str(caught.value)
    assert "bob@laptop2 running `siteops add-site blog` (pid 4242)" in message
    assert "since 2026-11-28T10:00:00Z" in message
    assert caught.value.code == 75


def test_a_waiting_run_goes_on_as_soon_as_the_holder_ends(host: Path) -> None:
    other = holder_process(host, "add-site blog")
    assert other.stdin is not None
    waits: list[Any] = []
    threading.Timer(0.6, other.stdin.close).start()  # the holder ends 0.6 s from now
    started = time.monotonic()
    with session(waits=waits) as held:
        waited = time.monotonic() - started
        assert held.holder["purpose"] == "apply shop"
        assert held.taken_over is None  # released properly, not taken over
    other.wait()
    assert 0.5 <= waited < 2
    assert [w["purpose"] for w in waits] == ["add-site blog"]
    assert [e["command"] for e in audit(host)] == ["add-site blog", "apply shop"]


def test_a_waiter_whose_command_went_away_never_takes_the_lock(host: Path) -> None:
    other = holder_process(host, "add-site blog")
    config = hostlock._config(
        holder={"pid": 4343, "user": "carol", "hostname": "laptop3", "purpose": "apply shop",
                "since": "2026-11-28T10:01:00Z"},
        timeout=60, args=["apply", "shop"], sites=["shop"], login="deploy",
    )  # fmt: skip
    waiter = subprocess.Popen(hostlock.remote_argv(LOCAL, "h", "session", config),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert waiter.stdin is not None and waiter.stdout is not None
    assert json.loads(waiter.stdout.readline())["event"] == "wait"
    started = time.monotonic()
    waiter.stdin.close()  # its connection closed: the command was cancelled while it waited
    assert waiter.wait(timeout=10) == 75
    assert time.monotonic() - started < 2  # gone at once, not after its 60 s
    other.communicate("")  # the holder ends
    # Nobody holds the lock, nobody left it behind, and the waiter is in no audit line.
    status = lock_status(LOCAL, "h")
    assert (status["held"], status["left"]) == (False, None)
    assert [e["command"] for e in audit(host)] == ["add-site blog"]


def test_a_lock_left_by_a_killed_run_is_taken_over_and_the_audit_says_so(host: Path) -> None:
    other = holder_process(host, "add-site blog")
    other.send_signal(signal.SIGKILL)  # no release, no audit line: the kernel drops the flock
    other.wait()
    left = lock_status(LOCAL, "h")
    assert left["held"] is False and left["left"]["purpose"] == "add-site blog"

    with session() as held:
        assert held.taken_over is not None
        assert held.taken_over["purpose"] == "add-site blog"
    # The dead run is logged too, with its own start time, args and sites.
    dead, entry = audit(host)
    assert (dead["command"], dead["result"]) == ("add-site blog", "interrupted")
    assert (dead["time"], dead["sites"]) == ("2026-11-28T10:00:00Z", ["blog"])
    assert dead["operator"]["user"] == "bob" and "took the lock over" in dead["note"]
    assert entry["took_over"]["purpose"] == "add-site blog"
    assert entry["result"] == "ok"


def test_release_refuses_a_live_holder_unless_forced(host: Path) -> None:
    other = holder_process(host, "deploy blog")
    try:
        with pytest.raises(HostLocked, match=r"still running.*--force"):
            lock_release(LOCAL, "h", force=False)
        assert lock_status(LOCAL, "h")["held"] is True
        done = lock_release(LOCAL, "h", force=True)
        assert done["held"] is True and done["holder"]["purpose"] == "deploy blog"
        assert other.wait(timeout=5) != 0  # its hold was stopped
        assert lock_status(LOCAL, "h") == {"event": "status", "held": False, "left": None}
    finally:
        if other.poll() is None:
            other.kill()
    entries = audit(host)
    assert [e["command"] for e in entries] == ["deploy blog", "lock release --force"]
    assert entries[0]["result"] == "interrupted"  # its session ended without a result
    assert entries[1]["released"]["purpose"] == "deploy blog"


def test_records_count_revisions_and_remember_earlier_hashes(host: Path) -> None:
    with session() as held:
        assert held.record == HostRecord()
        assert held.record_sites("one\n") == 1
        assert held.record_sites("one\n") == 1  # the same file again: no new revision
        assert held.record_sites("two\n") == 2
    with session() as held:
        record = held.record
    assert (record.revision, record.text, record.sha256) == (2, "two\n", sha256("two\n"))
    assert [e["revision"] for e in record.history] == [2, 1]
    assert record.by and record.command == "apply shop"
    assert compare("two\n", record) == (Standing.CURRENT, 2)
    assert compare("one\n", record) == (Standing.BEHIND, 1)
    assert compare("three\n", record) == (Standing.DIVERGED, None)
    assert compare(None, record) == (Standing.BEHIND, 0)  # a clone without the host's sites
    assert compare("one\n", HostRecord()) == (Standing.NEW, None)
    assert [e["revision"] for e in audit(host)] == [2, 2]


def test_the_audit_line_has_operator_masked_arguments_result_and_duration(host: Path) -> None:
    args = ("env", "set", "shop", "DB_PASSWORD=hunter2", "--token", "abc", "--api-secret=x1")
    with session("env set shop", args=args) as held:
        held.finish("failed", ["shop"])
    [entry] = audit(host)
    assert entry["args"] == ["env", "set", "shop", "DB_PASSWORD=***", "--token", "***",
                             "--api-secret=***"]  # fmt: skip
    text = (host / "log/audit.jsonl").read_text(encoding="utf-8")
    assert "hunter2" not in text and "abc" not in text and "x1" not in text
    assert entry["result"] == "failed"
    assert entry["sites"] == ["shop"]
    assert entry["operator"]["user"] and entry["operator"]["machine"]
    assert isinstance(entry["duration_s"], float)
    assert datetime.fromisoformat(entry["time"].replace("Z", "+00:00")).tzinfo is not None


def test_an_exception_in_the_block_is_audited_as_failed_and_ctrl_c_as_cancelled(
    host: Path,
) -> None:
    with pytest.raises(RuntimeError), session():
        raise RuntimeError("boom")
    with pytest.raises(KeyboardInterrupt), session():
        raise KeyboardInterrupt
    assert [e["result"] for e in audit(host)] == ["failed", "cancelled"]
    assert lock_status(LOCAL, "h")["held"] is False


def test_the_key_fingerprint_is_read_from_sshds_auth_info(tmp_path: Path) -> None:
    from siteops.hostsession import key_fingerprint

    key = tmp_path / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    kind, blob = key.with_suffix(".pub").read_text(encoding="utf-8").split()[:2]
    auth = tmp_path / "auth"
    auth.write_text(f"publickey {kind} {blob}\n", encoding="utf-8")
    expected = subprocess.run(["ssh-keygen", "-l", "-f", str(key)], capture_output=True,
                              text=True, check=True).stdout.split()[1]  # fmt: skip
    assert key_fingerprint(str(auth)) == expected
    assert key_fingerprint("") is None
    assert key_fingerprint(str(tmp_path / "missing")) is None


def test_an_unreachable_host_is_an_error_naming_it() -> None:
    unreachable = {"ansible_host": "127.0.0.1", "ansible_port": 1, "ansible_user": "root"}
    with pytest.raises(RemoteError, match=r"cannot hold the lock on host 'h'.*ssh exit 255"):
        host_session(unreachable, "h", purpose="x", args=(), sites=[], timeout=1,
                     on_wait=print).__enter__()  # fmt: skip


def test_mask_arguments_hides_values_of_assignments_and_secret_options() -> None:
    assert mask_arguments(["add-site", "shop", "--domain", "shop.test"]) == [
        "add-site", "shop", "--domain", "shop.test"]  # fmt: skip
    assert mask_arguments(["KEY=v=w", "--password", "p", "--db-password=q", "x=1"]) == [
        "KEY=***", "--password", "***", "--db-password=***", "x=***"]  # fmt: skip


def test_since_takes_durations_and_utc_dates() -> None:
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    assert parse_since("2h", now) == datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    assert parse_since("1w", now) == datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    assert parse_since("2026-11-27", now) == datetime(2026, 11, 27, tzinfo=UTC)
    assert parse_since("2026-11-27T08:30Z", now) == datetime(2026, 11, 27, 8, 30, tzinfo=UTC)
    with pytest.raises(SiteModelError, match="since: 'yesterday' is neither a duration"):
        parse_since("yesterday", now)


def test_a_session_whose_lock_is_released_by_force_knows_it_lost_the_lock(host: Path) -> None:
    with (
        pytest.raises(RemoteError, match="the connection holding its lock ended"),
        session() as held,
    ):
        assert not held.lost.is_set()
        lock_release(LOCAL, "h", force=True)
        # The run under it is stopped through this event (siteops.operations passes it on).
        assert held.lost.wait(5)
    assert lock_status(LOCAL, "h")["held"] is False
    assert [e["command"] for e in audit(host)] == ["apply shop", "lock release --force"]
