"""Nothing a run started outlives siteops: ansible-playbook under a guard.

ansible-runner starts ``python -m siteops.guard PARENT_PID COMMAND ARGS…``
instead of ansible-playbook itself (its ``binary``, see :func:`guard_script`;
the command is ansible-playbook as :mod:`siteops.ansible_playbook` runs it).
The guard

- marks the run: it starts ansible-playbook with ``SITEOPS_RUN_ID`` in its
  environment, which every process of the run inherits (Ansible's workers,
  Mitogen's helpers, ssh);
- asks the kernel to send it SIGTERM when the siteops process that started
  it dies, however it dies (SIGKILL, a closed terminal: Linux's
  ``PR_SET_PDEATHSIG``), and also looks twice a second whether that process
  is still its parent (macOS has no such signal);
- passes ansible-playbook's exit status on when it ends by itself;
- on SIGTERM, SIGHUP or SIGINT (siteops gone, or a cancelled run) kills its
  process group (its own: it leads it) and every process that carries the
  run's mark, then exits;
- when siteops is gone, also removes the run's private directory (the one
  holding the guard script, and the run's extra variables, secrets among
  them), which siteops itself removes after every run it sees end.

A run killed that way is finished by running the same command again: every
siteops playbook is safe to run again.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

RUN_ID = "SITEOPS_RUN_ID"
PRIVATE_OPTION = "--private"
_PR_SET_PDEATHSIG = 1
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


def guard_script(directory: Path, command: Sequence[str]) -> Path:
    """An executable in ``directory`` that runs ``command`` and its arguments under the guard.

    ansible-runner takes one executable as its ``binary``; this one runs
    ``python -m siteops.guard "$PPID" --private <directory> <command…> "$@"``
    with this Python: the guard watches the process that started the script
    (siteops), and removes ``directory`` (the run's private one) if siteops
    dies before it could.
    """
    script = directory / "siteops-guard"
    module = shlex.join([sys.executable, "-m", "siteops.guard"])
    private = shlex.join([PRIVATE_OPTION, str(directory)])
    line = f'exec {module} "$PPID" {private} {shlex.join(command)} "$@"'
    script.write_text(f"#!/bin/sh\n{line}\n", encoding="utf-8")
    script.chmod(0o700)
    return script


def marked(run_id: str, proc: Path = Path("/proc")) -> list[int]:
    """The pids of the processes whose environment carries ``SITEOPS_RUN_ID=run_id``.

    Read from ``/proc`` (Linux); elsewhere, or for processes of other users,
    nothing is found and the process group is all that is killed.
    """
    needle = f"{RUN_ID}={run_id}".encode()
    found: list[int] = []
    try:
        entries = list(proc.iterdir())
    except OSError:
        return found
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def kill_run(run_id: str, *, kill_group: bool = True) -> None:
    """SIGKILL every process of the run: the marked ones, then the guard's group (itself too)."""
    me = os.getpid()
    for _ in range(3):  # a process may fork while the others are killed
        for pid in marked(run_id):
            if pid != me:
                _kill(pid)
        time.sleep(0.05)
    if kill_group:
        _kill_own_group()


def _kill_own_group() -> None:
    with contextlib.suppress(OSError):
        os.killpg(os.getpgrp(), signal.SIGKILL)


def _kill(pid: int) -> None:
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)


def _die_with(parent: int) -> bool:
    """Ask for SIGTERM when the parent dies; False if it is gone already."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    return os.getppid() == parent


def end_orphaned_run(run_id: str, private: Path | None, *, kill_group: bool = True) -> None:
    """Kill the run whose siteops is gone and remove its private directory, then the group."""
    kill_run(run_id, kill_group=False)
    if private is not None:
        shutil.rmtree(private, ignore_errors=True)
    if kill_group:
        _kill_own_group()


def _watch(
    parent: int,
    child: subprocess.Popen[bytes],
    run_id: str,
    private: Path | None = None,
    *,
    kill_group: bool = True,
) -> None:
    while child.poll() is None:
        if os.getppid() != parent:
            end_orphaned_run(run_id, private, kill_group=kill_group)
            return
        time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    private: Path | None = None
    if len(args) > 2 and args[1] == PRIVATE_OPTION:
        private = Path(args[2])
        del args[1:3]
    if len(args) < 2 or not args[0].isdigit():
        print(
            f"usage: python -m siteops.guard PARENT_PID [{PRIVATE_OPTION} DIR] COMMAND [ARG...]",
            file=sys.stderr,
        )
        return 2
    parent, command = int(args[0]), args[1:]
    run_id = os.environ.get(RUN_ID) or uuid.uuid4().hex
    stopping: list[int] = []

    def stop(signum: int, _frame: FrameType | None) -> None:
        stopping.append(signum)
        if os.getppid() != parent:  # siteops is gone: nobody else cleans up
            end_orphaned_run(run_id, private)
        else:
            kill_run(run_id)

    # A group of its own (under ansible-runner it already leads its session):
    # killing the group must never reach whoever started the guard.
    if os.getpgrp() != os.getpid():
        os.setpgid(0, 0)
    for signum in _STOP_SIGNALS:
        signal.signal(signum, stop)
    if not _die_with(parent):
        end_orphaned_run(run_id, private)
        return 128 + signal.SIGTERM
    child = subprocess.Popen(command, env={**os.environ, RUN_ID: run_id})
    # Where the kernel has no death signal (macOS), or it was missed: a look
    # at the parent twice a second.
    threading.Thread(target=_watch, args=(parent, child, run_id, private), daemon=True).start()
    while True:
        try:
            status = child.wait()
            break
        except InterruptedError:  # pragma: no cover - PEP 475 retries wait()
            continue
    if stopping:
        return 128 + stopping[0]
    return status if status >= 0 else 128 - status


if __name__ == "__main__":
    sys.exit(main())
