"""Deploys that drop no request: blue/green on each site's spare ports, release hooks, snapshots.

One baked sandbox (releases, not installation) with two sites of two components each (a
frontend and an api, both behind nginx): ``zdnode`` (Node, no database) and ``zdpy``
(Python, with its database). A load loop sends requests through nginx to both sites for the
whole of each switch; every answer must be a 200 from the expected version. Then, on the
same sites: a key given deploy access to one site can do nothing else, and a backup and a
restore bring back rows and uploads. The tests build on each other in file order.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import Host, sandbox_host

NAME = "siteops-e2e-zd"
SSH_PORT, HTTP_PORT, HTTPS_PORT = 2332, 8190, 8553
SITES = ("zdnode", "zdpy")
# Deploys of each site under the load loop (fewer only to try a change of this module quickly).
DEPLOYS = int(os.environ.get("SITEOPS_E2E_ZD_DEPLOYS", "20"))

NODE_APP = """\
// A versioned Node app: the frontend and the api are this file, told apart by argv.
const http = require("http");
const VERSION = "v@VERSION@";
const port = Number(process.env.PORT);
const part = process.argv[2] || "frontend";
http.createServer((req, res) => {
  res.writeHead(200, { "Content-Type": "text/plain" });
  res.end(`${VERSION} ${process.env.SITE_NAME} ${part} ${port}\\n`);
}).listen(port, "127.0.0.1");
"""
NODE_API = 'process.argv[2] = "api";\nrequire("./server.js");\n'

PY_APP = """\
# A versioned Python app (standard library): the frontend, and the api through api.py.
import http.server
import json
import os
import sys

VERSION = "v@VERSION@"
PORT = int(os.environ["PORT"])
PART = sys.argv[1] if len(sys.argv) > 1 else "frontend"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = f"{VERSION} {os.environ['SITE_NAME']} {PART} {PORT}\\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
"""
PY_API = """\
import runpy
import sys

sys.argv = ["app.py", "api"]
runpy.run_path("app.py", run_name="__main__")
"""


def source(root: Path, site: str, version: int, extra: dict[str, str] | None = None) -> str:
    """A release directory of ``site``'s app answering ``v<version>``."""
    directory = root / f"{site}-v{version}-{time.monotonic_ns()}"
    directory.mkdir(parents=True)
    if site == "zdnode":
        files = {"server.js": NODE_APP.replace("@VERSION@", str(version)), "api.js": NODE_API}
    else:
        files = {"app.py": PY_APP.replace("@VERSION@", str(version)), "api.py": PY_API}
    for name, text in {**files, **(extra or {})}.items():
        (directory / name).write_text(text, encoding="utf-8")
    return str(directory)


@dataclass
class Answer:
    sent: float
    site: str
    path: str
    code: int
    version: int | None


@dataclass
class Load:
    """Requests through nginx to every site, frontend and api, until stopped."""

    port: int
    answers: list[Answer] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def _loop(self, site: str, path: str, interval: float) -> None:
        while not self.stop.wait(interval):
            sent = time.monotonic()
            try:
                # A new connection per request, as most clients make.
                conn = HTTPConnection("127.0.0.1", self.port, timeout=10)
                conn.request("GET", path, headers={"Host": f"{site}.test"})
                response = conn.getresponse()
                body = response.read().decode(errors="replace")
                conn.close()
                code = response.status
            except OSError:
                code, body = 0, ""
            match = re.match(rf"v(\d+) {site} (frontend|api) ", body)
            self.answers.append(Answer(sent, site, path, code, int(match[1]) if match else None))

    def __enter__(self) -> Load:
        # 12 a second to each frontend (under the site's 30 r/s limit) and 4 to each api (10 r/s):
        # 32 requests a second through nginx in all.
        for site in SITES:
            for path, interval in (("/", 1 / 12), ("/api/x", 1 / 4)):
                thread = threading.Thread(target=self._loop, args=(site, path, interval))
                thread.start()
                self.threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def failures(self) -> list[Answer]:
        return [a for a in self.answers if a.code != 200 or a.version is None]

    def rate(self) -> float:
        span = self.answers[-1].sent - self.answers[0].sent
        return len(self.answers) / span if span > 0 else 0.0


