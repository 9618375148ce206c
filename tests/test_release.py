"""Packing a release on the controller: ids, what goes into the archive, bad sources."""

from __future__ import annotations

import subprocess
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from siteops.release import SourceError, packed, release_id

MOMENT = datetime(2026, 11, 23, 12, 0, 5, tzinfo=UTC)


def test_a_release_id_is_the_utc_time_and_the_short_ref() -> None:
    assert release_id(MOMENT) == "20261123T120005Z"
    assert release_id(MOMENT, "abc1234") == "20261123T120005Z-abc1234"
    assert release_id(MOMENT, "feature/x y") == "20261123T120005Z-feature-x-y"


def test_a_directory_is_packed_without_what_the_host_builds(tmp_path: Path) -> None:
    source = tmp_path / "app"
    for name in ["server.js", "public/index.html", "node_modules/x/index.js", ".venv/bin/py"]:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text("x", encoding="utf-8")
    with packed(str(source), None, MOMENT) as release:
        with tarfile.open(release.archive) as tar:
            names = sorted(tar.getnames())
            owners = {(m.uid, m.uname) for m in tar.getmembers()}
        archive = release.archive
    assert names == ["public", "public/index.html", "server.js"]
    assert owners == {(0, "root")}
    assert release.release_id == "20261123T120005Z"
    assert release.source == str(source.resolve())
    assert not archive.exists()  # removed when the block ends


def test_a_git_repository_is_cloned_at_the_ref(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip

    git("init", "-q")
    (repo / "index.html").write_text("v1", encoding="utf-8")
    git("add", ".")
    git("commit", "-qm", "v1")
    first = git("rev-parse", "--short", "HEAD")
    (repo / "index.html").write_text("v2", encoding="utf-8")
    git("commit", "-qam", "v2")
    with packed(str(repo), first, MOMENT) as release, tarfile.open(release.archive) as tar:
        member = tar.extractfile("index.html")
        assert member is not None and member.read() == b"v1"
        assert ".git" not in tar.getnames()
    assert release.release_id == f"20261123T120005Z-{first}"


@pytest.mark.parametrize(
    ("source", "problem"),
    [("/nonexistent/dir", "neither a directory nor a git URL"), ("", "empty")],
)
def test_a_source_that_is_neither_is_refused(source: str, problem: str) -> None:
    with pytest.raises(SourceError, match=problem), packed(source, None):
        pass


def test_an_empty_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="is empty"), packed(str(tmp_path), None):
        pass
