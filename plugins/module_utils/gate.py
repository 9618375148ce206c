"""The gate a run of ansible-playbook waits at until siteops holds the host's lock.

A changing siteops command starts ansible-playbook before it has logged in to
the host and taken the host's lock, so that ansible-playbook's own start (its
imports, the inventory, the playbook and its roles: 0.6-0.7 s) overlaps with
the login and the lock. The callback siteops.hosting.gate holds the run at
the start of its first play, before any task, until siteops opens the gate.

The gate is a named pipe (FIFO) that siteops makes in the run's private
folder and names in the run's environment (:data:`ENV`). The run, at its
first play, opens it for reading: that blocks until a writer comes, and
counts as a reader meanwhile. siteops opens it for writing without blocking
(:func:`try_open`), which succeeds only once that reader is there (so siteops
also knows the run has reached the gate), and writes :data:`WORD`. Anything
else the run reads (the pipe closed without it) keeps the gate shut: the run
stops before its first task. A run siteops abandons is killed while it waits.

Shared by the callback and the siteops command. Standard library only: the
command loads this file by its path.
"""

from __future__ import annotations

import errno
import os

# The environment variable naming the gate (a FIFO); unset, a run does not wait.
ENV = "SITEOPS_GATE"
# What siteops writes to open the gate.
WORD = b"go\n"
# ansible-playbook's exit status when the gate stays shut (Ansible's "interrupted by the user").
SHUT_EXIT = 99


def make(path: str) -> None:
    """Make the gate at ``path`` (readable and writable by its owner only)."""
    os.mkfifo(path, 0o600)


def try_open(path: str) -> bool:
    """Open the gate if a run waits at it; False if none does yet (nothing is written then)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # no reader: the run has not reached its gate
            return False
        raise
    try:
        os.write(fd, WORD)
    finally:
        os.close(fd)
    return True


def wait(path: str) -> str | None:
    """Wait at the gate until it opens: None, or why it stays shut."""
    try:
        with open(path, "rb") as gate:
            word = gate.read(len(WORD))
    except OSError as exc:
        return f"cannot read the gate {path}: {exc.strerror or exc}"
    if word != WORD:
        return f"the gate {path} closed without opening"
    return None