class MemorySampler:
    """MemoryCurrent of the sites' slices, read on the host every 0.2 s."""

    def __init__(self, host: Host) -> None:
        script = (
            "while :; do for s in " + " ".join(f"{s}.slice" for s in SITES)
            + '; do printf "%s %s\\n" "$s" "$(systemctl show -P MemoryCurrent "$s")"; done;'
            " sleep 0.2; done"
        )  # fmt: skip
        key = host.inventory / ".ssh"
        self.process = subprocess.Popen(
            ["ssh", "-o", f"UserKnownHostsFile={key / 'known_hosts'}", "-o", "BatchMode=yes",
             "-i", str(key / "id_ed25519"), "-p", str(host.ssh_port), "deploy@127.0.0.1", script],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip

    def spans(self) -> dict[str, str]:
        """Each slice's lowest and highest memory use while sampled, in MiB."""
        self.process.terminate()
        out, _ = self.process.communicate(timeout=10)
        samples: dict[str, list[int]] = {}
        for line in out.splitlines():
            name, _, value = line.partition(" ")
            if value.strip().isdigit():
                samples.setdefault(name, []).append(int(value))
        return {
            name: f"{min(values) / 2**20:.1f}-{max(values) / 2**20:.1f} MiB"
            for name, values in samples.items()
        }


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    root = tmp_path_factory.mktemp("zd")
    for up in sandbox_host(root, NAME, SSH_PORT, HTTP_PORT, HTTPS_PORT, "--baked"):
        up.siteops("add-site", "zdnode", "--domain", "zdnode.test", "--api", "--no-db")
        up.siteops("add-site", "zdpy", "--domain", "zdpy.test", "--api", "--runtime", "python")
        for site in SITES:
            up.siteops("deploy", site, "--source", source(root, site, 1))
        yield up


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("zd-sources")


def on_host(host: Host, command: str) -> str:
    done = host.ssh(command)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def versions(host: Host) -> dict[tuple[str, str], int | None]:
    found: dict[tuple[str, str], int | None] = {}
    for site in SITES:
        for path in ("/", "/api/x"):
            _, body = host.get(f"{site}.test", path)
            match = re.match(rf"v(\d+) {site} (frontend|api) ", body)
            found[(site, path)] = int(match[1]) if match else None
    return found


def backup_ids(host: Host) -> list[str]:
    entries = on_host(host, "sudo -n ls /var/backups/siteops/zdpy").split()
    return [e for e in entries if re.fullmatch(r"\d{8}T\d{6}Z", e)]


def psql(host: Host, sql: str) -> str:
    return on_host(host, f'sudo -n runuser -u postgres -- psql -X -d zdpy -tA -c "{sql}"')


def test_twenty_deploys_of_each_site_drop_no_request(host: Host, sources: Path) -> None:
    assert set(versions(host).values()) == {1}
    done_at: dict[str, list[tuple[float, int]]] = {site: [] for site in SITES}
    took: list[float] = []
    memory = MemorySampler(host)
    with Load(HTTP_PORT) as load:
        time.sleep(1)
        for version in range(2, DEPLOYS + 2):
            for site in SITES:
                started = time.monotonic()
                out = host.siteops("deploy", site, "--source", source(sources, site, version))
                took.append(time.monotonic() - started)
                done_at[site].append((time.monotonic(), version))
                assert "nginx serves" in out.stdout and "from its main slot again" in out.stdout
        time.sleep(1)
    memory_use = memory.spans()
    failures = load.failures()
    print(f"{len(load.answers)} answers at {load.rate():.1f}/s during {2 * DEPLOYS} deploys; "
          f"deploy {min(took):.1f}-{max(took):.1f}s (median {sorted(took)[len(took) // 2]:.1f}s); "
          f"slices' memory (lowest-highest) {memory_use}; failures {failures[:5]}")  # fmt: skip
    assert load.rate() >= 20
    assert failures == []
    # Every answer to a request sent after a deploy returned comes from that version or a newer one.
    for site in SITES:
        for finished, version in done_at[site]:
            late = [a for a in load.answers if a.site == site and a.sent > finished]
            assert late and all((a.version or 0) >= version for a in late), (site, version)
    assert set(versions(host).values()) == {DEPLOYS + 1}
    # At rest only the main slots run, and nginx talks to them.
    assert on_host(host, "systemctl is-active zdpy-frontend.spare.service || true") == "inactive"
    listening = on_host(host, "ss -Htln")
    assert ":3111 " not in listening and ":4011 " not in listening
    assert ":3110 " in listening and ":4010 " in listening
    releases = host.siteops("releases", "zdpy").stdout
    assert "from the main slot (ports 3110, 4010)" in releases
    # The slice's own limits are back (twice them only during a switch).
    assert on_host(host, "systemctl show -P MemoryMax zdpy.slice") == str(512 * 1024**2)
    # A database snapshot per kept release of the site with a database, none for the other.
    snapshots = on_host(host, "sudo -n ls /var/lib/siteops/releases/zdpy.snapshots").split()
    kept = on_host(host, "sudo -n ls /srv/sites/zdpy/releases").split()
    assert sorted(s.removesuffix(".dump") for s in snapshots) == sorted(
        r for r in kept if r != "placeholder"
    )
    assert len(snapshots) == min(5, DEPLOYS + 1)
    assert on_host(host, "sudo -n ls /var/lib/siteops/releases/").count("zdnode.snapshots") == 0


def test_a_release_failing_its_health_check_and_a_rollback_drop_no_request(
    host: Host, sources: Path
) -> None:
    broken = {
        "server.js": "console.error('v99 cannot start: missing setting');\nprocess.exit(1);\n"
    }
    with Load(HTTP_PORT) as load:
        time.sleep(1)
        failed = host.siteops("deploy", "zdnode", "--source", source(sources, "zdnode", 99, broken),
                              "--health-timeout", "5", check=False)  # fmt: skip
        assert failed.returncode == 2
        assert "failed its health check on the spare slot" in failed.stderr
        assert versions(host)[("zdnode", "/")] == DEPLOYS + 1
        started = time.monotonic()
        host.siteops("rollback", "zdnode")
        back = time.monotonic()
        time.sleep(1)
    print(f"rollback {back - started:.1f}s; {len(load.answers)} answers at {load.rate():.1f}/s")
    assert load.failures() == []
    late = [a for a in load.answers if a.site == "zdnode" and a.sent > back]
    assert late and {a.version for a in late} == {DEPLOYS}


def test_a_failing_release_hook_switches_nothing_and_shows_its_output(
    host: Host, sources: Path
) -> None:
    hook = {
        "siteops.toml": '[hooks]\nrelease = "echo migration 7 failed: column exists >&2; exit 3"\n'
    }
    before = on_host(host, "sudo -n readlink /srv/sites/zdpy/current")
    done = host.siteops(
        "deploy", "zdpy", "--source", source(sources, "zdpy", 50, hook), check=False
    )
    assert done.returncode == 2
    assert "migration 7 failed: column exists" in done.stderr
    assert "the release hook of" in done.stderr
    assert on_host(host, "sudo -n readlink /srv/sites/zdpy/current") == before
    assert versions(host)[("zdpy", "/")] == DEPLOYS + 1
    log = on_host(host, "sudo -n tail -n 3 /srv/sites/zdpy/shared/logs/release.log")
    assert "migration 7 failed" in log and "== exit 3" in log


def test_rollback_with_database_brings_back_the_schema_and_rows(host: Host, sources: Path) -> None:
    create = {
        "siteops.toml": '[hooks]\nrelease = "psql \\"$DATABASE_URL\\" -v ON_ERROR_STOP=1 '
        '-f m.sql"\n',
        "m.sql": "CREATE TABLE IF NOT EXISTS notes (id int);\n"
                 "INSERT INTO notes SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM notes);\n",
    }  # fmt: skip
    out = host.siteops("deploy", "zdpy", "--source", source(sources, "zdpy", 60, create)).stdout
    assert "INSERT 0 1" in out  # the hook's output is part of the deploy's
    alter = {
        **create,
        "m.sql": "ALTER TABLE notes ADD COLUMN body text;\n"
                 "INSERT INTO notes VALUES (2, 'two');\nCREATE TABLE tags (t text);\n",
    }  # fmt: skip
    host.siteops("deploy", "zdpy", "--source", source(sources, "zdpy", 61, alter))
    assert psql(host, "SELECT count(*) FROM notes") == "2"
    assert (
        psql(host, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'tags'")
        == "1"
    )
    backups = backup_ids(host)
    done = host.siteops("rollback", "zdpy", "--with-database", "--yes").stdout
    assert "backup of the current state" in done
    assert versions(host)[("zdpy", "/")] == 60
    assert psql(host, "SELECT count(*) FROM notes") == "1"
    assert psql(host, "SELECT string_agg(column_name, ',') FROM information_schema.columns "
                      "WHERE table_name = 'notes'") == "id"  # fmt: skip
    assert (
        psql(host, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'tags'")
        == "0"
    )
    # A backup of the state left was taken first; the site still reaches its database as itself.
    assert len(backup_ids(host)) == len(backups) + 1
    assert psql(host, "SELECT pg_catalog.pg_get_userbyid(datdba) FROM pg_database "
                      "WHERE datname = 'zdpy'") == "zdpy"  # fmt: skip
    # Nothing for the roles to repair afterwards.
    assert re.search(r"\b0 changed\b", host.siteops("apply", "zdpy").stdout)


def test_a_deploy_killed_during_its_switch_is_finished_by_the_next_without_a_drop(
    host: Host, sources: Path
) -> None:
    # A release whose main slot takes 6 s to listen: a long window with nginx on the spare slot.
    slow = (
        NODE_APP.replace("@VERSION@", "80")
        .replace(
            '}).listen(port, "127.0.0.1");',
            '});\nsetTimeout(() => server.listen(port, "127.0.0.1"), port % 2 === 0 ? 6000 : 0);',
        )
        .replace("http.createServer(", "const server = http.createServer(")
    )
    with Load(HTTP_PORT) as load:
        time.sleep(1)
        deploy = host.start("deploy", "zdnode", "--source",
                            source(sources, "zdnode", 80, {"server.js": slow}))  # fmt: skip
        deadline = time.monotonic() + 90
        while host.ssh("sudo -n test -e /var/lib/siteops/releases/zdnode.nginx-main").returncode:
            assert time.monotonic() < deadline and deploy.poll() is None, "no switch seen"
            time.sleep(0.2)
        # Killed as a lost connection or a reboot would: no trap runs, its lock stays. ("[s]":
        # the pattern must not match the command line of this ssh session's own shell.)
        on_host(host, "sudo -n pkill -KILL -f '[s]iteops-release deploy zdnode'")
        deploy.communicate(timeout=120)
        assert deploy.returncode != 0
        status = host.siteops("status", "zdnode").stdout
        assert "from the spare slot: a switch is under way (ports 3101, 4001)" in status
        doctor = host.siteops("doctor", "zdnode", check=False)
        assert doctor.returncode == 1
        assert "nginx passes its requests to its spare slot (ports 3101, 4001)" in doctor.stdout
        # The next deploy takes the dead holder's lock over and finishes the switch first.
        host.siteops("deploy", "zdnode", "--source", source(sources, "zdnode", 81))
        finished = time.monotonic()
        time.sleep(1)
    assert load.failures() == []
    late = [a for a in load.answers if a.site == "zdnode" and a.sent > finished]
    assert late and {a.version for a in late} == {81}
    assert "from the main slot (ports 3100, 4000)" in host.siteops("releases", "zdnode").stdout
    # Nothing left for doctor once the site has its first backup (a new site has none yet).
    on_host(host, "sudo -n systemctl start siteops-backup@zdnode.service")
    assert host.siteops("doctor", "zdnode", check=False).returncode == 0
    assert on_host(host, "systemctl show -P MemoryMax zdnode.slice") == str(512 * 1024**2)
    assert on_host(host, "systemctl is-active zdnode-frontend.spare.service || true") == "inactive"


def key_ssh(host: Host, key: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``ssh siteops-access@sandbox ARGS`` with ``key`` alone and the sandbox's pinned host key."""
    known = host.inventory / ".ssh" / "known_hosts"
    return subprocess.run(
        ["ssh", "-o", f"UserKnownHostsFile={known}", "-o", "BatchMode=yes",
         "-o", "IdentitiesOnly=yes", "-i", str(key), "-p", str(host.ssh_port),
         *args[:-1], "siteops-access@127.0.0.1", args[-1]],
        capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_a_key_granted_for_one_site_deploys_it_and_nothing_else(
    host: Host, sources: Path, tmp_path: Path
) -> None:
    key = tmp_path / "dev"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "dev@laptop",
                    "-f", str(key)], check=True)  # fmt: skip
    registry = host.sites_file.read_bytes()
    bad = host.siteops("access", "grant", "zdnode", "--name", "dev", "--key", str(key), check=False)
    assert bad.returncode == 2 and "is a private key; give its .pub file" in bad.stderr
    assert host.sites_file.read_bytes() == registry  # refused: nothing written
    host.siteops("access", "grant", "zdnode", "--name", "dev", "--key", f"{key}.pub")
    listed = host.siteops("access", "list", "zdnode").stdout
    assert "dev" in listed and "dev@laptop" in listed
    assert re.search(r"\b0 changed\b", host.siteops("apply", "zdnode").stdout)

    # With the key: a deploy of its own site under the load loop, as any deploy drops nothing.
    as_dev = ("--access-key", str(key))
    with Load(HTTP_PORT) as load:
        time.sleep(1)
        done = host.siteops("deploy", "zdnode", "--source", source(sources, "zdnode", 90), *as_dev)
        switched = time.monotonic()
        time.sleep(1)
    assert "zdnode: deployed" in done.stdout
    assert load.failures() == []
    late = [a for a in load.answers if a.site == "zdnode" and a.sent > switched]
    assert late and {a.version for a in late} == {90}
    deployed = re.search(r"deployed (\S+) ", done.stdout)
    assert deployed, done.stdout
    releases = host.siteops("releases", "zdnode", "--json", *as_dev).stdout
    assert json.loads(releases)["current"] == deployed[1]
    assert json.loads(releases)["serving_ports"] == [3100, 4000]
    assert "access:dev" in releases  # the release log names who deployed it
    logs = host.siteops("logs", "zdnode", "-n", "5", *as_dev).stdout
    assert "==> /srv/sites/zdnode/shared/logs/frontend.log <==" in logs
    status = key_ssh(host, key, "status zdnode")
    assert status.returncode == 0 and "unit zdnode-frontend.service: active" in status.stdout
    host.siteops("rollback", "zdnode", *as_dev)
    assert versions(host)[("zdnode", "/")] == 81
    audit = on_host(host, "sudo -n tail -n 5 /var/log/siteops/audit.jsonl")
    assert '"user": "access:dev"' in audit and '"command": "rollback zdnode"' in audit

    # Nothing else: not the other site, not its .env, no shell, nothing as root.
    before = versions(host)[("zdpy", "/")]
    other = host.siteops("deploy", "zdpy", "--source", source(sources, "zdpy", 91), *as_dev,
                         check=False)  # fmt: skip
    assert other.returncode == 2 and "may deploy site zdnode only" in other.stderr
    assert versions(host)[("zdpy", "/")] == before
    for command in ("cat /srv/sites/zdpy/shared/.env", "sh -i", "sudo -n id", "id",
                    "releases zdpy", "logs zdpy -n 5", "status zdnode; id"):  # fmt: skip
        done = key_ssh(host, key, command)
        assert done.returncode != 0, command
        assert "DATABASE_URL" not in done.stdout and "uid=" not in done.stdout, command
    shell = key_ssh(host, key, "-tt", "bash")
    assert shell.returncode != 0 and "uid=" not in shell.stdout

    # Revoked: the key no longer logs in.
    host.siteops("access", "revoke", "zdnode", "--name", "dev")
    gone = host.siteops("deploy", "zdnode", "--source", source(sources, "zdnode", 92), *as_dev,
                        check=False)  # fmt: skip
    assert gone.returncode != 0 and "could not log in" in gone.stderr
    assert versions(host)[("zdnode", "/")] == 81


def daily_backups(host: Host) -> list[dict[str, Any]]:
    listed = json.loads(host.siteops("backups", "zdpy", "--json").stdout)["backups"]
    return [b for b in listed if b["kind"] == "daily"]


def test_a_backup_then_a_restore_brings_back_rows_and_uploads(host: Host) -> None:
    uploads = "/srv/sites/zdpy/shared/uploads"
    psql(host, "INSERT INTO notes VALUES (3)")
    rows = psql(host, "SELECT count(*) FROM notes")
    on_host(host, f"sudo -n runuser -u zdpy -- sh -c 'echo kept > {uploads}/a.txt'")
    taken = re.search(r"zdpy: backup (\S+) taken", host.siteops("backup", "zdpy").stdout)
    assert taken
    listed = daily_backups(host)
    mine = next(b for b in listed if b["id"] == taken[1])
    assert mine["holds"] == ["database", "uploads, .env"] and int(mine["size"]) > 0
    assert len(listed) >= 2  # the one taken by rollback --with-database, and this one
    text = host.siteops("backups", "zdpy").stdout
    assert taken[1] in text and "last backup: ok" in text
    # What the restore must undo: the rows deleted, an upload deleted and another added.
    psql(host, "DELETE FROM notes")
    on_host(host, f"sudo -n sh -c 'rm {uploads}/a.txt; echo new > {uploads}/b.txt'")
    done = host.siteops("restore", "zdpy", "--backup", taken[1], "--yes")
    assert f"zdpy: restored from {taken[1]}; nginx answers 200" in done.stdout
    safety = re.search(r"backup of the state before: (\S+)", done.stdout)
    assert safety and safety[1] != taken[1]
    assert psql(host, "SELECT count(*) FROM notes") == rows
    assert on_host(host, f"sudo -n cat {uploads}/a.txt") == "kept"
    assert on_host(host, f"sudo -n stat -c %U {uploads}/a.txt") == "zdpy"
    assert host.ssh(f"sudo -n test -e {uploads}/b.txt").returncode == 1
    assert versions(host)[("zdpy", "/")] == 60  # the app serves again, from its database
    # The backup of the state before holds what the restore replaced.
    assert safety[1] in [b["id"] for b in daily_backups(host)]
    # A backup that does not exist is refused before anything changes.
    gone = host.siteops("restore", "zdpy", "--backup", "20200101T000000Z", "--yes", check=False)
    assert gone.returncode == 2 and "has no backup '20200101T000000Z'" in gone.stderr


def test_backup_retention_removes_backups_older_than_its_days(host: Host) -> None:
    old = "/var/backups/siteops/zdpy/20261001T030000Z"
    on_host(host, f"sudo -n sh -c 'mkdir -m 700 {old} && touch -d \"15 days ago\" {old}'")
    assert "20261001T030000Z" in [b["id"] for b in daily_backups(host)]
    host.siteops("backup", "zdpy")
    assert "20261001T030000Z" not in [b["id"] for b in daily_backups(host)]  # 14 days kept


def test_backup_retention_keeps_the_newest_by_count(host: Host) -> None:
    hosts_file = host.inventory / "hosts.yml"
    original = hosts_file.read_text(encoding="utf-8")
    data = yaml.safe_load(original)
    data["all"]["hosts"][host.host]["site_backup_keep_count"] = 2
    hosts_file.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    try:
        host.siteops("apply", "zdpy")
        ids = []
        for _ in range(3):
            time.sleep(1.1)  # backup ids are UTC seconds
            ids.append(re.findall(r"backup (\S+) taken", host.siteops("backup", "zdpy").stdout)[0])
        assert [b["id"] for b in daily_backups(host)] == ids[:0:-1]  # the two newest
        # Restoring the older of the two: the backup of the state before (a third) leaves
        # the backup being restored alone.
        done = host.siteops("restore", "zdpy", "--backup", ids[1], "--yes").stdout
        assert f"zdpy: restored from {ids[1]}; nginx answers 200" in done
        assert [b["id"] for b in daily_backups(host)][1:] == ids[:0:-1]
    finally:
        hosts_file.write_text(original, encoding="utf-8")
        host.siteops("apply", "zdpy")


def test_a_removed_site_comes_back_from_its_final_backup_with_its_app_rows_and_uploads(
    host: Host,
) -> None:
    uploads = "/srv/sites/zdpy/shared/uploads"
    rows = psql(host, "SELECT count(*) FROM notes")
    on_host(host, f"sudo -n runuser -u zdpy -- sh -c 'echo back > {uploads}/c.txt'")
    env_line = "FEATURE_FLAG=on"
    host.siteops("env", "set", "zdpy", env_line)
    removed = host.siteops("remove-site", "zdpy", "--yes").stdout
    final = re.findall(r"final backup (/\S+)", removed)[0]
    assert versions(host)[("zdpy", "/")] is None  # gone
    done = host.siteops("restore-site", "zdpy").stdout
    assert re.search(rf"zdpy: restored on {host.host} from {final}, port block \d+, release "
                     r"\S+; nginx answers 200 for zdpy.test", done)  # fmt: skip
    # The app it ran answers again, frontend and api, from its rows; its uploads and the
    # operator's .env line are back; the database role works with the restored .env.
    assert versions(host)[("zdpy", "/")] == 60 and versions(host)[("zdpy", "/api/x")] == 60
    assert psql(host, "SELECT count(*) FROM notes") == rows
    assert on_host(host, f"sudo -n cat {uploads}/c.txt") == "back"
    assert env_line in on_host(host, "sudo -n cat /srv/sites/zdpy/shared/.env")
    listed = yaml.safe_load(host.sites_file.read_text(encoding="utf-8"))
    assert listed["siteops_sites"]["zdpy"]["status"] == "active"
    assert "zdpy" not in (listed.get("siteops_archived_sites") or {})
    assert host.siteops("doctor", "zdpy", check=False).returncode == 0
    # Restoring it again is refused: it is active, not archived.
    again = host.siteops("restore-site", "zdpy", check=False)
    assert again.returncode == 2 and "'zdpy' is an active site, not a removed one" in again.stderr


def test_a_forgotten_site_s_name_gives_a_fresh_empty_site(host: Host) -> None:
    removed = host.siteops("remove-site", "zdnode", "--yes").stdout
    final = re.findall(r"final backup (/\S+)", removed)[0]
    refused = host.siteops("add-site", "zdnode", "--domain", "zdnode.test", "--api", "--no-db",
                           check=False)  # fmt: skip
    assert refused.returncode == 2 and "siteops forget-site zdnode" in refused.stderr
    forgot = host.siteops("forget-site", "zdnode", "--yes").stdout
    assert f"its final backup stays at {final}" in forgot
    host.siteops("add-site", "zdnode", "--domain", "zdnode.test", "--api", "--no-db")
    # Fresh: the placeholder page, no release and no history of the removed site's.
    code, body = host.get("zdnode.test")
    assert code == 200 and "zdnode" in body and not re.match(r"v\d+ ", body)
    listed = json.loads(host.siteops("releases", "zdnode", "--json").stdout)
    assert listed["current"] == "placeholder" and listed["log"] == []
    # zdnode has no database: its final backup holds shared/ alone, and it is kept.
    assert on_host(host, f"sudo -n ls {final}").split() == ["files.tar.gz"]
    assert versions(host)[("zdpy", "/")] == 60  # the other site never noticed
