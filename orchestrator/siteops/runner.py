"""Run one playbook through ansible-runner: quietly, with progress, a kept log and no secrets left.

Each run gets its own private data directory (mode 0700) that is removed
afterwards; only Ansible's own output is kept, as ``<log_dir>/<time>-<playbook>.log``
(mode 0600). Ansible already censors the results of ``no_log`` tasks in that
output. Extra variables reach ``ansible-playbook`` through a file in the
private directory (``-e @file``), never through the command line (visible in
``ps``) or the environment; ansible-runner is told not to write its ``env/``
files, and events are handled in memory and not written to disk.

Progress: every event ansible-runner reports goes through the pure function
:func:`apply_event`, and the caller's ``on_progress`` gets the new
:class:`Progress`. Ctrl-C (or setting the ``cancel`` event) stops the run:
ansible-runner kills ``ansible-playbook`` and its process group, and the
result says it was cancelled (exit code 130); siteops also kills every
process marked with the run's id (Mitogen's helpers leave ansible-playbook's
process group). ansible-playbook runs under :mod:`siteops.guard`: when
siteops dies in any way (SIGKILL, a closed terminal), the run and every
process it started go too. Every siteops
playbook is safe to run again, which is how a cancelled, killed or failed
run is finished.

A run may start before the command has logged in to its host and taken the
host's lock (:func:`started_playbook` with ``gated``): ansible-playbook's own
start (0.6-0.7 s of imports, inventory, playbook and roles) then overlaps with
the login and the lock, and the run waits before its first task until the
command asks for its result (``plugins/module_utils/gate.py``). A run that
starts a task before that (its gate's callback not loaded) is cancelled and
reported; one whose result is never asked for is killed.
"""

from __future__ import annotations

import configparser
import contextlib
import json
import os
import shlex
import shutil
import signal
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ansible_runner  # type: ignore[import-untyped]
import ptyprocess  # type: ignore[import-untyped]

from siteops.errors import SiteopsError
from siteops.guard import RUN_ID, guard_script, kill_run
from siteops.resources import COLLECTION, collection_module
from siteops.sshmaster import client_options

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_HOST_FAILED = 2
EXIT_UNREACHABLE = 3
EXIT_CANCELLED = 130

_TASK_START_EVENTS = frozenset({"playbook_on_task_start", "playbook_on_handler_task_start"})
# How often (seconds) ansible-runner looks at the cancel flag while Ansible is silent.
_CANCEL_POLL_SECONDS = 0.5
# How often (seconds) a gated run is looked at until it waits at its gate.
_GATE_POLL_SECONDS = 0.01
# How long an abandoned run may take to go once killed.
_ABANDON_WAIT_SECONDS = 30.0
# The gate's protocol, shared with the callback that holds a run at it.
GATE = Path("plugins") / "module_utils" / "gate.py"
GATE_CALLBACK = f"{COLLECTION}.gate"
# ansible-playbook, run by this Python with a setting of its garbage collector
# (siteops.ansible_playbook); -P: the run's working directory is not on sys.path.
ANSIBLE_PLAYBOOK = (sys.executable, "-P", "-m", "siteops.ansible_playbook")
_MESSAGE_MAX = 600
_STDERR_LINES = 5


_pty_close = ptyprocess.PtyProcess.close


def _close_reaped(pty: Any, force: bool = True) -> None:
    """ptyprocess's ``close``, without its 0.1 s wait once the child is reaped.

    ansible-runner runs ansible-playbook on a pty (pexpect, over ptyprocess)
    and closes it only after its loop has seen the process end (``isalive()``
    reaps it) and read its output to the end. ptyprocess's ``close`` then
    sleeps ``delayafterclose`` (0.1 s), to give the kernel time to report
    the child's exit, for a child whose exit status it already holds: 0.1 s
    of every siteops command. A child still running is closed as before,
    after the wait.
    """
    if pty.terminated:
        pty.delayafterclose = 0
    _pty_close(pty, force)


