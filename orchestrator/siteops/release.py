"""Pack a release on the controller: a directory or a git repository becomes one archive.

``siteops deploy NAME --source PATH|GIT_URL [--ref REF]``: a directory is
packed as it is (without ``.git``, ``node_modules`` and ``.venv``, which the
host builds itself); a git URL (or a local repository with ``--ref``) is
cloned here first, so the host needs no access to the repository. The release
id is the UTC time plus the short commit when there is one.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

SKIPPED = frozenset({".git", "node_modules", ".venv", "__pycache__"})
_GIT_URL = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|[^/\s]+@[^/\s]+:)|\.git/?$")


class SourceError(ValueError):
    """The source of a release cannot be packed; the message says why."""


@dataclass(frozen=True)
class Packed:
    """A release archive ready to upload, and what the release log records about it."""

    archive: Path
    release_id: str
    source: str
    ref: str


def release_id(moment: datetime, short_ref: str = "") -> str:
    """``20261123T120000Z`` or ``20261123T120000Z-abc1234``."""
    stamp = moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    safe = re.sub(r"[^A-Za-z0-9._-]", "-", short_ref)[:40]
    return f"{stamp}-{safe}" if safe else stamp


def _is_git(source: str) -> bool:
    return bool(_GIT_URL.search(source))


def _git(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SourceError(f"git {args[0]} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def _pack(directory: Path, archive: Path) -> None:
    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        if set(Path(info.name).parts) & SKIPPED:
            return None
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        return info

    with tarfile.open(archive, "w:gz") as tar:
        for entry in sorted(directory.iterdir()):
            tar.add(entry, arcname=entry.name, filter=keep)


@contextlib.contextmanager
def packed(source: str, ref: str | None, now: datetime | None = None) -> Iterator[Packed]:
    """Pack ``source`` into a temporary archive, removed when the block ends."""
    if not source.strip():
        raise SourceError("source: empty; give a directory or a git URL")
    moment = now or datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="siteops-release-") as scratch:
        work = Path(scratch)
        archive = work / "release.tar.gz"
        local = Path(source).expanduser()
        if local.is_dir() and not ref:
            if not any(local.iterdir()):
                raise SourceError(f"source: {local} is empty")
            _pack(local, archive)
            short = ""
            if (local / ".git").exists():
                with contextlib.suppress(SourceError):
                    short = _git("rev-parse", "--short", "HEAD", cwd=local)
            yield Packed(archive, release_id(moment, short), str(local.resolve()), short)
            return
        if not (_is_git(source) or (local / ".git").exists()):
            raise SourceError(
                f"source: {source!r} is neither a directory nor a git URL "
                "(https://…, ssh://…, git@host:path or …/repo.git)"
            )
        checkout = work / "checkout"
        _git("clone", "--quiet", source, str(checkout))
        if ref:
            _git("checkout", "--quiet", ref, cwd=checkout)
        short = _git("rev-parse", "--short", "HEAD", cwd=checkout)
        _pack(checkout, archive)
        yield Packed(archive, release_id(moment, short), source, ref or short)
