"""The host's side of every changing command: its lock, its registry record and its audit log.

A changing command (add-site, apply, remove-site, deploy, rollback) opens one
SSH connection to the host before its Ansible run and keeps it open until the
command ends. On the host, :mod:`siteops.hostsession` (sent as source, run as
root) takes the host's lock, an ``flock`` that lives exactly as long as that
connection: a second run from any machine or inventory copy waits (told who
holds it), a run that dies drops it with its connection, and the next run
takes it over. Over the same connection the command reads the registry record
the host keeps (the sites file it was last converged from, its revision and
the hashes of earlier revisions), records each sites file it converges, and
reports its result; the host appends one line to its audit log when the
connection ends.

How the inventory's sites file stands against that record is
:mod:`siteops.revision`'s part.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from siteops.errors import SiteopsError
from siteops.hostrelease import forget, release_facts, release_files, remember
from siteops.layout import layout
from siteops.registry import LockHolder
from siteops.remote import RemoteError, ssh_argv
from siteops.revision import HostRecord, RegistryConflict, sha256
from siteops.sshmaster import KEEPALIVE, client_options, master

SOURCE = Path(__file__).with_name("hostsession.py")
# sshd exposes the key it accepted in a file named by this variable (ExposeAuthInfo).
AUTH_INFO = '"${SSH_USER_AUTH:-}"'
EXIT_LOCKED = 75


class HostLocked(SiteopsError):  # noqa: N818 (reads as the condition it reports)
    """Another run holds the host's lock for longer than we may wait."""

    code = EXIT_LOCKED


def holder_text(holder: Mapping[str, Any] | None) -> str:
    """One line naming a lock's holder: operator, machine, command, pid and start time."""
    if not holder:
        return "another run (it has not said who yet)"
    return (
        f"{holder.get('user')}@{holder.get('hostname')} running "
        f"`siteops {holder.get('purpose')}` (pid {holder.get('pid')}) since {holder.get('since')}"
    )


# Arguments whose value is a secret (a word after them is masked), and KEY=VALUE words.
_SECRET_OPTIONS = re.compile(r"^--?[\w-]*(password|secret|token|passphrase)[\w-]*$", re.I)
_ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=.*$", re.S)
MASK = "***"


def mask_arguments(args: Sequence[str]) -> list[str]:
    """``args`` with every secret replaced by ``***`` (values of KEY=VALUE and secret options)."""
    masked: list[str] = []
    hide_next = False
    for arg in args:
        if hide_next:
            masked.append(MASK)
            hide_next = False
            continue
        option, eq, _value = arg.partition("=")
        if _SECRET_OPTIONS.match(option):
            if eq:
                masked.append(f"{option}={MASK}")
            else:
                masked.append(arg)
                hide_next = True
            continue
        match = _ASSIGNMENT.match(arg)
        masked.append(f"{match.group(1)}={MASK}" if match else arg)
    return masked


def _config(**extra: Any) -> dict[str, Any]:
    where = layout()
    return {
        "lock": where.host_lock,
        "registry": where.registry_dir,
        "audit": where.audit_log,
        **extra,
    }


def remote_argv(
    variables: Mapping[str, Any],
    host: str,
    mode: str,
    config: Mapping[str, Any],
    via: Path | None = None,
) -> list[str]:
    """The command running :mod:`siteops.hostsession` in ``mode`` as root on the host.

    ``ssh …`` with the inventory's settings (through the master connection at
    ``via``, :mod:`siteops.sshmaster`); for a host Ansible reaches with
    ``ansible_connection: local`` (this machine), the program itself.
    """
    source = SOURCE.read_text(encoding="utf-8")
    command = [mode, json.dumps(config)]
    if variables.get("ansible_connection") == "local":
        return [sys.executable, "-c", source, *command, os.environ.get("SSH_USER_AUTH", "")]
    argv = ssh_argv(variables, host, ["python3", "-c", source, *command], raw_suffix=AUTH_INFO)
    shared = client_options(via) if via is not None else []
    return [argv[0], *KEEPALIVE, *shared, *argv[1:]]


