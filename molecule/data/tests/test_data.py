"""Each site's data is its own: PostgreSQL and Redis refuse the other site,
secrets stay out of output, and backups are proven by restoring them."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import testinfra

from siteops.cli import _size

REPO = Path(__file__).resolve().parents[3]
A, B = "site-a", "site-b"


def env_of(host: testinfra.host.Host, site: str) -> dict[str, str]:
    text = host.file(f"/srv/sites/{site}/shared/.env").content_string
    return dict(
        line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#")
    )


def sql(host: testinfra.host.Host, query: str, db: str = "postgres") -> str:
    """Run a query as the postgres superuser."""
    return host.check_output(f'runuser -u postgres -- psql -X -tA -d {db} -c "{query}"')


def as_site(
    host: testinfra.host.Host, site: str, command: str
) -> testinfra.backend.base.CommandResult:
    """Run a command as the site's user with its .env loaded, as its units do."""
    load_env = "set -a; . shared/.env; set +a"
    return host.run(f"cd /srv/sites/{site} && runuser -u {site} -- sh -c '{load_env}; {command}'")


def psql_as(
    host: testinfra.host.Host, site: str, url: str, sql: str
) -> testinfra.backend.base.CommandResult:
    return as_site(host, site, f'psql "{url}" -X -tA -c "{sql}"')


