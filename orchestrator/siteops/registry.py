"""A host's ``sites.yml`` as the CLI changes it: under a lock, written atomically.

Every command that changes a host's sites does so inside
``with Registry(path).locked(purpose=...) as reg:``, so two ``siteops`` runs
never interleave their read-change-write cycles. The lock is an exclusive
``flock`` on ``<path>.lock``; the kernel drops it when its holder exits, even
after a crash or ``kill -9``, so a stale lock cannot block anybody. The lock
file names its current holder so that the next run can say who it waits for.

``save`` writes a hidden temporary file next to ``sites.yml``, syncs it and
renames it over the old one: a reader (or Ansible) sees either the old file or
the new one, never a part of either. The lock file (extension ``.lock``) and
the temporary files (hidden) are both names that Ansible's ``host_vars``
loader skips.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from siteops import yamltext
from siteops.errors import SiteModelError, describe
from siteops.inventory import load_host_sites, parse_host_sites

if TYPE_CHECKING:
    from siteops.model import HostSites

HEADER = """\
# Written by siteops: the sites of this host (siteops_sites) and the sites
# removed from it (siteops_archived_sites), in the file format
# siteops_sites_format. Change it with the siteops CLI; siteops rewrites the
# whole file, so comments and hand edits made while it runs are lost.
# `siteops validate` checks it; `siteops schema` describes it.
---
"""
LOCK_SUFFIX = ".lock"
# The lock of a whole inventory (hidden: Ansible skips it in an inventory directory).
INVENTORY_LOCK = ".siteops.lock"
_TEMP_SUFFIX = ".tmp"
_POLL_SECONDS = 0.05


def utc_now() -> str:
    """The current time as an ISO 8601 UTC timestamp to the second (``...Z``)."""
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class LockHolder:
    """Who holds a registry lock, as written into the lock file."""

    pid: int
    user: str
    hostname: str
    purpose: str
    since: str

    @classmethod
    def me(cls, purpose: str) -> LockHolder:
        return cls(os.getpid(), _user(), socket.gethostname(), purpose, utc_now())

    def describe(self) -> str:
        return f"pid {self.pid} ({self.user}@{self.hostname}, {self.purpose!r}) since {self.since}"


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER (containers)
        return f"uid {os.getuid()}"


class RegistryLocked(RuntimeError):  # noqa: N818 (reads as the condition it reports)
    """Another siteops run holds the registry's lock for longer than we may wait."""

    def __init__(self, path: Path, holder: LockHolder | None, waited: float) -> None:
        self.path = path
        self.holder = holder
        who = holder.describe() if holder else "another process (it has not said who yet)"
        super().__init__(
            f"{path} is locked by {who}; gave up after waiting {waited:g}s. Wait for that "
            "run to finish and try again (the lock is released as soon as it exits)."
        )


def _read_holder(lock_path: Path) -> LockHolder | None:
    try:
        data = json.loads(lock_path.read_text(encoding="utf-8"))
        return LockHolder(**data)
    except (OSError, ValueError, TypeError):
        return None


def render(sites: HostSites) -> str:
    """The exact text ``save`` writes for ``sites``: the header, then stable YAML.

    Sites keep their insertion order (nothing is sorted), every field is
    explicit, and the same model always gives the same bytes.
    """
    body = yamltext.dump(
        sites.to_yaml_data(),
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=4096,  # never fold a long command or description over lines
    )
    return HEADER + body


@contextlib.contextmanager
def file_lock(lock_path: Path, subject: Path, *, timeout: float, purpose: str) -> Iterator[None]:
    """Hold the exclusive ``flock`` on ``lock_path`` for the ``with`` block.

    Waits up to ``timeout`` seconds, then raises :class:`RegistryLocked`
    naming ``subject`` (what the lock guards) and the holder; while held, the
    lock file names this process and its ``purpose``.
    """
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        _acquire(fd, lock_path, subject, timeout)
        holder = json.dumps(asdict(LockHolder.me(purpose))) + "\n"
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder.encode("utf-8"), 0)
    except BaseException:
        os.close(fd)
        raise
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # nobody holds it any more
        os.close(fd)  # closing the last descriptor releases the flock


def _acquire(fd: int, lock_path: Path, subject: Path, timeout: float) -> None:
    started = time.monotonic()
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            waited = time.monotonic() - started
            if waited >= timeout:
                raise RegistryLocked(subject, _read_holder(lock_path), round(waited, 1)) from None
            time.sleep(min(_POLL_SECONDS, max(timeout - waited, 0)))