# Every pty of this process closes this way (ansible-runner's are the only ones).
ptyprocess.PtyProcess.close = _close_reaped


@dataclass(frozen=True)
class Progress:
    """Where a run stands, for a progress line.

    Counts follow Ansible's recap: ``ok`` includes ``changed`` results and
    failures ignored by ``ignore_errors``. While the run goes on they are
    counted from events (a failure later rescued by a ``rescue:`` block counts
    as failed until the end); the final ``playbook_on_stats`` event replaces
    them with Ansible's own totals. ``tasks_total`` is only known when the
    caller gives it (Ansible does not announce it), or once the run is over.
    """

    play: str | None = None
    task: str | None = None
    host: str | None = None
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0
    tasks_done: int = 0
    tasks_total: int | None = None
    finished: bool = False


def _event_data(event: Mapping[str, Any]) -> Mapping[str, Any]:
    data = event.get("event_data")
    return data if isinstance(data, Mapping) else {}


def _result(data: Mapping[str, Any]) -> Mapping[str, Any]:
    res = data.get("res")
    return res if isinstance(res, Mapping) else {}


def _task_finished(progress: Progress) -> Progress:
    if progress.task is None:
        return progress
    return replace(progress, task=None, host=None, tasks_done=progress.tasks_done + 1)


def _recap_total(data: Mapping[str, Any], key: str) -> int:
    per_host = data.get(key)
    if not isinstance(per_host, Mapping):
        return 0
    return sum(int(count) for count in per_host.values())


def apply_event(progress: Progress, event: Mapping[str, Any]) -> Progress:
    """The progress after one ansible-runner event (a pure function; unknown events change nothing).

    Per-item events of loops (``runner_item_on_*``) are not counted: the
    task's own ``runner_on_*`` event that follows them counts once.
    """
    kind = event.get("event")
    data = _event_data(event)
    host = data.get("host") if isinstance(data.get("host"), str) else progress.host
    if kind == "playbook_on_play_start":
        return replace(_task_finished(progress), play=data.get("play") or data.get("name"))
    if kind in _TASK_START_EVENTS:
        return replace(_task_finished(progress), task=data.get("task") or data.get("name"))
    if kind in ("runner_on_start", "runner_item_on_ok", "runner_item_on_failed"):
        return replace(progress, host=host)
    if kind == "runner_on_ok":
        changed = bool(_result(data).get("changed"))
        return replace(progress, host=host, ok=progress.ok + 1, changed=progress.changed + changed)
    if kind == "runner_on_failed":
        if data.get("ignore_errors"):
            changed = bool(_result(data).get("changed"))
            return replace(
                progress, host=host, ok=progress.ok + 1, changed=progress.changed + changed
            )
        return replace(progress, host=host, failed=progress.failed + 1)
    if kind == "runner_on_unreachable":
        return replace(progress, host=host, unreachable=progress.unreachable + 1)
    if kind == "runner_on_skipped":
        return replace(progress, host=host, skipped=progress.skipped + 1)
    if kind == "playbook_on_stats":
        done = _task_finished(progress)
        return replace(
            done,
            ok=_recap_total(data, "ok"),
            changed=_recap_total(data, "changed"),
            failed=_recap_total(data, "failures"),
            unreachable=_recap_total(data, "dark"),
            skipped=_recap_total(data, "skipped"),
            tasks_total=done.tasks_done if done.tasks_total is None else done.tasks_total,
            finished=True,
        )
    return progress


@dataclass(frozen=True)
class Failure:
    """One task that failed (or could not reach its host), with Ansible's reason."""

    host: str
    task: str
    message: str
    unreachable: bool = False

    def line(self) -> str:
        what = "unreachable" if self.unreachable else "failed"
        return f"{self.host}: {self.task} {what}: {self.message}"


