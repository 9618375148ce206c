"""Day two on the sandbox: `siteops set` changes a running site, and only that site.

One baked sandbox (this module tests changes, not installation) with a Node
site ``day`` (a database, a deployed app) and a static site ``other``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from siteops.inventory import load_host_sites
from tests.conftest import REPO
from tests.e2e.conftest import Host, sandbox_host

NAME = "siteops-e2e-day"
ENGINE = "unix:///run/siteops-engine/docker.sock"
SSH_PORT, HTTP_PORT, HTTPS_PORT = 2322, 8180, 8543
NODE_APP = (REPO / "molecule" / "shared" / "fixtures" / "node-app" / "server.js").read_text("utf-8")


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    root = tmp_path_factory.mktemp("day")
    box = sandbox_host(root, NAME, SSH_PORT, HTTP_PORT, HTTPS_PORT, "--baked")
    for up in box:
        source = root / "app"
        source.mkdir()
        # The same tiny server twice: the frontend, and a worker added later on its own port.
        for name in ("server.js", "worker.js"):
            (source / name).write_text(NODE_APP, encoding="utf-8")
        up.siteops("add-site", "day", "--domain", "day.test", "--domain", "www.day.test")
        up.siteops("deploy", "day", "--source", str(source))
        up.siteops("add-site", "other", "--domain", "other.test", "--runtime", "static", "--no-db")
        yield up


def on_host(host: Host, command: str) -> str:
    done = host.ssh(command)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def answers(host: Host, domain: str) -> bool:
    """Whether nginx answers ``domain`` with the site's app (not another server's page)."""
    code, body = host.get(domain)
    return code == 200 and body.startswith("node day 31")


def audit_lines(host: Host) -> int:
    return len(on_host(host, "sudo -n cat /var/log/siteops/audit.jsonl").splitlines())


def block(host: Host) -> int:
    return load_host_sites(host.sites_file).sites["day"].port_block


def test_set_adds_and_removes_domains_and_raises_the_memory_limit(host: Host) -> None:
    assert answers(host, "day.test") and answers(host, "www.day.test")
    started = time.monotonic()
    done = host.siteops("set", "day", "--add-domain", "news.day.test",
                        "--remove-domain", "www.day.test", "--memory", "768M")  # fmt: skip
    print(f"set (domains and memory): {time.monotonic() - started:.1f}s")
    assert "domains.aliases: [www.day.test] -> [news.day.test]" in done.stdout
    assert "limits.memory: 512M -> 768M" in done.stdout
    assert answers(host, "news.day.test") and answers(host, "day.test")
    assert not answers(host, "www.day.test")  # no longer this site's name
    assert on_host(host, "systemctl show -p MemoryMax --value day.slice") == str(768 << 20)
    assert host.get("other.test")[0] == 200  # the other site was not touched
    again = host.siteops("apply", "day")
    assert ", 0 changed" in again.stdout  # the change converged completely


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--add-domain", "other.test"], "domains: 'other.test' is already served by site 'other'"),
        (["--remove-domain", "day.test"], "domains: 'day.test' is the primary domain of site"),
        (["--no-database"], "database: site 'day' has a database; turning it off drops it"),
        (["--memory", "1GB"], "limits.memory: Value error, memory '1GB' must be"),
        (["--tasks", "2"], "limits.tasks: Input should be greater than or equal to 16"),
        (["--add-component", "frontend", "--runtime", "node", "--command", "node x.js"],
         "components: site 'day' already has a component 'frontend'"),
        (["--remove-component", "frontend"], "components: the frontend of site 'day' cannot"),
        (["--primary", "nowhere.test"], "domains.primary: 'nowhere.test' is not a domain"),
        ([], "set: nothing to change"),
    ],
)  # fmt: skip
def test_a_refused_change_leaves_the_registry_byte_identical_and_the_host_untouched(
    host: Host, args: list[str], message: str
) -> None:
    before = hashlib.sha256(host.sites_file.read_bytes()).hexdigest()
    lines = audit_lines(host)
    done = host.siteops("set", "day", *args, check=False)
    assert done.returncode == 2
    assert message.replace("Value error, ", "") in done.stderr
    assert hashlib.sha256(host.sites_file.read_bytes()).hexdigest() == before
    assert audit_lines(host) == lines  # the host was not even locked


def test_an_added_component_runs_on_its_extra_port_and_the_site_still_serves(host: Host) -> None:
    port = 5000 + 10 * block(host)
    host.siteops("set", "day", "--add-component", "worker", "--runtime", "node",
                 "--command", "node worker.js")  # fmt: skip
    assert load_host_sites(host.sites_file).sites["day"].components["worker"].port == port
    assert on_host(host, "systemctl is-active day-worker.service") == "active"
    fetch = (f"sudo -n python3 -c \"import urllib.request; print(urllib.request.urlopen("
             f"'http://127.0.0.1:{port}/').read().decode())\"")  # fmt: skip
    assert on_host(host, fetch) == f"node day {port} day"
    assert answers(host, "day.test")  # the frontend and its paths are as they were

    host.siteops("set", "day", "--remove-component", "worker")
    assert "worker" not in load_host_sites(host.sites_file).sites["day"].components
    assert host.ssh("systemctl cat day-worker.service").returncode != 0  # its unit is gone
    assert host.ssh(fetch).returncode != 0
    assert answers(host, "day.test")


def test_a_dry_run_shows_the_change_and_changes_nothing(host: Host) -> None:
    before = host.sites_file.read_bytes()
    done = host.siteops("set", "day", "--memory", "1G", "--description", "Day two", "--dry-run")
    assert "limits.memory: 768M -> 1G" in done.stdout
    assert "description: '' -> Day two" in done.stdout
    assert "day: would change; dry run (check mode), nothing was changed" in done.stdout
    assert host.sites_file.read_bytes() == before
    assert on_host(host, "systemctl show -p MemoryMax --value day.slice") == str(768 << 20)


def logins(host: Host) -> int:
    """How many SSH logins as the inventory's user the host's sshd has accepted so far."""
    journal = "sudo -n journalctl -q -u ssh --no-pager"
    return int(on_host(host, f"{journal} | grep -c 'Accepted publickey for deploy' || true"))


def test_a_changing_command_logs_in_to_the_host_once_and_leaves_no_connection(
    host: Host,
) -> None:
    folders = set(Path(tempfile.gettempdir()).glob("siteops-ssh-*"))
    before = logins(host)
    host.siteops("apply", "other")
    # The lock's session and the Ansible run share one login (the count's own is the +1).
    assert logins(host) - before == 1 + 1
    # The command's master connection went with it: its socket folder is gone.
    assert set(Path(tempfile.gettempdir()).glob("siteops-ssh-*")) == folders


def test_doctor_finds_drift_with_its_fix_and_nothing_once_it_is_mended(host: Host) -> None:
    on_host(host, "sudo -n systemctl start siteops-backup@day.service siteops-backup@other.service")
    clean = host.siteops("doctor", check=False)
    assert clean.returncode == 0, clean.stdout
    assert clean.stdout.strip() == "sandbox: no findings; the host matches its registry"

    on_host(host, "sudo -n chmod 0644 /srv/sites/day/shared/.env")
    on_host(host, "sudo -n mkdir /srv/sites/ghost")
    on_host(host, "sudo -n -u postgres createdb ghost")
    drift = host.siteops("doctor", "--json", check=False)
    assert drift.returncode == 1
    found = {(f["site"], f["problem"]): f for f in json.loads(drift.stdout)["findings"]}
    assert set(found) == {
        ("day", ".env is day 0644, not day 0600"),
        (None, "/srv/sites/ghost belongs to no site of the registry"),
        (None, "database ghost belongs to no site of the registry"),
    }
    assert found[("day", ".env is day 0644, not day 0600")]["fix"] == "siteops apply day"
    only_day = host.siteops("doctor", "day", check=False)  # a named site: no host-wide checks
    assert only_day.returncode == 1 and "ghost" not in only_day.stdout

    host.siteops("apply", "day")
    on_host(host, "sudo -n rmdir /srv/sites/ghost")
    on_host(host, "sudo -n -u postgres dropdb ghost")
    assert host.siteops("doctor", check=False).returncode == 0


def test_status_shows_cpu_and_tasks_next_to_memory_against_the_limits(host: Host) -> None:
    # A busy loop in the site's slice: its CPU use shows, held to the slice's 50% quota.
    on_host(host, "sudo -n systemd-run --quiet --unit=day-busy --slice=day.slice --uid=day "
                  "-p RuntimeMaxSec=30 /bin/sh -c 'while :; do :; done'")  # fmt: skip
    try:
        facts = json.loads(host.siteops("status", "day", "--json").stdout)["sites"]["day"]
        text = host.siteops("status", "day").stdout
    finally:
        host.ssh("sudo -n systemctl stop day-busy.service")
    print(f"cpu {facts['cpu_percent']}%, tasks {facts['tasks']}, memory {facts['memory_use']}")
    assert 10 <= facts["cpu_percent"] <= 60
    assert facts["tasks"] >= 2  # node and the loop
    usage = r"memory: [0-9.]+[KM] of 768M, cpu: ([0-9.]+)% of 50%, tasks: \d+ of 256"
    line = re.search(usage, text)
    assert line is not None and float(line.group(1)) >= 10


def test_a_scheduled_job_runs_as_the_site_in_its_slice_and_logs_its_output(host: Host) -> None:
    done = host.siteops("set", "day", "--add-job", "tick", "--schedule", "*:*:0/2",
                        "--command", 'echo "tick $SITE_NAME $(id -un)"')  # fmt: skip
    assert "jobs.tick: added (*:*:0/2: echo " in done.stdout
    log = "/srv/sites/day/shared/logs/job-tick.log"
    started = time.monotonic()
    while "tick day day" not in host.ssh(f"sudo -n cat {log}").stdout:
        assert time.monotonic() - started < 20, "the job did not run within 20 s"
        time.sleep(1)
    assert on_host(host, "systemctl show -p Slice --value day-tick.service") == "day.slice"
    assert on_host(host, "systemctl is-enabled day-tick.timer") == "enabled"
    assert "job tick: *:*:0/2: echo" in host.siteops("show", "day").stdout
    status = host.siteops("status", "day").stdout
    assert re.search(r"job tick \(\*:\*:0/2\): last .+ \(success\), next ", status), status
    before = host.sites_file.read_bytes()
    refused = host.siteops("set", "day", "--add-job", "bad", "--schedule", "someday",
                           "--command", "true", check=False)  # fmt: skip
    assert refused.returncode == 2
    assert "jobs.bad.schedule: systemd on sandbox cannot read 'someday'" in refused.stderr
    assert host.sites_file.read_bytes() == before
    host.siteops("set", "day", "--remove-job", "tick")
    assert host.ssh("systemctl cat day-tick.timer").returncode != 0
    assert host.ssh("systemctl cat day-tick.service").returncode != 0
    assert ", 0 changed" in host.siteops("apply", "day").stdout


def https_get(host: Host, name: str) -> tuple[str, str]:
    """GET https://NAME/ through the sandbox, verified against its CA: (codes, body)."""
    ca = json.loads(host.siteops("sandbox", "status", "--json").stdout)["ca"]
    done = subprocess.run(
        ["curl", "-sS", "-m", "10", "--cacert", ca, "--resolve",
         f"{name}:{HTTPS_PORT}:127.0.0.1", "-w", "\n%{http_code} %{ssl_verify_result}",
         f"https://{name}:{HTTPS_PORT}/"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    body, _, codes = done.stdout.rpartition("\n")
    return codes, body


def test_tls_turned_on_serves_https_for_every_domain_with_the_sandbox_ca(host: Host) -> None:
    host.siteops("set", "day", "--tls-email", "ops@day.test")
    for name in ["day.test", "news.day.test"]:
        codes, body = https_get(host, name)
        assert codes == "200 0" and body.startswith("node day 31")  # verified by the CA
    assert host.get("day.test")[0] == 301  # plain HTTP now redirects


def test_dropping_the_database_keeps_a_backup_of_it_first(host: Host) -> None:
    assert "DATABASE_URL=" in on_host(host, "sudo -n cat /srv/sites/day/shared/.env")
    host.siteops("set", "day", "--no-database", "--drop-database", "--yes")
    dumps = on_host(host, "sudo -n sh -c 'ls -d /var/backups/siteops/day/*-before-drop/db.dump'")
    assert len(dumps.splitlines()) == 1
    count = on_host(host, "sudo -n -u postgres psql -tAc "
                          "\"SELECT count(*) FROM pg_database WHERE datname = 'day'\"")  # fmt: skip
    assert count == "0"
    assert "DATABASE_URL=" not in on_host(host, "sudo -n cat /srv/sites/day/shared/.env")
    assert https_get(host, "day.test")[0] == "200 0"
    assert ", 0 changed" in host.siteops("apply", "day").stdout


def test_maintenance_answers_503_with_the_page_while_the_units_keep_running(host: Host) -> None:
    done = host.siteops("maintenance", "day", "on", "--message", "Back at 5 o'clock, <soon> $x")
    assert "maintenance.enabled: False -> True" in done.stdout
    codes, body = https_get(host, "day.test")
    assert codes == "503 0"
    assert "Back at 5 o&#39;clock, &lt;soon&gt; &#36;x" in body
    assert on_host(host, "systemctl is-active day-frontend.service") == "active"
    assert host.get("other.test")[0] == 200
    assert "maintenance" in host.siteops("list").stdout
    host.siteops("maintenance", "day", "off")
    codes, body = https_get(host, "day.test")
    assert codes == "200 0" and body.startswith("node day 31")


def test_a_stopped_site_stays_stopped_across_a_reboot_until_start(host: Host) -> None:
    done = host.siteops("stop", "day")
    assert "stopped: False -> True" in done.stdout
    assert host.ssh("systemctl is-active day-frontend.service").stdout.strip() == "inactive"
    assert host.ssh("systemctl is-enabled day-frontend.service").stdout.strip() == "disabled"
    codes, body = https_get(host, "day.test")
    assert codes == "503 0" and "Site day is stopped." in body
    assert host.get("other.test")[0] == 200
    assert "active, stopped" in host.siteops("list").stdout
    refused = host.siteops("restart", "day", check=False)
    assert refused.returncode == 2 and "siteops start day" in refused.stderr
    assert host.siteops("stop", "day").stdout.strip() == "day: already stopped"

    boot = on_host(host, "cut -d' ' -f22 /proc/1/stat")  # when PID 1 started
    started = time.monotonic()
    docker = ["/usr/bin/docker", "restart", NAME]
    subprocess.run(docker, check=True, capture_output=True,
                   env={**os.environ, "DOCKER_HOST": ENGINE})  # fmt: skip
    while host.ssh("systemctl is-system-running --wait").returncode not in (0, 1):
        assert time.monotonic() - started < 120, "the sandbox did not come back over SSH"
        time.sleep(1)
    print(f"sandbox restarted in {time.monotonic() - started:.1f}s")
    assert on_host(host, "cut -d' ' -f22 /proc/1/stat") != boot  # a new systemd, a new boot
    assert host.ssh("systemctl is-active day-frontend.service").stdout.strip() == "inactive"
    assert host.get("other.test")[0] == 200
    assert https_get(host, "day.test")[0] == "503 0"

    done = host.siteops("start", "day")
    assert "stopped: True -> False" in done.stdout
    assert "day-frontend.service active on 31" in done.stdout
    codes, body = https_get(host, "day.test")
    assert codes == "200 0" and body.startswith("node day 31")
    assert ", 0 changed" in host.siteops("apply", "day").stdout
