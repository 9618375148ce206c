"""End to end: offsite copies of each site's backups, restic over SFTP to another test host.

Two baked sandboxes of one inventory (backups, not installation; the role installs restic
itself): ``h1`` on Debian 12 (restic 0.14) and ``h2`` on Debian 13 (restic 0.18), each
the other's SFTP target: each keeps its repository in the account ``siteops`` of the
other, with the other's SSH host key pinned. On each, a site with rows and an upload is
backed up, its local backups are deleted, and it is restored from offsite. Then, on h1:
the restore test checks the newest offsite snapshot; a wrong password and a target that
cannot be reached each fail the backup unit with a clear message while the local
backup stays; turned off, the offsite settings and password leave the host. Last, a site
with a database, uploads, a cache and a deployed app moves from h1 to h2. The tests build on
each other in file order.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from siteops.inventory import load_host_sites
from tests.e2e.conftest import Host, sandbox_host

SITE = "keep"
BACKUPS = f"/var/backups/siteops/{SITE}"
UPLOADS = f"/srv/sites/{SITE}/shared/uploads"
PASSWORDS = {"h1": "offsite-secret-of-h1-7f3a", "h2": "offsite-secret-of-h2-91c4"}
WRONG = "not-the-repository-password"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("offsite")


@pytest.fixture(scope="module")
def h1(root: Path) -> Iterator[Host]:
    yield from sandbox_host(root, "siteops-e2e-os1", 2342, 8200, 8563, "--baked", "--debian",
                            "12", host="h1")  # fmt: skip


@pytest.fixture(scope="module")
def h2(root: Path, h1: Host) -> Iterator[Host]:  # after h1: a second host of its inventory
    yield from sandbox_host(root, "siteops-e2e-os2", 2352, 8210, 8573, "--baked", host="h2")


def on_host(host: Host, command: str) -> str:
    done = host.ssh(command)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def psql(host: Host, sql: str) -> str:
    return on_host(host, f'sudo -n runuser -u postgres -- psql -X -d {SITE} -tA -c "{sql}"')


def set_host_vars(host: Host, **changes: object) -> None:
    """Change ``host``'s variables in the inventory's hosts.yml (None: remove one)."""
    hosts_file = host.inventory / "hosts.yml"
    data = yaml.safe_load(hosts_file.read_text(encoding="utf-8"))
    mine = data["all"]["hosts"][host.host]
    for key, value in changes.items():
        if value is None:
            mine.pop(key, None)
        else:
            mine[key] = value
    hosts_file.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def local_ids(host: Host) -> list[str]:
    listed = json.loads(host.siteops("backups", SITE, "--json").stdout)["backups"]
    return [b["id"] for b in listed]


def offsite_list(host: Host) -> list[dict[str, str]]:
    return list(json.loads(host.siteops("backups", SITE, "--offsite", "--json").stdout)["offsite"])


@pytest.fixture(scope="module")
def pair(h1: Host, h2: Host) -> tuple[Host, Host]:
    """Each host's site, and offsite copies turned on into the other host's ``siteops`` account."""
    for host in (h1, h2):
        refused = host.siteops("offsite-key", check=False)
        assert refused.returncode == 2 and "offsite copies are off on host" in refused.stderr
        host.siteops("add-site", SITE, "--domain", f"{SITE}.{host.host}.test", "--runtime",
                     "python")  # fmt: skip
    for host, target in ((h1, h2), (h2, h1)):
        address = on_host(target, "hostname -I").split()[0]
        host_key = " ".join(on_host(target, "cat /etc/ssh/ssh_host_ed25519_key.pub").split()[:2])
        set_host_vars(host, site_backup_offsite_host=address,
                      site_backup_offsite_password=PASSWORDS[host.host],
                      site_backup_offsite_host_key=host_key)  # fmt: skip
        host.siteops("apply")
    for host, target in ((h1, h2), (h2, h1)):
        key = host.siteops("offsite-key").stdout.strip()
        assert key.startswith("ssh-ed25519 ") and key.endswith(f"siteops-offsite@{host.host}")
        on_host(target, "sudo -n sh -c 'id siteops >/dev/null 2>&1 || useradd -m -s /bin/bash "
                "siteops; install -d -m 700 -o siteops -g siteops ~siteops/.ssh'")  # fmt: skip
        on_host(target, f"echo '{key}' | sudo -n tee -a ~siteops/.ssh/authorized_keys")
    return h1, h2


def test_turning_offsite_on_installs_restic_and_keeps_the_password_for_root_only(
    pair: tuple[Host, Host],
) -> None:
    for host in pair:
        assert on_host(host, "restic version").startswith("restic ")
        assert on_host(host, "sudo -n stat -c '%U %a' /etc/siteops/offsite/password") == "root 600"
        assert host.ssh("cat /etc/siteops/offsite/password").returncode != 0  # not for deploy
        # Nothing changes on the next run.
        assert re.search(r": \d+ ok, 0 changed", host.siteops("apply").stdout)


def test_a_backup_is_also_stored_offsite_and_listed_there(pair: tuple[Host, Host]) -> None:
    for host in pair:
        psql(host, "CREATE TABLE notes (n int); INSERT INTO notes VALUES (1), (2), (3)")
        on_host(host, f"sudo -n runuser -u {SITE} -- sh -c 'echo kept > {UPLOADS}/a.txt'")
        done = host.siteops("backup", SITE).stdout
        taken = re.search(rf"{SITE}: backup (\S+) taken \(.*offsite snapshot (\w+)\)", done)
        assert taken, done
        assert taken[1] in local_ids(host)
        newest = offsite_list(host)[0]
        assert (newest["snapshot"], newest["backup"], newest["kind"]) == (
            taken[2],
            taken[1],
            "daily",
        )
        text = host.siteops("backups", SITE, "--offsite").stdout
        assert taken[2] in text and taken[1] in text


def test_restore_from_offsite_brings_rows_and_uploads_back_without_local_backups(
    pair: tuple[Host, Host],
) -> None:
    for host in pair:
        snapshot = offsite_list(host)[0]
        psql(host, "DELETE FROM notes")
        on_host(host, f"sudo -n sh -c 'rm {UPLOADS}/a.txt; rm -rf {BACKUPS}/2*'")
        assert local_ids(host) == []
        done = host.siteops("restore", SITE, "--from-offsite", "--yes")
        assert f"{SITE}: restored from {snapshot['backup']}; nginx answers 200" in done.stdout
        assert f"fetching offsite snapshot {snapshot['snapshot']}" in done.stderr
        assert psql(host, "SELECT count(*) FROM notes") == "3"
        assert on_host(host, f"sudo -n cat {UPLOADS}/a.txt") == "kept"
        # The fetched backup is a local one again, beside the backup of the state before.
        assert snapshot["backup"] in local_ids(host) and len(local_ids(host)) == 2
    # A snapshot that does not exist is refused before anything changes.
    gone = pair[0].siteops("restore", SITE, "--from-offsite", "--snapshot", "deadbeef", "--yes",
                           check=False)  # fmt: skip
    assert gone.returncode == 2 and "has no offsite snapshot 'deadbeef'" in gone.stderr


def test_the_restore_test_also_checks_the_newest_offsite_snapshot(pair: tuple[Host, Host]) -> None:
    h1 = pair[0]
    newest = offsite_list(h1)[0]
    on_host(h1, f"sudo -n systemctl start siteops-restore-test@{SITE}.service")
    tested = json.loads(on_host(h1, f"sudo -n cat {BACKUPS}/status/restore-test.json"))
    assert tested["result"] == "ok"
    assert f"offsite snapshot {newest['snapshot']} ({newest['backup']}): database dump and " \
           "files read back" in tested["message"]  # fmt: skip


def failed_backup(host: Host) -> str:
    """A backup that fails offsite: its message; the local backup it names is there."""
    done = host.siteops("backup", SITE, check=False)
    assert done.returncode == 1, done.stdout
    kept = re.search(
        r"the local backup (\S+) \([\d.]+ [KMG]?i?B\) is kept; its offsite copy failed: ",
        done.stderr,
    )
    assert kept, done.stderr
    assert kept[1] in local_ids(host)
    assert on_host(host, f"systemctl is-failed siteops-backup@{SITE}.service || true") == "failed"
    status = host.siteops("status", SITE).stdout
    assert "last backup: failed" in status and f"{kept[1]}" in status
    return done.stderr


def test_a_wrong_password_fails_the_backup_unit_and_keeps_the_local_backup(
    pair: tuple[Host, Host],
) -> None:
    h1 = pair[0]
    set_host_vars(h1, site_backup_offsite_password=WRONG)
    try:
        h1.siteops("apply")
        said = failed_backup(h1)
        assert "wrong password" in said
    finally:
        set_host_vars(h1, site_backup_offsite_password=PASSWORDS["h1"])
        h1.siteops("apply")


def test_a_target_that_cannot_be_reached_fails_the_backup_with_ssh_s_reason(
    pair: tuple[Host, Host],
) -> None:
    h1 = pair[0]
    set_host_vars(h1, site_backup_offsite_port=2)  # h2's firewall drops it: nothing listens
    try:
        h1.siteops("apply")
        said = failed_backup(h1)
        assert re.search(r"ssh: connect to host \S+ port 2: Connection (timed out|refused)", said)
    finally:
        set_host_vars(h1, site_backup_offsite_port=None)
        h1.siteops("apply")
    # Back to the right settings, the next backup is stored offsite again.
    assert "offsite snapshot" in h1.siteops("backup", SITE).stdout


def test_the_offsite_password_is_never_printed_or_logged(
    pair: tuple[Host, Host], root: Path
) -> None:
    secrets = [*PASSWORDS.values(), WRONG]
    leaked = [str(p) for p in root.rglob("*") if p.is_file() and p.name != "hosts.yml"
              and any(s.encode() in p.read_bytes() for s in secrets)]  # fmt: skip
    assert leaked == []
    for host in pair:
        logs = on_host(host, "sudo -n journalctl --no-pager -q -u 'siteops-*' | tail -n 500")
        assert not any(s in logs for s in secrets)


def test_offsite_copies_of_daily_backups_are_forgotten_beyond_their_retention(
    pair: tuple[Host, Host],
) -> None:
    h2 = pair[1]
    set_host_vars(h2, site_backup_offsite_keep_days=0, site_backup_offsite_keep_count=2)
    h2.siteops("apply")
    taken = [re.findall(r"offsite snapshot (\w+)", h2.siteops("backup", SITE).stdout)[0]
             for _ in range(3)]  # fmt: skip
    assert [s["snapshot"] for s in offsite_list(h2)] == taken[:0:-1]  # the two newest


def test_turned_off_the_offsite_settings_and_password_leave_the_host(
    pair: tuple[Host, Host],
) -> None:
    h2 = pair[1]
    set_host_vars(h2, site_backup_offsite_host=None, site_backup_offsite_password=None,
                  site_backup_offsite_host_key=None, site_backup_offsite_keep_days=None,
                  site_backup_offsite_keep_count=None)  # fmt: skip
    h2.siteops("apply")
    assert on_host(h2, "sudo -n ls /etc/siteops/offsite").split() == ["id_ed25519",
                                                                     "id_ed25519.pub"]  # fmt: skip
    done = h2.siteops("backup", SITE).stdout
    assert "taken" in done and "offsite" not in done
    off = h2.siteops("backups", SITE, "--offsite", check=False)
    assert off.returncode == 2 and "offsite copies are off on host 'h2'" in off.stderr


MOVER_APP = """\
import http.server
import os


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"moved-app {os.environ['SITE_NAME']} {os.environ['PORT']}\\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""


