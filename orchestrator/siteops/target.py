"""One host of one inventory, and how siteops starts a playbook run against it.

Kept apart from :mod:`siteops.operations` and light to import (no pydantic, no
Jinja): ``siteops apply`` starts its run before it imports what reads and
changes the registry, so that ansible-playbook's own start (0.6-0.7 s) begins
~0.1 s sooner and overlaps with those imports as well as with the login and
the host's lock.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from siteops.errors import SiteModelError
from siteops.hostrelease import facts_of
from siteops.inventory import HOSTS_FILE, sites_path
from siteops.remote import host_vars
from siteops.resources import collections_path
from siteops.runner import Progress, RunResult, StartedRun, started_playbook
from siteops.sshmaster import reserved, socket_of

SITE_PLAYBOOK = "site.yml"
ALL_PLAYBOOK = "all.yml"
DEFAULT_LOCK_TIMEOUT = 600.0

# Progress of a run, or a note to print on a line of its own (waiting for a lock).
OnProgress = Callable[[Progress | str], None]


def default_log_dir() -> Path:
    """Where the logs of playbook runs are kept (``$XDG_STATE_HOME/siteops/logs``)."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "siteops" / "logs"


@dataclass(frozen=True)
class Target:
    """One host of one inventory, and where siteops finds its playbooks and keeps its logs."""

    inventory: Path
    host: str
    project: Path  # the collection: playbooks/, roles/, plugins/ (siteops.resources)
    log_dir: Path
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    # The ansible.cfg of the user's project folder; none: the checkout's, if any.
    config: Path | None = None
    # The command line as given (for the host's audit log, secrets masked there).
    argv: tuple[str, ...] = ()

    def variables(self) -> dict[str, Any]:
        """The host's variables as the inventory defines them (read once per hosts.yml)."""
        stamp = self.hosts_file.stat().st_mtime_ns if self.hosts_file.exists() else 0
        return dict(_host_vars(self.hosts_file, self.host, stamp))

    @property
    def hosts_file(self) -> Path:
        return self.inventory / HOSTS_FILE

    @property
    def sites_file(self) -> Path:
        return sites_path(self.inventory, self.host)

    @property
    def registry_file(self) -> Path:
        """The markdown registry of the host (``<inventory>/registry/<host>.md``)."""
        return self.inventory / "registry" / f"{self.host}.md"

    def check_inventory(self) -> None:
        """Fail early, naming the file, when the inventory cannot be used."""
        if not self.hosts_file.is_file():
            raise SiteModelError(
                str(self.hosts_file),
                [
                    "inventory: no hosts.yml here; give --inventory the directory holding "
                    "hosts.yml and host_vars/ (or run `siteops sandbox up` for a local host)"
                ],
            )

    def _start(
        self,
        playbook: str,
        extravars: Mapping[str, Any],
        *,
        check: bool,
        on_progress: OnProgress,
        ssh_via: Path | None,
        gated: bool,
    ) -> contextlib.AbstractContextManager[StartedRun]:
        return started_playbook(
            self.project / "playbooks" / playbook,
            self.hosts_file,
            limit=self.host,
            extravars=dict(extravars),
            check=check,
            diff=check,
            on_progress=on_progress,
            project_dir=self.project,
            log_dir=self.log_dir,
            config=self.config,
            collections=collections_path(self.project),
            ssh_via=ssh_via,
            gated=gated,
        )

    def run(
        self,
        playbook: str,
        extravars: Mapping[str, Any],
        *,
        check: bool,
        on_progress: OnProgress,
        cancel: threading.Event | None = None,
    ) -> RunResult:
        """Run one of the project's playbooks against this host only (``cancel`` stops it).

        While the command holds the host's lock, the run is given the host's
        release facts its session read (:mod:`siteops.hostrelease`), and goes
        through the SSH connection of that session.
        """
        with self._start(
            playbook, {**facts_of(self.host), **extravars}, check=check,
            on_progress=on_progress, ssh_via=socket_of(self.host), gated=False,
        ) as run:  # fmt: skip
            return run.result(cancel)

    @contextlib.contextmanager
    def started(
        self, playbook: str, extravars: Mapping[str, Any], *, on_progress: OnProgress
    ) -> Iterator[StartedRun]:
        """Start a run of one of the project's playbooks now, held before its first task.

        For a command whose run needs nothing its host session brings: the
        run starts while the command logs in and takes the host's lock (in the
        ``with`` block, through the SSH connection named here ahead), and goes
        past its first play's start only at :meth:`StartedRun.result`. A run
        whose result was not asked for is stopped when the block ends. The
        run reads the host's release facts itself (the session has not read
        them yet when it starts).
        """
        with (
            reserved(self.variables(), self.host) as socket,
            self._start(
                playbook,
                extravars,
                check=False,
                on_progress=on_progress,
                ssh_via=socket,
                gated=True,
            ) as run,
        ):
            yield run

    @contextlib.contextmanager
    def apply_run(
        self, names: list[str], *, dry_run: bool, on_progress: OnProgress
    ) -> Iterator[StartedRun | None]:
        """``siteops apply``'s run, started first (none for a dry run); see :meth:`started`.

        Started before :mod:`siteops.operations` (pydantic, the registry, the
        host session) is imported: ansible-playbook's start overlaps with
        those imports too. :func:`siteops.operations.apply` then reads the
        registry and asks for the run's result under both locks; a run it
        never asks for (an unknown site, a lock that is not had) is stopped
        at its gate, having run no task.
        """
        self.check_inventory()
        if dry_run:
            yield None
            return
        with self.started(*apply_playbook(names), on_progress=on_progress) as run:
            yield run


def apply_playbook(names: list[str]) -> tuple[str, dict[str, Any]]:
    """The playbook and extra variables that converge the named sites (none: all)."""
    return (SITE_PLAYBOOK, {"siteops_only": names}) if names else (ALL_PLAYBOOK, {})


@functools.lru_cache(maxsize=8)
def _host_vars(hosts_file: Path, host: str, stamp: int) -> Mapping[str, Any]:
    del stamp  # part of the cache key only: a changed hosts.yml is read again
    return host_vars(hosts_file, host)