def _trim(text: str, limit: int = _MESSAGE_MAX) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _reason(res: Mapping[str, Any]) -> str:
    if "censored" in res:
        return "(details hidden: the task uses no_log)"
    parts: list[str] = []
    msg = res.get("msg")
    if isinstance(msg, str) and msg.strip():
        parts.append(msg.strip())
    stderr = res.get("stderr")
    if isinstance(stderr, str) and stderr.strip():
        parts.append("stderr: " + " / ".join(stderr.strip().splitlines()[-_STDERR_LINES:]))
    items = res.get("results")
    if isinstance(items, list):
        for item in items:
            if isinstance(item, Mapping) and item.get("failed"):
                label = item.get("item", "?")
                parts.append(f"item {label}: {_reason(item)}")
    return _trim("; ".join(parts) or "no message (see the log)")


def failure_of(event: Mapping[str, Any]) -> Failure | None:
    """The failure an event reports, if it is a failure that counts (not ignored)."""
    kind = event.get("event")
    if kind not in ("runner_on_failed", "runner_on_unreachable"):
        return None
    data = _event_data(event)
    if kind == "runner_on_failed" and data.get("ignore_errors"):
        return None
    return Failure(
        host=str(data.get("host", "?")),
        task=str(data.get("task", "?")),
        message=_reason(_result(data)),
        unreachable=kind == "runner_on_unreachable",
    )