def test_move_site_takes_a_site_with_its_data_app_and_cache_to_the_other_host(
    pair: tuple[Host, Host], tmp_path: Path
) -> None:
    h1, h2 = pair
    h1.siteops("add-site", "mover", "--domain", "mover.test", "--runtime", "python", "--cache")
    (tmp_path / "app.py").write_text(MOVER_APP, encoding="utf-8")
    h1.siteops("deploy", "mover", "--source", str(tmp_path))
    assert h1.get("mover.test")[1].startswith("moved-app mover ")
    on_host(h1, "sudo -n runuser -u postgres -- psql -X -d mover -c "
                "'CREATE TABLE notes (n int); INSERT INTO notes VALUES (1), (2)'")  # fmt: skip
    on_host(
        h1, "sudo -n runuser -u mover -- sh -c 'echo moved > /srv/sites/mover/shared/uploads/m.txt'"
    )

    done = h1.siteops("move-site", "mover", "--to", "h2").stdout
    moved = (r"mover: moved from h1 to h2 \(port block \d+, release \S+; nginx there answers "
             r"200\); its final backup stays on h1 at /\S+-final")  # fmt: skip
    assert re.search(moved, done)
    # The sandbox's inventory reaches h2 through a published port on 127.0.0.1.
    assert "DNS: point mover.test at 127.0.0.1 (h2)" in done
    # On h2: the app answers through nginx, with its rows, uploads and cache user.
    code, body = h2.get("mover.test")
    assert code == 200 and body.startswith("moved-app mover ")
    assert on_host(h2, "sudo -n runuser -u postgres -- psql -X -d mover -tA -c "
                       "'SELECT count(*) FROM notes'") == "2"  # fmt: skip
    assert on_host(h2, "sudo -n cat /srv/sites/mover/shared/uploads/m.txt") == "moved"
    assert "REDIS_URL=" in on_host(h2, "sudo -n cat /srv/sites/mover/shared/.env")
    # On h1: no unit, config, user or database of it; its final backup stays.
    assert h1.ssh("systemctl cat mover-frontend.service").returncode != 0
    assert h1.ssh("test -e /etc/nginx/sites-available/mover.conf").returncode != 0
    assert h1.ssh("id mover").returncode != 0
    databases = on_host(h1, "sudo -n runuser -u postgres -- psql -X -tA -c "
                            "'SELECT datname FROM pg_database'").split()  # fmt: skip
    assert "mover" not in databases
    final = re.findall(r"final backup stays on h1 at (/\S+)", done)[0]
    assert "db.dump" in on_host(h1, f"sudo -n ls {final}").split()
    code, body = h1.get("mover.test")
    assert "moved-app" not in body
    # Both registries are valid: h1 keeps it archived, h2 has it active.
    assert "mover" in load_host_sites(h1.sites_file).archived
    assert load_host_sites(h2.sites_file).sites["mover"].status == "active"
    # The keep sites of both hosts never noticed.
    for host in pair:
        assert host.get(f"{SITE}.{host.host}.test")[0] == 200
    # A move onto a name the other host uses is refused before anything is taken.
    before = h2.sites_file.read_bytes(), h1.sites_file.read_bytes()
    refused = h2.siteops("move-site", SITE, "--to", "h1", check=False)
    assert refused.returncode == 2 and "the destination already has a site 'keep'" in refused.stderr
    assert (h2.sites_file.read_bytes(), h1.sites_file.read_bytes()) == before
    assert h2.get(f"{SITE}.h2.test")[0] == 200