def inventory_locked(
    inventory: Path, *, timeout: float, purpose: str
) -> contextlib.AbstractContextManager[None]:
    """The lock of a whole inventory (``<inventory>/.siteops.lock``), see :func:`file_lock`.

    Held briefly, while what spans the inventory's hosts is checked and
    written: ``hosts.yml``, and a new site's domains (unique across hosts).
    Taken after a host's registry lock, never before it.
    """
    return file_lock(inventory / INVENTORY_LOCK, inventory, timeout=timeout, purpose=purpose)


class Registry:
    """The ``sites.yml`` of one host (see :func:`siteops.inventory.sites_path`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock_path = path.with_name(path.name + LOCK_SUFFIX)
        self._held = False

    @property
    def is_locked(self) -> bool:
        """Whether this object holds the lock right now."""
        return self._held

    @contextlib.contextmanager
    def locked(self, timeout: float = 30, purpose: str = "siteops") -> Iterator[Registry]:
        """Hold the registry's exclusive lock for the ``with`` block.

        Waits up to ``timeout`` seconds for another holder to finish, then
        raises :class:`RegistryLocked` naming that holder. While held, the
        lock file says who holds it and why (``purpose``, e.g. "add-site shop").
        """
        if self._held:
            raise RuntimeError(f"{self.path}: this Registry already holds its lock")
        with file_lock(self.lock_path, self.path, timeout=timeout, purpose=purpose):
            self._held = True
            try:
                self._remove_stale_temp_files()
                yield self
            finally:
                self._held = False

    def _remove_stale_temp_files(self) -> None:
        # Only a writer holding the lock creates them, so any left now are
        # from a run that died between writing and renaming.
        for stale in self.path.parent.glob(f".{self.path.name}.*{_TEMP_SUFFIX}"):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()

    def load(self) -> HostSites:
        """The validated sites of the file (an empty registry when it does not exist)."""
        return load_host_sites(self.path)

    def save(self, sites: HostSites, on_host: Callable[[str], object] | None = None) -> None:
        """Replace the file with ``sites`` atomically; only while holding the lock.

        The data is validated again first (a model changed in place skips
        validation). The file is always written in the current format
        (``siteops_sites_format``), whichever format it was read in. On any
        error the old file is left as it was. ``on_host`` is given the text
        first (the host records it before the file changes here, so a crash
        between the two leaves this file one the host knows, only older).
        """
        if not self._held:
            raise RuntimeError(
                f"{self.path}: save() needs the lock; use `with Registry(path).locked(...)`"
            )
        # Imported here, as in siteops.inventory: only what reads or saves sites needs them.
        from pydantic import ValidationError

        from siteops.model import HostSites

        try:
            checked = HostSites.model_validate(sites.to_yaml_data())
        except ValidationError as exc:
            raise SiteModelError(str(self.path), describe(exc)) from None
        text = render(checked)
        if on_host is not None:
            on_host(text)
        write_atomically(self.path, text)

    def text(self) -> str | None:
        """The file's text as it is (None when there is no file)."""
        try:
            return self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def replace_text(self, text: str) -> HostSites:
        """Replace the file with ``text`` as it is (a host's copy) once it loads; the sites."""
        if not self._held:
            raise RuntimeError(f"{self.path}: replace_text() needs the lock")
        try:
            sites = parse_host_sites(yamltext.load(text), str(self.path))
        except yaml.YAMLError as exc:
            raise SiteModelError(str(self.path), [f"the host's copy is not YAML: {exc}"]) from None
        write_atomically(self.path, text)
        return sites


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``: a hidden temporary file, synced, renamed over it.

    Readers see the old file or the new one, never a part; the file's mode is
    kept. The temporary file is ``.<name>.*.tmp`` (see ``_remove_stale_temp_files``).
    """
    prefix = f".{path.name}."
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=_TEMP_SUFFIX)
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        temp.replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    _sync_directory(path.parent)


def _sync_directory(directory: Path) -> None:
    """Make the rename itself durable (the directory entry), not only the data."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def holder_of(path: Path) -> LockHolder | None:
    """Who holds the lock of the registry at ``path`` right now, if anybody says so."""
    lock_path = path.with_name(path.name + LOCK_SUFFIX)
    if not lock_path.exists():
        return None
    fd = os.open(lock_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(lock_path)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
