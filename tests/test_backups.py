"""A site's backups as the host lists them (siteops.hostsession.list_backups)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from types import ModuleType

import jinja2
import pytest

from siteops.cli import _size
from siteops.hostsession import OFFSITE, backup_kept, fetch_offsite, list_backups, offsite
from siteops.layout import layout
from tests.conftest import REPO


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


def offsite_script(tmp_path: Path) -> ModuleType:
    """roles/site_backup's siteops-offsite, rendered as the role renders it, as a module."""
    source = (REPO / "roles/site_backup/templates/usr/local/sbin/siteops-offsite.j2").read_text()
    text = jinja2.Template(source).render(
        ansible_managed="test", __site_backup_offsite_dir=str(tmp_path / "offsite"),
        site_layout_site_name_pattern=layout().site_name_pattern)  # fmt: skip
    module = ModuleType("siteops_offsite")
    exec(compile(text, "siteops-offsite", "exec"), module.__dict__)  # noqa: S102
    return module


def test_offsite_refuses_a_wrong_site_name_or_command_before_reading_its_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = offsite_script(tmp_path)
    assert script.main(["store", "../etc", "x"]) == 2
    assert "'../etc' is not a site name" in capsys.readouterr().err
    assert script.main(["delete", "shop"]) == 2
    assert "usage: siteops-offsite" in capsys.readouterr().err


def test_offsite_says_it_is_off_without_its_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as off:
        offsite_script(tmp_path).main(["list", "shop"])
    assert off.value.code == 3
    assert "offsite copies are off on this host" in capsys.readouterr().err


def test_offsite_failures_are_restic_s_fatal_line_made_safe_for_a_json_record(
    tmp_path: Path,
) -> None:
    words = offsite_script(tmp_path).last_words
    said = 'repository is already locked\nFatal: wrong password or no key found\nexit "1"\n'
    assert words(said) == "Fatal: wrong password or no key found"
    assert words('ssh: connect to host 10.0.0.9 port 22: "No route"\\\n') == (
        "ssh: connect to host 10.0.0.9 port 22: 'No route'/"
    )
    assert words("") == ""
    # restic 0.18 with --json says its fatal error as JSON; ssh's own reason comes first.
    unreachable = (
        "subprocess ssh: Warning: Permanently added '10.0.0.9' (ED25519) to the list\n"
        "subprocess ssh: ssh: connect to host 10.0.0.9 port 22: Connection refused\n"
        '{"message_type":"exit_error","code":1,"message":"Fatal: unable to open repository"}\n'
    )
    assert words(unreachable) == "ssh: connect to host 10.0.0.9 port 22: Connection refused"
    assert words('{"message_type":"exit_error","code":1,"message":"Fatal: wrong password"}') == (
        "Fatal: wrong password"
    )


def test_a_failed_copy_gives_ssh_s_reason_even_when_restic_drops_ssh_s_own_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # restic 0.14 may fail with "unable to start the sftp session, error: EOF" before it
    # passes on what its ssh said: this restic runs the real ssh and drops its stderr.
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "restic").write_text(
        "#!/bin/sh\n"
        'eval "${2#sftp.command=}" </dev/null 2>/dev/null\n'
        "echo 'Fatal: unable to open repository: unable to start the sftp session, "
        "error: EOF' >&2\n"
        "exit 1\n"
    )
    (tmp_path / "bin" / "restic").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    script = offsite_script(tmp_path)
    monkeypatch.setattr(script, "PASSWORD", tmp_path / "password")
    ssh = ["ssh", "-i", str(tmp_path / "id_ed25519"), "-o", "BatchMode=yes",
           "-o", "ConnectTimeout=5", "-p", "2", "siteops@127.0.0.1", "-s", "sftp"]  # fmt: skip
    conf = {"repository": "sftp:siteops@127.0.0.1:siteops/h1", "ssh": ssh}
    with pytest.raises(script.Failed) as failed:
        script.restic(conf, "snapshots")
    assert str(failed.value) == "ssh: connect to host 127.0.0.1 port 2: Connection refused"


def test_offsite_copies_forget_every_time_and_prune_every_prune_days(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A restic that notes each command; "prune" fails while tmp/prune-fails exists.
    calls = tmp_path / "calls"
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "restic").write_text(
        "#!/bin/sh\n"
        "shift 2\n"  # -o sftp.command=...
        f'echo "$*" >> {calls}\n'
        'case "$1" in\n'
        '  backup) echo \'{"message_type":"summary","snapshot_id":"0123456789abcdef"}\' ;;\n'
        f'  prune) if [ -e {tmp_path}/prune-fails ]; then echo "Fatal: repository is locked" >&2;'
        " exit 1; fi ;;\n"
        "esac\n"
    )
    (tmp_path / "bin" / "restic").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    script = offsite_script(tmp_path)
    monkeypatch.setattr(script, "PRUNED", tmp_path / "cache" / "offsite-pruned")
    (tmp_path / "backups" / "shop" / "20261128T030000Z").mkdir(parents=True)
    conf = {"repository": "sftp:h:r", "ssh": ["ssh"], "backups": str(tmp_path / "backups"),
            "keep_days": 0, "keep_count": 2, "prune_days": 7}  # fmt: skip

    def commands() -> list[str]:
        done = calls.read_text().splitlines()
        calls.unlink()
        assert not any("--prune" in line for line in done)  # forget alone
        return [line.split()[0] for line in done if line.split()[0] in ("forget", "prune")]

    def store() -> str:
        return str(script.store(conf, "shop", "20261128T030000Z", "daily"))

    # The first copy prunes (never pruned before); the next ones within 7 days do not.
    assert store() == "01234567"
    assert commands() == ["forget", "prune"]
    store()
    assert commands() == ["forget"]
    # Seven days later, the next copy prunes again.
    week_ago = time.time() - 7 * 86400 - 60
    os.utime(script.PRUNED, (week_ago, week_ago))
    (tmp_path / "prune-fails").touch()
    store()
    assert commands() == ["forget", "prune"]
    # A failed prune keeps the copy, says why, and leaves the prune to the next copy.
    assert "prune failed, the next copy tries again: Fatal: repository is locked" in (
        capsys.readouterr().err
    )
    (tmp_path / "prune-fails").unlink()
    store()
    assert commands() == ["forget", "prune"]
    store()
    assert commands() == ["forget"]


def test_a_backup_whose_offsite_copy_failed_counts_as_kept_while_its_directory_is_there(
    tmp_path: Path,
) -> None:
    last = {"result": "failed", "backup": "20261128T030000Z", "message": "its offsite copy failed"}
    assert not backup_kept(str(tmp_path), "shop", last)
    (tmp_path / "shop" / "20261128T030000Z").mkdir(parents=True)
    assert backup_kept(str(tmp_path), "shop", last)
    assert not backup_kept(str(tmp_path), "shop", {"result": "failed", "message": "pg_dump"})


def test_without_siteops_offsite_on_the_host_offsite_copies_are_off() -> None:
    assert not Path(OFFSITE).exists()  # this machine is not a converged host
    assert offsite({"site": "shop"}) == {
        "off": True,
        "error": "this host has no siteops-offsite yet (converge it)",
    }
    assert fetch_offsite("shop", None)["off"] is True
