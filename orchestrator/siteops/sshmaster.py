"""One SSH connection to a host for the whole of a changing command.

A changing command talks to its host over two channels at once: the session
that holds the host's lock (:mod:`siteops.hostlock`) and the command's Ansible
runs. Each used to log in on its own, a key exchange and login of ~0.2 s,
and Mitogen's connection shares none with anything (Ansible's ControlPath is
its ssh plugin's own). So :func:`master` logs in once, first: ``ssh -N`` as a
``ControlMaster`` whose socket lies in a private folder of this command. The
lock's session and every SSH connection of the command's runs go through it
(:func:`client_options`: ``ControlMaster=no``, so that ssh logs in by itself
should the master be gone). A run started before the master
(:func:`reserved`) names the socket the master will listen on.

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
# The control sockets named ahead of their masters (:func:`reserved`): host -> socket.
_RESERVED: dict[str, Path] = {}


def client_options(socket: Path) -> list[str]:
    """ssh options that send a connection through the master at ``socket``."""
    return ["-o", "ControlMaster=no", "-o", f"ControlPath={socket}"]


def socket_of(host: str) -> Path | None:
    """The control socket of ``host``'s master, while this process holds one open."""
    return _OPEN.get(host)


@contextlib.contextmanager
def reserved(variables: Mapping[str, Any], host: str) -> Iterator[Path | None]:
    """Name the control socket of ``host``'s next master before it starts, for the block.

    For a run started before the command logs in (its ssh options name the
    socket): the :func:`master` opened inside the block listens there. None
    for a host Ansible reaches without SSH; the open master's socket if one is.
    """
    if variables.get("ansible_connection") == "local":
        yield None
        return
    if host in _OPEN or host in _RESERVED:
        yield _OPEN.get(host) or _RESERVED[host]
        return
    folder = Path(tempfile.mkdtemp(prefix="siteops-ssh-"))  # mode 0700
    _RESERVED[host] = folder / "master"
    try:
        yield _RESERVED[host]
    finally:
        del _RESERVED[host]
        shutil.rmtree(folder, ignore_errors=True)


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
    # On the socket named ahead, or on one named for this master alone.
    with reserved(variables, host) as socket:
        assert socket is not None  # a host reached over SSH
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


def _exit(argv: Sequence[str], socket: Path) -> None:
    """Ask the master to end now (its sessions have ended)."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(
            [argv[0], "-o", f"ControlPath={socket}", "-O", "exit", argv[-1]],
            stdin=subprocess.DEVNULL, capture_output=True, check=False, timeout=10,
        )  # fmt: skip
