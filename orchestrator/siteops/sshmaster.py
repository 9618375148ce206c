"""One SSH connection to a host for the whole of a changing command.

A changing command talks to its host over two channels at once: the session
that holds the host's lock (:mod:`siteops.hostlock`) and the command's Ansible
runs. Each used to log in on its own, a key exchange and login of ~0.2 s,
and Mitogen's connection shares none with anything (Ansible's ControlPath is
its ssh plugin's own). So :func:`master` logs in once, first: ``ssh -N`` as a
``ControlMaster`` whose socket lies in a private folder of this command. The
lock's session and every SSH connection of the command's runs go through it
(:func:`client_options`: ``ControlMaster=no``, so that ssh logs in by itself
should the master be gone).

The master belongs to this command alone, never to the next one nor to another
operator: it is asked to exit when the command's session ends, and it exits by
itself :data:`PERSIST_SECONDS` after its last session closes in any case
(``ControlPersist``), so a siteops that crashes leaves nothing behind for long.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from siteops.remote import RemoteError, connection_argv

# How long the master stays once its last session has closed (it is told to go before).
PERSIST_SECONDS = 5
# An unreachable host is noticed within this many seconds once connected.
KEEPALIVE = ["-o", "ServerAliveInterval=10", "-o", "ServerAliveCountMax=3"]

# The masters open in this process: host -> control socket (one per host at a time).
_OPEN: dict[str, Path] = {}


def client_options(socket: Path) -> list[str]:
    """ssh options that send a connection through the master at ``socket``."""
    return ["-o", "ControlMaster=no", "-o", f"ControlPath={socket}"]


def socket_of(host: str) -> Path | None:
    """The control socket of ``host``'s master, while this process holds one open."""
    return _OPEN.get(host)


@contextlib.contextmanager
def master(variables: Mapping[str, Any], host: str, what: str) -> Iterator[Path | None]:
    """Log in to ``host`` once for the ``with`` block; yield the master's control socket.

    None for a host Ansible reaches without SSH (``ansible_connection: local``).
    A host that does not let us in raises :class:`RemoteError` naming ``what``
    could not be done, with ssh's own reason.
    """
    if variables.get("ansible_connection") == "local" or host in _OPEN:
        yield _OPEN.get(host)
        return
    folder = Path(tempfile.mkdtemp(prefix="siteops-ssh-"))  # mode 0700
    socket = folder / "master"
    argv = connection_argv(variables, host)
    options = ["-o", "ControlMaster=yes", "-o", f"ControlPath={socket}",
               "-o", f"ControlPersist={PERSIST_SECONDS}", "-N"]  # fmt: skip
    try:
        # ssh returns once logged in, the master going on in the background.
        done = subprocess.run(
            [argv[0], *KEEPALIVE, *options, *argv[1:]],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False,
            start_new_session=True,
        )  # fmt: skip
        if done.returncode != 0:
            raise RemoteError(
                f"{what} on host {host!r} (ssh exit {done.returncode}): "
                f"{done.stderr.strip() or 'no answer'}"
            )
        _OPEN[host] = socket
        yield socket
    finally:
        if _OPEN.get(host) == socket:
            del _OPEN[host]
            _exit(argv, socket)
        shutil.rmtree(folder, ignore_errors=True)


def _exit(argv: Sequence[str], socket: Path) -> None:
    """Ask the master to end now (its sessions have ended)."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(
            [argv[0], "-o", f"ControlPath={socket}", "-O", "exit", argv[-1]],
            stdin=subprocess.DEVNULL, capture_output=True, check=False, timeout=10,
        )  # fmt: skip
