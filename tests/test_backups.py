"""A site's backups as the host lists them (siteops.hostsession.list_backups)."""

from __future__ import annotations

import json
from pathlib import Path

from siteops.cli import _size
from siteops.hostsession import list_backups


def backup(base: Path, name: str, files: dict[str, int]) -> None:
    (base / name).mkdir(parents=True)
    for file, size in files.items():
        (base / name / file).write_bytes(b"x" * size)


def test_backups_are_listed_newest_first_with_size_contents_and_restore_test(
    tmp_path: Path,
) -> None:
    base = tmp_path / "shop"
    backup(base, "20261126T030000Z", {"db.dump": 100, "files.tar.gz": 50})
    backup(base, "20261127T030000Z", {"db.dump": 120, "files.tar.gz": 60})
    backup(base, "20261127T120000Z-final", {"files.tar.gz": 70})
    backup(base, "20261128T030000Z.partial", {"db.dump": 1})  # unfinished: not a backup
    (base / "final").symlink_to("20261127T120000Z-final")
    (base / "status").mkdir()
    tested = {"result": "ok", "at": "2026-11-27T05:00:00Z", "backup": "20261127T030000Z"}
    (base / "status" / "restore-test.json").write_text(json.dumps(tested))
    (base / "status" / "backup.json").write_text(json.dumps({"result": "ok"}))
    listed = list_backups(str(tmp_path), "shop")
    assert [(b["id"], b["kind"], b["size"], b["holds"], b["restore_tested"])
            for b in listed["backups"]] == [
        ("20261127T120000Z-final", "final", 70, ["shared/"], False),
        ("20261127T030000Z", "daily", 180, ["database", "uploads, .env"], True),
        ("20261126T030000Z", "daily", 150, ["database", "uploads, .env"], False),
    ]  # fmt: skip
    assert listed["last"] == {"result": "ok"} and listed["restore_test"] == tested


def test_a_site_without_backups_lists_none(tmp_path: Path) -> None:
    assert list_backups(str(tmp_path), "shop") == {"backups": [], "last": {}, "restore_test": {}}


def test_sizes_read_as_people_read_them() -> None:
    assert [_size(n) for n in (512, 2048, 5 * 1024**2, 3 * 1024**3)] == [
        "512 B", "2.0 KiB", "5.0 MiB", "3.0 GiB"]  # fmt: skip