def _event(line: str) -> dict[str, Any]:
    try:
        data = json.loads(line)
    except ValueError:
        data = None
    if not isinstance(data, dict) or "event" not in data:
        raise RemoteError(f"unexpected answer from the host: {line.strip()[:200]!r}")
    return data


def _unreachable(host: str, process: subprocess.Popen[str]) -> RemoteError:
    process.wait()
    stderr = process.stderr.read().strip() if process.stderr else ""
    return RemoteError(
        f"cannot hold the lock on host {host!r} (ssh exit {process.returncode}): "
        f"{stderr or 'no answer'}"
    )


OnWait = Callable[[Mapping[str, Any] | None], None]


class HostSession:
    """The open connection holding the host's lock (see the module docstring)."""

    def __init__(
        self, host: str, process: subprocess.Popen[str], locked: Mapping[str, Any]
    ) -> None:
        self.host = host
        self._process = process
        self.holder: Mapping[str, Any] = locked.get("holder") or {}
        self.taken_over: Mapping[str, Any] | None = locked.get("taken_over")
        self.record = HostRecord.parse(locked.get("registry") or {})
        # The host's Debian release facts (none from a host session of an older siteops).
        self.release = release_facts(locked.get("release") or {})
        # The TCP ports the host listened on when the lock was taken.
        self.listening: set[int] = {int(port) for port in locked.get("listening") or []}
        self.revision: int | None = None
        self.finished = False
        # Set when the connection holding the lock ends before siteops closes it
        # (`lock release --force`, a broken connection): the run must stop then.
        self.lost = threading.Event()
        self._closing = False
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        self._process.wait()
        if not self._closing:
            self.lost.set()

    @classmethod
    def open(
        cls,
        variables: Mapping[str, Any],
        host: str,
        *,
        purpose: str,
        args: Sequence[str],
        sites: Sequence[str],
        timeout: float,
        on_wait: OnWait,
        via: Path | None = None,
    ) -> HostSession:
        """Connect (through ``via``, see :func:`remote_argv`) and take the host's lock,
        waiting up to ``timeout`` seconds."""
        me = LockHolder.me(purpose)
        config = _config(
            holder={"pid": me.pid, "user": me.user, "hostname": me.hostname,
                    "purpose": me.purpose, "since": me.since},
            timeout=timeout,
            args=mask_arguments(args),
            sites=list(sites),
            login=str(variables.get("ansible_user", "root")),
            release_files=release_files(),
        )  # fmt: skip
        process = subprocess.Popen(
            remote_argv(variables, host, "session", config, via),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
            # Not in the terminal's process group: Ctrl-C cancels the Ansible run,
            # and the lock is released after it, when siteops closes stdin.
            start_new_session=True,
        )
        try:
            assert process.stdout is not None
            for line in process.stdout:
                event = _event(line)
                if event["event"] == "wait":
                    on_wait(event.get("holder"))
                elif event["event"] == "timeout":
                    process.wait()
                    raise HostLocked(
                        f"host {host!r} is locked by {holder_text(event.get('holder'))}; gave "
                        f"up after waiting {event.get('waited')}s (--lock-timeout). Wait for "
                        "that run to finish, or see `siteops lock status`."
                    )
                elif event["event"] == "locked":
                    return cls(host, process, event)
            raise _unreachable(host, process)
        except BaseException:
            with contextlib.suppress(OSError):
                process.kill()
            process.wait()
            raise

    def _request(self, request: Mapping[str, Any], expect: str) -> dict[str, Any]:
        stdin, stdout = self._process.stdin, self._process.stdout
        assert stdin is not None and stdout is not None
        try:
            stdin.write(json.dumps(request) + "\n")
            stdin.flush()
            line = stdout.readline()
        except OSError:
            line = ""
        if not line:
            self._process.wait()
            raise RemoteError(
                f"host {self.host!r}: the connection holding its lock ended during the run "
                f"(ssh exit {self._process.returncode}: the lock was released with `siteops lock "
                "release --force`, or the connection broke); the run went on without the lock. "
                "Check `siteops lock status`, then repeat the command (safe to repeat)."
            )
        event = _event(line)
        if event["event"] != expect:
            raise RemoteError(f"host {self.host!r} answered {event!r} to {request['op']!r}")
        return event

    def record_sites(self, text: str) -> int:
        """Record ``text`` (the sites file about to be converged) as the host's revision."""
        answer = self._request({"op": "record", "text": text}, "recorded")
        self.revision = int(answer["revision"])
        self.record = HostRecord(
            revision=self.revision, sha256=sha256(text), text=text,
            history=[{"revision": self.revision, "sha256": sha256(text)}, *self.record.history],
        )  # fmt: skip
        return self.revision

    def change_env(
        self, path: str, assign: Mapping[str, str], unset: Sequence[str]
    ) -> dict[str, Any]:
        """Set and unset the operator's lines of a site's .env (values go over stdin only)."""
        request = {"op": "env", "path": path, "set": dict(assign), "unset": list(unset)}
        return self._request(request, "env")

    def rotate_db_password(self, path: str, role: str) -> None:
        """A new password for ``role`` and in the .env at ``path`` (it never leaves the host)."""
        answer = self._request({"op": "rotate_db", "path": path, "role": role}, "rotated")
        if answer.get("error"):
            raise RemoteError(f"host {self.host!r}: {answer['error']}")

    def serving(self, units: Mapping[str, int | None], timeout: float) -> dict[str, Any]:
        """Each unit's state and whether its port answers (waits up to ``timeout`` seconds)."""
        answer = self._request({"op": "serving", "units": dict(units), "timeout": timeout},
                               "serving")  # fmt: skip
        return dict(answer.get("units") or {})

    def restart(self, units: Sequence[str]) -> dict[str, str]:
        """Restart ``units`` on the host; the state of each afterwards."""
        answer = self._request({"op": "restart", "units": list(units)}, "restarted")
        return dict(answer.get("units") or {})

    def backup(self, root: str, site: str, keep: str | None = None) -> dict[str, Any]:
        """A backup of ``site`` now (its backup unit); ``error`` says why it failed, ``kept``
        whether the backup is there anyway. ``keep``: a backup its retention must leave
        alone until the next ``restore`` (the one that restore uses)."""
        return self._request({"op": "backup", "root": root, "site": site, "keep": keep},
                             "backed-up")  # fmt: skip

    def restore(self, root: str, site: str, backup: str, *, whole: bool = False) -> dict[str, Any]:
        """Restore ``site``'s database and uploads from ``backup``; ``error`` says why not,
        ``current`` names the release the site runs afterwards.

        ``whole``: a removed site's database, shared/ and release from its final backup.
        """
        return self._request({"op": "restore", "root": root, "site": site, "backup": backup,
                              "whole": whole, "sites_root": layout().sites_root},
                             "restored")  # fmt: skip

    def move_backup(self, site: str) -> dict[str, Any]:
        """A backup of ``site`` for a move (what a final backup holds): its ``path``, or
        ``error``."""
        return self._request({"op": "move_backup", "site": site}, "backed-up")

    def fetch_offsite(self, site: str, snapshot: str | None) -> dict[str, Any]:
        """An offsite snapshot of ``site`` (default: its newest) put back among its local
        backups; ``id`` is that backup's, ``error`` says why not."""
        return self._request({"op": "fetch", "site": site, "snapshot": snapshot}, "fetched")

    def through_nginx(self, domain: str) -> int:
        """The status code nginx on the host answers ``/`` of ``domain`` with (0: none)."""
        return int(self._request({"op": "nginx", "domain": domain}, "answered").get("code") or 0)

    def finish(self, result: str, sites: Sequence[str] | None = None) -> None:
        """Tell the host how the command ended (for its audit log)."""
        request: dict[str, Any] = {"op": "finish", "result": result}
        if sites is not None:
            request["sites"] = list(sites)
        self._request(request, "finished")
        self.finished = True

    def close(self) -> None:
        """Release the lock: end stdin; the host writes the audit line and exits."""
        self._closing = True
        with contextlib.suppress(OSError):
            if self._process.stdin:
                self._process.stdin.close()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