@dataclass(frozen=True)
class RunResult:
    """How a playbook run ended.

    ``stats`` is Ansible's recap by counter and host (``ok``, ``changed``,
    ``failures``, ``dark`` = unreachable, ``skipped``, ``rescued``,
    ``ignored``), empty when Ansible stopped before any play (e.g. a syntax
    error: see the log). ``artifacts`` is what the playbook handed back with
    ``ansible.builtin.set_stats`` (``per_host: false``), e.g. gathered facts.
    """

    rc: int
    status: str
    stats: dict[str, dict[str, int]]
    log_path: Path | None
    failures: tuple[Failure, ...] = ()
    cancelled: bool = False
    artifacts: Mapping[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """0 success, 2 a host failed, 3 a host was unreachable, 130 cancelled, 1 other errors.

        Unreachable wins over failed: nothing else can be fixed before the
        host can be reached.
        """
        if self.cancelled:
            return EXIT_CANCELLED
        if self.stats.get("dark") or any(f.unreachable for f in self.failures):
            return EXIT_UNREACHABLE
        if self.stats.get("failures") or self.failures:
            return EXIT_HOST_FAILED
        if self.rc == 0 and self.status == "successful":
            return EXIT_OK
        return EXIT_ERROR

    def failure_summary(self) -> list[str]:
        """One line per failed or unreachable task: ``host: task failed: reason``."""
        return [failure.line() for failure in self.failures]

    def next_step(self) -> str:
        """What the person should do now, for the CLI to print under the summary."""
        log = f" Full log: {self.log_path}." if self.log_path else ""
        code = self.exit_code
        if code == EXIT_OK:
            return "Nothing to do." + log
        if code == EXIT_CANCELLED:
            return (
                "The run was cancelled; the host may be half-way through a change. "
                "Run the same command again to finish it." + log
            )
        if code == EXIT_UNREACHABLE:
            return (
                "Ansible could not reach the host: check its address, SSH user and key in "
                "the inventory and that SSH answers, then run again." + log
            )
        if code == EXIT_HOST_FAILED:
            return "Fix the cause shown above, then run the same command again." + log
        return "Ansible stopped with an error before or between tasks: read the log." + log


def _venv_bin() -> str:
    return str(Path(sys.executable).parent)


# Where Ansible looks for collections when nothing else is configured.
DEFAULT_COLLECTIONS_PATHS = ("~/.ansible/collections", "/usr/share/ansible/collections")


# Ansible's ssh_args when neither ANSIBLE_SSH_ARGS nor ansible.cfg sets them.
DEFAULT_SSH_ARGS = "-C -o ControlMaster=auto -o ControlPersist=60s"


def _configured(config: Path | None, variable: str, section: str, key: str, default: str) -> str:
    """A setting as Ansible reads it: ``variable`` in the environment, else ``config``'s, else
    ``default``."""
    if variable in os.environ:
        return os.environ[variable]
    if config is not None:
        # Read as Ansible reads it (ansible.config.manager).
        parser = configparser.ConfigParser(inline_comment_prefixes=(";",))
        with contextlib.suppress(OSError, configparser.Error):
            parser.read(config, encoding="utf-8")
            return parser.get(section, key, fallback=default)
    return default


def configured_ssh_args(config: Path | None) -> str:
    """The ssh_args Ansible uses: ``ANSIBLE_SSH_ARGS``, else ``config``'s, else its default."""
    return _configured(config, "ANSIBLE_SSH_ARGS", "ssh_connection", "ssh_args", DEFAULT_SSH_ARGS)


def configured_callbacks(config: Path | None) -> list[str]:
    """The callbacks Ansible turns on: ``ANSIBLE_CALLBACKS_ENABLED``, else ``config``'s."""
    text = _configured(config, "ANSIBLE_CALLBACKS_ENABLED", "defaults", "callbacks_enabled", "")
    return [name.strip() for name in text.split(",") if name.strip()]


def run_envvars(
    project_dir: Path,
    config: Path | None = None,
    collections: Path | None = None,
    ssh_via: Path | None = None,
    gate: Path | None = None,
) -> dict[str, str]:
    """The environment settings of every run (on top of the caller's environment).

    Roles come from the collection at ``project_dir``, handlers run even after
    a failure (so a changed nginx config is still checked and reloaded), SSH
    pipelining is on, facts are gathered only where a play asks, SSH host
    keys are checked (ansible-runner would otherwise switch that off) and the
    log has no colour codes. ``ansible-playbook`` is looked up next to this
    Python first. The settings file is ``config`` (the user's project folder's
    ``ansible.cfg``), else the checkout's own ``ansible.cfg`` if there is one.
    ``collections`` (a folder holding ``ansible_collections/siteops/hosting``)
    comes first in the collections path, so the roles find the collection's
    filters (``siteops.hosting.<filter>``) and the user's ``ansible.cfg`` may
    name ``siteops.hosting`` content (its Mitogen strategy) however siteops
    is installed. ``ssh_via``: the control socket of the command's SSH
    master (:mod:`siteops.sshmaster`), which every connection of the run
    then goes through, ahead of the configured ``ssh_args`` (ssh takes the
    first value of an option). ``gate``: the run waits at this gate before
    its first task (:func:`started_playbook`); the callback that holds it is
    turned on after those the settings turn on.
    """
    env = {
        "ANSIBLE_ROLES_PATH": str(project_dir / "roles"),
        "ANSIBLE_FORCE_HANDLERS": "1",
        "ANSIBLE_PIPELINING": "1",
        "ANSIBLE_GATHERING": "explicit",
        "ANSIBLE_NOCOLOR": "1",
        # ansible-runner turns SSH host key checking off unless this is set.
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "PATH": os.pathsep.join(filter(None, [_venv_bin(), os.environ.get("PATH", "")])),
    }
    if config is None and (project_dir / "ansible.cfg").is_file():
        config = project_dir / "ansible.cfg"
    if config is not None:
        env["ANSIBLE_CONFIG"] = str(config)
    if ssh_via is not None:
        env["ANSIBLE_SSH_ARGS"] = (
            f"{shlex.join(client_options(ssh_via))} {configured_ssh_args(config)}"
        )
    if collections is not None:
        rest = os.environ.get("ANSIBLE_COLLECTIONS_PATH") or os.pathsep.join(
            DEFAULT_COLLECTIONS_PATHS
        )
        env["ANSIBLE_COLLECTIONS_PATH"] = os.pathsep.join([str(collections), rest])
    if gate is not None:
        env[collection_module(GATE).ENV] = str(gate)
        callbacks = [c for c in configured_callbacks(config) if c != GATE_CALLBACK]
        env["ANSIBLE_CALLBACKS_ENABLED"] = ",".join([*callbacks, GATE_CALLBACK])
    return env


def run_cmdline(extravars_file: Path, *, check: bool, diff: bool) -> str:
    """The extra ``ansible-playbook`` arguments: variables from a file, check and diff modes."""
    args = ["-e", f"@{extravars_file}"]
    if check:
        args.append("--check")
    if diff:
        args.append("--diff")
    return shlex.join(args)


def _write_private(path: Path, data: Any) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle)


