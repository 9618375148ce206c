"""siteops.guard: a run goes with siteops, however siteops dies; otherwise it is left alone.

Real processes: a stand-in for siteops starts the guard as ansible-runner
would (through the guard script), the guarded command starts a grandchild in
a session of its own (as ssh and Mitogen's helpers may be), and the stand-in
is killed with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

from siteops import guard
from siteops.guard import RUN_ID, guard_script, marked

# The guarded command: a grandchild in its own session, then a long sleep.
COMMAND = textwrap.dedent(
    """
    import subprocess, sys, time
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    print("started", flush=True)
    time.sleep(120)
    """
)

# The stand-in for siteops: starts the guard script, waits.
PARENT = textwrap.dedent(
    """
    import os, subprocess, sys, time
    env = {**os.environ, "SITEOPS_RUN_ID": sys.argv[3]}
    subprocess.Popen([sys.argv[1], "-c", sys.argv[2]], env=env)
    time.sleep(120)
    """
)


def wait_for(check: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def private_dir(tmp_path: Path) -> Path:
    """A run's private directory, as siteops makes it: the run's extra variables in it."""
    private = tmp_path / "siteops-run-test"
    private.mkdir(mode=0o700)
    (private / "extravars.json").write_text('{"site_env": {"SECRET_KEY": "s3cret"}}')
    return private


def start_parent(private: Path, run_id: str) -> subprocess.Popen[bytes]:
    script = guard_script(private, [sys.executable])
    return subprocess.Popen([sys.executable, "-c", PARENT, str(script), COMMAND, run_id])


def test_a_killed_siteops_takes_its_whole_run_with_it(tmp_path: Path) -> None:
    run_id = uuid.uuid4().hex
    private = private_dir(tmp_path)
    parent = start_parent(private, run_id)
    try:
        # The guarded command and its grandchild, both carrying the mark, the
        # grandchild in a session of its own (out of reach of the guard's group).
        def both_running() -> bool:
            return len({os.getsid(pid) for pid in marked(run_id)}) == 2

        assert wait_for(both_running, 10), marked(run_id)

        parent.send_signal(signal.SIGKILL)
        parent.wait()
        assert wait_for(lambda: not marked(run_id), 5), f"left running: {marked(run_id)}"
        # Nobody is left to remove the run's secrets but the guard.
        assert wait_for(lambda: not private.exists(), 5), sorted(private.iterdir())
    finally:
        for pid in marked(run_id):
            os.kill(pid, signal.SIGKILL)
        parent.kill()


def test_a_run_that_ends_by_itself_passes_its_status_and_leaves_the_rest(
    tmp_path: Path,
) -> None:
    run_id = uuid.uuid4().hex
    private = private_dir(tmp_path)
    script = guard_script(private, [sys.executable])
    code = textwrap.dedent(
        """
        import subprocess, sys
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"],
                         start_new_session=True)
        sys.exit(3)
        """
    )
    env = {**os.environ, RUN_ID: run_id}
    done = subprocess.run([str(script), "-c", code], env=env, check=False)
    try:
        assert done.returncode == 3
        # What the run left on purpose (an ssh control master, say) is not killed.
        assert len(marked(run_id)) == 1
        # siteops, still there, reads the run's files and removes them itself.
        assert (private / "extravars.json").is_file()
    finally:
        for pid in marked(run_id):
            os.kill(pid, signal.SIGKILL)


def test_marked_reads_the_environment_of_each_process(tmp_path: Path) -> None:
    for pid, environ in {
        "101": b"PATH=/bin\0SITEOPS_RUN_ID=abc\0",
        "102": b"SITEOPS_RUN_ID=abcd\0",
        "103": b"",
    }.items():
        (tmp_path / pid).mkdir()
        (tmp_path / pid / "environ").write_bytes(environ)
    (tmp_path / "self").mkdir()
    (tmp_path / "104").mkdir()  # gone before its environment could be read
    assert marked("abc", proc=tmp_path) == [101]
    assert marked("abc", proc=tmp_path / "missing") == []


def test_without_a_death_signal_the_guard_sees_its_parent_gone(tmp_path: Path) -> None:
    # As on macOS: the watch finds that its parent is no longer the one it had.
    run_id = uuid.uuid4().hex
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"],
        env={**os.environ, RUN_ID: run_id},
        start_new_session=True,
    )
    try:
        assert wait_for(lambda: marked(run_id) == [child.pid], 5)
        private = private_dir(tmp_path)
        started = time.monotonic()
        guard._watch(
            parent=os.getppid() + 1_000_000, child=child, run_id=run_id, private=private,
            kill_group=False,
        )  # fmt: skip
        assert child.wait(timeout=5) == -signal.SIGKILL
        assert time.monotonic() - started < 1
        assert not private.exists()
    finally:
        child.kill()