def playbook(name: str, *extra: str) -> str:
    run = subprocess.run(
        [
            "ansible-playbook",
            "--diff",
            "-i",
            os.environ["MOLECULE_INVENTORY_FILE"],
            str(REPO / "playbooks" / name),
            *extra,
        ],
        capture_output=True,
        text=True,
        check=False,
        env={
            **os.environ,
            "ANSIBLE_ROLES_PATH": str(REPO / "roles"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
        },
    )
    return f"rc={run.returncode}\n{run.stdout}{run.stderr}"


def status(host: testinfra.host.Host, site: str, kind: str) -> dict[str, str]:
    return json.loads(host.file(f"/var/backups/siteops/{site}/status/{kind}.json").content_string)


def test_the_app_connects_with_database_url_from_its_env(host: testinfra.host.Host) -> None:
    run = as_site(host, A, "python3 /opt/siteops-fixtures/dbcheck.py first")
    assert run.rc == 0, run.stderr
    assert re.fullmatch(r"visits=\d+ user=site-a db=site-a", run.stdout.strip())


def test_a_cannot_connect_to_bs_database(host: testinfra.host.Host) -> None:
    a_url = env_of(host, A)["DATABASE_URL"]
    other = psql_as(host, A, a_url.rsplit("/", 1)[0] + f"/{B}", "SELECT 1")
    assert other.rc != 0
    assert f'permission denied for database "{B}"' in other.stderr
    peer = as_site(host, A, f'psql -d {B} -X -tA -c "SELECT 1"')
    assert f'permission denied for database "{B}"' in peer.stderr


@pytest.mark.parametrize(
    ("sql", "error"),
    [
        ("CREATE DATABASE stolen", "permission denied to create database"),
        ("CREATE ROLE stolen", "permission denied to create role"),
    ],
)
def test_a_cannot_create_databases_or_roles(
    host: testinfra.host.Host, sql: str, error: str
) -> None:
    run = psql_as(host, A, env_of(host, A)["DATABASE_URL"], sql)
    assert run.rc != 0
    assert error in run.stderr


def test_public_has_no_connect_and_passwords_are_scram(host: testinfra.host.Host) -> None:
    for site in (A, B):
        assert sql(host, f"SELECT has_database_privilege('public', '{site}', 'CONNECT')") == "f"
        assert sql(host, f"SELECT has_database_privilege('public', '{site}', 'TEMPORARY')") == "f"
        assert sql(host, f"SELECT has_database_privilege('{site}', '{site}', 'CONNECT')") == "t"
    assert sql(host, "SELECT has_schema_privilege('public', 'public', 'CREATE')") == "f"
    hashes = sql(host, "SELECT rolpassword FROM pg_authid WHERE rolname LIKE 'site-_'").split()
    assert len(hashes) == 2
    assert all(h.startswith("SCRAM-SHA-256$") for h in hashes)
    flags = sql(
        host,
        "SELECT rolsuper, rolcreatedb, rolcreaterole, rolconnlimit FROM pg_roles"
        " WHERE rolname = 'site-a'",
    )
    assert flags == "f|f|f|5"


def test_redis_confines_each_site_to_its_own_keys(host: testinfra.host.Host) -> None:
    def redis(site: str, command: str) -> str:
        run = as_site(host, site, f'redis-cli --no-auth-warning -u "$REDIS_URL" {command}')
        return run.stdout.strip()

    assert redis(A, "SET site-a:greeting hello") == "OK"
    assert redis(A, "GET site-a:greeting") == "hello"
    assert redis(B, "SET site-b:greeting hi") == "OK"
    assert "NOPERM" in redis(A, "GET site-b:greeting")
    assert "NOPERM" in redis(A, "SET site-b:greeting hijacked")
    assert "NOPERM" in redis(A, "FLUSHALL")
    assert "NOPERM" in redis(A, 'KEYS "*"')
    assert "NOPERM" in redis(A, 'CONFIG GET "*"')
    assert redis(B, "GET site-b:greeting") == "hi"
    anonymous = host.run("redis-cli -h 127.0.0.1 GET site-a:greeting")
    assert "NOAUTH" in anonymous.stdout + anonymous.stderr or "AUTH" in anonymous.stdout


def test_secrets_are_stable_and_never_in_the_output(host: testinfra.host.Host) -> None:
    before = env_of(host, A)
    password = before["DATABASE_URL"].split(":")[2].split("@")[0]
    redis_password = before["REDIS_URL"].split(":")[2].split("@")[0]
    output = playbook("site.yml")
    assert output.startswith("rc=0"), output[-3000:]
    assert password not in output
    assert redis_password not in output
    assert env_of(host, A) == before
    env = host.file(f"/srv/sites/{A}/shared/.env")
    assert (env.user, env.mode) == (A, 0o600)


def test_backups_are_root_only(host: testinfra.host.Host) -> None:
    assert host.file("/var/backups/siteops").mode == 0o700
    assert as_site(host, A, "ls /var/backups/siteops/site-a").rc != 0


def test_backup_then_drop_then_restore_brings_the_rows_back(host: testinfra.host.Host) -> None:
    url = env_of(host, A)["DATABASE_URL"]
    as_site(host, A, "python3 /opt/siteops-fixtures/dbcheck.py before-backup")
    rows = psql_as(host, A, url, "SELECT count(*) FROM visits").stdout.strip()
    host.check_output("echo photo > /srv/sites/site-a/shared/uploads/p.txt")
    host.check_output("systemctl start siteops-backup@site-a.service")
    assert status(host, A, "backup")["result"] == "ok"
    # Its recorded size is the one `siteops backups` lists: its files' bytes.
    newest = host.check_output("ls -1d /var/backups/siteops/site-a/2*Z | sort | tail -n 1")
    sizes = host.check_output(f"find {newest} -maxdepth 1 -type f -printf '%s\\n'").split()
    assert status(host, A, "backup")["message"] == _size(sum(map(int, sizes)))

    assert psql_as(host, A, url, "DROP TABLE visits").rc == 0
    host.check_output("rm /srv/sites/site-a/shared/uploads/p.txt")
    output = playbook("restore.yml", "-e", f"site={A}")
    assert output.startswith("rc=0"), output[-3000:]
    assert psql_as(host, A, url, "SELECT count(*) FROM visits").stdout.strip() == rows
    assert host.file("/srv/sites/site-a/shared/uploads/p.txt").content_string == "photo\n"
    assert sql(host, "SELECT tableowner FROM pg_tables WHERE tablename = 'visits'", db=A) == A


def test_the_restore_test_records_success_and_a_corrupted_dump(host: testinfra.host.Host) -> None:
    host.check_output("systemctl start siteops-restore-test@site-a.service")
    result = status(host, A, "restore-test")
    print("restore test:", result)
    assert result["result"] == "ok"
    newest = host.check_output("ls -1d /var/backups/siteops/site-a/2*Z | sort | tail -n 1")
    host.check_output(f"head -c 200 {newest}/db.dump > /tmp/cut && cat /tmp/cut > {newest}/db.dump")
    failed = host.run("systemctl start siteops-restore-test@site-a.service")
    assert failed.rc != 0
    result = status(host, A, "restore-test")
    print("restore test of a corrupted dump:", result)
    assert result["result"] == "failed"
    assert (
        sql(host, "SELECT count(*) FROM pg_database WHERE datname = 'site_a_restore_test'") == "0"
    )


def test_a_run_for_one_site_keeps_every_other_sites_redis_user(host: testinfra.host.Host) -> None:
    output = playbook("site.yml", "-e", '{"siteops_only": ["site-a"]}')
    assert output.startswith("rc=0"), output[-3000:]
    run = as_site(host, B, 'redis-cli --no-auth-warning -u "$REDIS_URL" GET site-b:greeting')
    assert run.stdout.strip() == "hi"


def test_removing_a_site_keeps_a_final_backup_and_leaves_the_other_alone(
    host: testinfra.host.Host,
) -> None:
    b_url = env_of(host, B)["DATABASE_URL"]
    as_site(host, B, "python3 /opt/siteops-fixtures/dbcheck.py last-words")
    output = playbook("remove-site.yml", "-e", f"site={B}")
    assert output.startswith("rc=0"), output[-3000:]
    final = re.search(r"siteops final backup: (/var/backups/siteops/site-b/[0-9TZ]+-final)", output)
    assert final is not None, output[-2000:]
    archive = final.group(1)
    assert host.file(f"{archive}/db.dump").size > 0
    assert (
        host.run(f"pg_restore --list {archive}/db.dump | grep -q 'TABLE DATA public visits'").rc
        == 0
    )
    assert host.run(f"tar -tzf {archive}/files.tar.gz shared/.env").rc == 0
    assert b_url.split(":")[2].split("@")[0] not in output

    assert not host.user(B).exists
    assert not host.file(f"/srv/sites/{B}").exists
    assert sql(host, f"SELECT count(*) FROM pg_database WHERE datname = '{B}'") == "0"
    assert sql(host, f"SELECT count(*) FROM pg_roles WHERE rolname = '{B}'") == "0"
    assert f"user {B} " not in host.file("/etc/redis/users.acl").content_string
    assert not host.file(f"/etc/systemd/system/timers.target.wants/siteops-backup@{B}.timer").exists

    assert re.fullmatch(
        r"visits=\d+ user=site-a db=site-a",
        as_site(host, A, "python3 /opt/siteops-fixtures/dbcheck.py still-here").stdout.strip(),
    )
    assert (
        as_site(
            host, A, 'redis-cli --no-auth-warning -u "$REDIS_URL" GET site-a:greeting'
        ).stdout.strip()
        == "hello"
    )

    again = playbook("remove-site.yml", "-e", f"site={B}")
    assert again.startswith("rc=0"), again[-3000:]
    assert f"siteops final backup: {archive}" in again