def _log_name(playbook: Path, moment: datetime) -> str:
    return f"{moment.strftime('%Y%m%dT%H%M%SZ')}-{playbook.stem}.log"


def keep_log(stdout: Path, log_dir: Path, playbook: Path, moment: datetime) -> Path | None:
    """Copy Ansible's output to ``log_dir`` (0700) as a 0600 file; ``None`` if there was none."""
    if not stdout.is_file():
        return None
    log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    text = stdout.read_text(encoding="utf-8", errors="replace").replace("\r\n", "\n")
    name = _log_name(playbook, moment)
    for attempt in range(100):
        path = log_dir / (name if attempt == 0 else name.replace(".log", f"-{attempt}.log"))
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text.lstrip("\n"))
        return path
    raise FileExistsError(f"{log_dir}: too many logs named {name}; remove old ones")


@dataclass
class _Watcher:
    """Receives ansible-runner's events in its thread and keeps what the result needs.

    ``gate_open`` (a gated run, see :func:`started_playbook`): until it is
    set, progress is kept rather than shown (the command is still logging in
    and taking the lock, and says so itself), and a task starting means the
    run went past its gate: the run is cancelled (``past_gate``).
    """

    progress: Progress
    on_progress: Callable[[Progress], None]
    cancel: threading.Event
    run_id: str
    gate_open: threading.Event | None = None
    failures: list[Failure] = field(default_factory=list)
    stats: dict[str, dict[str, int]] = field(default_factory=dict)
    artifacts: dict[str, Any] = field(default_factory=dict)
    error: BaseException | None = None
    past_gate: bool = False

    def handle(self, event: dict[str, Any]) -> bool:
        held = self.gate_open is not None and not self.gate_open.is_set()
        if held and event.get("event") in _TASK_START_EVENTS and not self.past_gate:
            self.past_gate = True
            self.cancel.set()
            kill_run(self.run_id, kill_group=False)
        failure = failure_of(event)
        if failure is not None:
            self.failures.append(failure)
        if event.get("event") == "playbook_on_stats":
            data = _event_data(event)
            self.stats = {
                key: {str(h): int(n) for h, n in value.items()}
                for key, value in data.items()
                if isinstance(value, Mapping)
                and key in ("ok", "changed", "failures", "dark", "skipped", "rescued", "ignored")
            }
            artifacts = data.get("artifact_data")
            if isinstance(artifacts, Mapping):
                self.artifacts = dict(artifacts)
        updated = apply_event(self.progress, event)
        if updated != self.progress:
            self.progress = updated
            if held:
                return False
            try:
                self.on_progress(updated)
            except Exception as exc:  # a broken display must not leave Ansible running unseen
                self.error = exc
                self.cancel.set()
        return False  # keep events in memory only: never write them to the artifacts


