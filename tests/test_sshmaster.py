"""siteops.sshmaster: a master's control socket named ahead, for a run started before it.

``ssh`` is a script on PATH here that records its arguments: the e2e tests log
in to real hosts through the master.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from siteops.sshmaster import master, reserved, socket_of

SSH = """#!/bin/sh
echo "$*" >> "$(dirname "$0")/calls"
"""


@pytest.fixture
def calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ssh").write_text(SSH, encoding="utf-8")
    (bin_dir / "ssh").chmod(0o700)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    return bin_dir / "calls"


def test_the_master_listens_on_the_socket_named_ahead(calls: Path) -> None:
    variables = {"ansible_host": "192.0.2.7"}
    with reserved(variables, "vps1") as socket:
        assert socket is not None
        folder = socket.parent
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert socket_of("vps1") is None  # named, not open
        with master(variables, "vps1", "cannot hold the lock") as via:
            assert via == socket == socket_of("vps1")
            with reserved(variables, "vps1") as again:  # while open: the open one
                assert again == socket
        # The master was told to go; the folder stays the reservation's until it ends.
        started, told = calls.read_text(encoding="utf-8").splitlines()
        assert f"ControlMaster=yes -o ControlPath={socket} " in started
        assert told == f"-o ControlPath={socket} -O exit root@192.0.2.7"
        assert folder.is_dir()
    assert not folder.exists()
    # Without a reservation a master has a folder of its own, gone with it.
    with master(variables, "vps1", "cannot hold the lock") as via:
        assert via is not None and via.parent != folder
        own = via.parent
    assert not own.exists()


def test_a_host_reached_without_ssh_has_no_socket(calls: Path) -> None:
    with reserved({"ansible_connection": "local"}, "here") as socket:
        assert socket is None
    assert not calls.exists()