@contextlib.contextmanager
def host_session(
    variables: Mapping[str, Any],
    host: str,
    *,
    purpose: str,
    args: Sequence[str],
    sites: Sequence[str],
    timeout: float,
    on_wait: OnWait,
) -> Iterator[HostSession]:
    """A :class:`HostSession` for the ``with`` block; the result is ``ok`` unless it raises.

    An exception in the block is reported as ``failed`` (``cancelled`` for
    Ctrl-C); a command that failed in its own way calls :meth:`HostSession.finish`
    itself first. The session and the block's Ansible runs share one SSH
    connection (:func:`siteops.sshmaster.master`).
    """
    with master(variables, host, "cannot hold the lock") as via:
        session = HostSession.open(
            variables, host, purpose=purpose, args=args, sites=sites, timeout=timeout,
            on_wait=on_wait, via=via,
        )  # fmt: skip
        remember(host, session.release)
        try:
            yield session
            if not session.finished:
                session.finish("ok")
        except BaseException as exc:
            with contextlib.suppress(RemoteError):
                if not session.finished:
                    session.finish(_result_of(exc))
            raise
        finally:
            forget(host)
            session.close()


def _result_of(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "cancelled"
    if isinstance(exc, RegistryConflict):
        return "refused"
    return "failed"


def _one_shot(
    variables: Mapping[str, Any], host: str, mode: str, config: Mapping[str, Any]
) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        remote_argv(variables, host, mode, config),
        capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if not lines:
        raise RemoteError(
            f"host {host!r} did not answer (ssh exit {done.returncode}): {done.stderr.strip()}"
        )
    return done.returncode, _event(lines[-1])


def lock_status(variables: Mapping[str, Any], host: str) -> dict[str, Any]:
    """``{"held": bool, "holder"|"left": …}``: who holds the host's lock, or left it behind."""
    return _one_shot(variables, host, "status", _config())[1]


def lock_release(variables: Mapping[str, Any], host: str, *, force: bool) -> dict[str, Any]:
    """Release the host's lock; a held one only with ``force`` (its holder is stopped)."""
    me = LockHolder.me("lock release")
    config = _config(force=force, operator={"user": me.user, "machine": me.hostname},
                     login=str(variables.get("ansible_user", "root")))  # fmt: skip
    code, event = _one_shot(variables, host, "release", config)
    if event["event"] == "refused":
        raise HostLocked(
            f"host {host!r} is locked by {holder_text(event.get('holder'))}, which is still "
            "running; `siteops lock release --force` stops its hold on the host (its Ansible "
            "run, if any, goes on)"
        )
    if code != 0:
        raise RemoteError(f"host {host!r}: lock release failed: {event}")
    return event


def read_record(variables: Mapping[str, Any], host: str) -> HostRecord:
    """The host's registry record, read without the lock."""
    return HostRecord.parse(_one_shot(variables, host, "read", _config())[1].get("registry") or {})


def audit_entries(variables: Mapping[str, Any], host: str) -> list[dict[str, Any]]:
    """Every line of the host's audit log, oldest first."""
    entries = _one_shot(variables, host, "audit", _config())[1].get("entries") or []
    # In the order the commands started: a run that died on the host is logged when
    # the next run takes its lock over, with its own start time.
    return sorted((e for e in entries if isinstance(e, dict)), key=lambda e: str(e.get("time")))


def list_backups(variables: Mapping[str, Any], host: str, root: str, site: str) -> dict[str, Any]:
    """The backups of ``site`` on the host (newest first), its last backup and restore test."""
    return _one_shot(variables, host, "backups", _config(root=root, site=site))[1]


def read_env(variables: Mapping[str, Any], host: str, path: str) -> list[dict[str, Any]] | None:
    """The KEY=VALUE lines of a site's .env (``managed`` marks the roles'); None: no file."""
    entries = _one_shot(variables, host, "env", _config(path=path))[1].get("entries")
    return None if entries is None else [e for e in entries if isinstance(e, dict)]


def offsite(variables: Mapping[str, Any], host: str, site: str | None) -> dict[str, Any]:
    """``site``'s offsite snapshots (``snapshots``, newest first), or with no site the host's
    public key for the offsite target (``key``); ``off`` when offsite copies are off."""
    return _one_shot(variables, host, "offsite", _config(site=site))[1]