@contextlib.contextmanager
def ctrl_c_cancels(cancel: threading.Event) -> Iterator[None]:
    """While active, Ctrl-C (SIGINT) sets ``cancel`` instead of raising ``KeyboardInterrupt``.

    A ``KeyboardInterrupt`` can strike anywhere in the main thread, including
    between the checks of a wait loop; a handler that only sets an event
    cannot be lost that way. Outside the main thread (where signal handlers
    cannot be set) this does nothing: cancel through the event instead. Nor
    where SIGINT is ignored (siteops started as a background job by a shell
    without job control: Ctrl-C at that terminal is not meant for it), as
    Python itself then raises no ``KeyboardInterrupt``.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous == signal.SIG_IGN:
        yield
        return
    signal.signal(signal.SIGINT, lambda _signum, _frame: cancel.set())
    try:
        yield
    finally:
        signal.signal(
            signal.SIGINT, previous if previous is not None else signal.default_int_handler
        )


class PastGate(SiteopsError):  # noqa: N818 (reads as the condition it reports)
    """A gated run started a task before siteops opened its gate; it was cancelled."""

    code = 1


class StartedRun:
    """A run of ansible-playbook that :func:`started_playbook` started in the background."""

    def __init__(
        self,
        playbook: Path,
        log_dir: Path,
        private: Path,
        watcher: _Watcher,
        gate: Path | None,
    ) -> None:
        self._playbook = playbook
        self._log_dir = log_dir
        self._private = private
        self._watcher = watcher
        self._gate = gate
        self._started = datetime.now(UTC)
        self._outcome: dict[str, Any] = {}
        self._done = threading.Event()

    def start(self, **runner_kwargs: Any) -> None:
        def work() -> None:
            try:
                self._outcome["runner"] = ansible_runner.run(**runner_kwargs)
            except BaseException as exc:
                self._outcome["error"] = exc
            finally:
                self._done.set()

        threading.Thread(target=work, name="siteops-ansible-runner", daemon=True).start()

    def _open_gate(self) -> bool:
        """Open the gate once the run waits at it; True once it is open (or there is none)."""
        gate_open = self._watcher.gate_open
        if self._gate is None or gate_open is None or gate_open.is_set():
            return True
        gate = collection_module(GATE)
        # Marked open first: the run's first task may start as soon as it reads the word.
        gate_open.set()
        if gate.try_open(str(self._gate)):
            return True
        gate_open.clear()
        return False

    def result(self, cancel: threading.Event | None = None) -> RunResult:
        """Open the run's gate, if it has one, wait for the run to end and say how it ended.

        Setting ``cancel`` (from another thread) or Ctrl-C stops the run. The
        gate opens once the run waits at it: a run that ends before reaching it
        (a playbook that does not parse) is reported as it ended.
        """
        watcher, run_cancel = self._watcher, self._watcher.cancel
        with ctrl_c_cancels(run_cancel):
            opened = False
            # Wait on an event, not Thread.join: on Python 3.11 a join interrupted by a
            # signal may mark a still-running thread as finished (bpo-45274).
            while not self._done.wait(0.2 if opened or run_cancel.is_set() else _GATE_POLL_SECONDS):
                if cancel is not None and cancel.is_set():
                    run_cancel.set()
                if run_cancel.is_set():
                    kill_run(watcher.run_id, kill_group=False)
                elif not opened:
                    opened = self._open_gate()
        if "error" in self._outcome:
            raise self._outcome["error"]
        log_path = keep_log(
            self._private / "artifacts" / "run" / "stdout", self._log_dir, self._playbook,
            self._started,
        )  # fmt: skip
        if watcher.error is not None:
            raise watcher.error
        if watcher.past_gate:
            raise PastGate(
                "ansible-playbook started a task before siteops held the host's lock, and was "
                f"stopped: the callback siteops.hosting.gate did not hold it (see {log_path}). "
                "Reinstall siteops, then run the same command again."
            )
        runner = self._outcome["runner"]
        return RunResult(
            rc=int(runner.rc) if runner.rc is not None else EXIT_ERROR,
            status=str(runner.status),
            stats=watcher.stats,
            log_path=log_path,
            failures=tuple(watcher.failures),
            cancelled=bool(runner.canceled),
            artifacts=watcher.artifacts,
        )

    def abandon(self) -> None:
        """Stop the run if it still goes on (it never got past a shut gate then)."""
        if self._done.is_set():
            return
        self._watcher.cancel.set()
        kill_run(self._watcher.run_id, kill_group=False)
        self._done.wait(_ABANDON_WAIT_SECONDS)


@contextlib.contextmanager
def started_playbook(
    playbook: Path,
    inventory: Path,
    *,
    limit: str | None,
    extravars: dict[str, Any],
    check: bool,
    diff: bool,
    on_progress: Callable[[Progress], None],
    project_dir: Path,
    log_dir: Path,
    config: Path | None = None,
    collections: Path | None = None,
    tasks_total: int | None = None,
    ssh_via: Path | None = None,
    gated: bool = False,
) -> Iterator[StartedRun]:
    """Start ``playbook`` against ``inventory`` now; :meth:`StartedRun.result` waits for it.

    ``limit`` is ``--limit``; ``extravars`` may hold secrets (they go through
    a 0600 file that is deleted with the private directory); ``check`` and
    ``diff`` are Ansible's modes. ``project_dir`` is where roles and
    ``ansible.cfg`` live (the working directory of the run); ``config``,
    ``collections`` and ``ssh_via`` are as in :func:`run_envvars`.
    ``tasks_total``, if known (e.g. from an earlier run), seeds the progress.

    ``gated``: the run waits before its first task (at the start of its first
    play: ``plugins/module_utils/gate.py``) until :meth:`StartedRun.result` is
    called, so that ansible-playbook starts while the command logs in to the
    host and takes its lock. A run still going on when the ``with`` block ends
    (a gated run whose result was never asked for) is killed.
    """
    private = Path(tempfile.mkdtemp(prefix="siteops-run-"))  # mode 0700
    run: StartedRun | None = None
    try:
        extravars_file = private / "extravars.json"
        _write_private(extravars_file, extravars)
        (private / "env").mkdir(mode=0o700)
        # ansible-runner only honours settings read from env/settings.
        _write_private(private / "env" / "settings", {"pexpect_timeout": _CANCEL_POLL_SECONDS})
        gate = private / "gate" if gated else None
        if gate is not None:
            collection_module(GATE).make(str(gate))
        # Every process of the run carries this id (siteops.guard): a cancelled
        # run is ended by killing them all, Mitogen's helpers in sessions of
        # their own included (ansible-runner kills one process group).
        run_id = uuid.uuid4().hex
        cancel = threading.Event()
        watcher = _Watcher(
            Progress(tasks_total=tasks_total), on_progress, cancel, run_id,
            gate_open=threading.Event() if gated else None,
        )  # fmt: skip
        run = StartedRun(playbook, log_dir, private, watcher, gate)
        run.start(
            private_data_dir=str(private),
            ident="run",
            project_dir=str(project_dir.resolve()),
            playbook=str(playbook.resolve()),
            # ansible-playbook under siteops.guard: it goes, with
            # everything it started, when siteops goes (even SIGKILL).
            binary=str(guard_script(private, ANSIBLE_PLAYBOOK)),
            inventory=str(inventory.resolve()),
            limit=limit,
            cmdline=run_cmdline(extravars_file, check=check, diff=diff)
            + " "
            + shlex.quote(str(playbook.resolve())),
            envvars={
                **run_envvars(project_dir.resolve(), config, collections, ssh_via, gate),
                RUN_ID: run_id,
            },
            quiet=True,
            suppress_env_files=True,
            event_handler=watcher.handle,
            cancel_callback=cancel.is_set,
        )
        yield run
    finally:
        if run is not None:
            run.abandon()
        shutil.rmtree(private, ignore_errors=True)
