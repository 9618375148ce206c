"""Only nginx, the site itself and root reach a site's backend ports.

Sites: neta (python on 3100), netb (node on 3110, python api on 4010), netc
(python on 3120). Probes run as the sites' own users, as www-data and as root.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
from pathlib import Path

import pytest
import testinfra

REPO = Path(__file__).resolve().parents[3]
PORTS = {"neta": [3100], "netb": [3110, 4010], "netc": [3120]}
REFUSED = "ConnectionRefusedError: [Errno 111] Connection refused"
PROBE = (
    "import socket, sys, time\n"
    "started = time.monotonic()\n"
    "try:\n"
    "    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5).close()\n"
    "    print('connected', end='')\n"
    "except OSError as exc:\n"
    "    print(f'{type(exc).__name__}: {exc}', end='')\n"
    "print(f' after {time.monotonic() - started:.3f}s')\n"
)
TOOK = re.compile(r" after (\d+\.\d+)s$")


def tcp_connect(host: testinfra.host.Host, user: str, port: int, address: str = "127.0.0.1") -> str:
    """What ``user`` gets from connect(2), ``connected`` or the error (e.g. ECONNREFUSED),
    and how long connect took on the host: ``… after 0.001s``."""
    return host.check_output(
        f"runuser -u {user} -- python3 -c {shlex.quote(PROBE)} {address} {port}"
    )


def connect(host: testinfra.host.Host, user: str, port: int, address: str = "127.0.0.1") -> str:
    """What ``user`` gets from http://address:port/: the body, or curl's error."""
    url = f"http://[{address}]:{port}/" if ":" in address else f"http://{address}:{port}/"
    result = host.run(f"runuser -u {user} -- curl -sS --max-time 5 {url}")
    return result.stdout if result.rc == 0 else result.stderr


@pytest.mark.parametrize(
    ("user", "site"),
    [("neta", "netb"), ("neta", "netc"), ("netb", "neta"), ("netc", "netb")],
)
def test_a_site_is_refused_at_once_on_other_sites_ports(
    host: testinfra.host.Host, user: str, site: str
) -> None:
    for port in PORTS[site]:
        answer = tcp_connect(host, user, port)
        assert REFUSED in answer, answer
        took = TOOK.search(answer)
        assert took is not None and float(took[1]) < 1, f"refused, not dropped: {answer}"


@pytest.mark.parametrize("site", sorted(PORTS))
def test_a_site_reaches_its_own_ports(host: testinfra.host.Host, site: str) -> None:
    for port in PORTS[site]:
        assert f"{site} {port} {site}" in connect(host, site, port)


@pytest.mark.parametrize("user", ["www-data", "root"])
def test_nginx_and_root_reach_every_site(host: testinfra.host.Host, user: str) -> None:
    for site, ports in PORTS.items():
        for port in ports:
            assert f"{site} {port} {site}" in connect(host, user, port)


def test_through_nginx_a_site_still_reaches_the_others(host: testinfra.host.Host) -> None:
    for path, expected in [("/", "node netb 3110 netb"), ("/api/", "python netb 4010 netb")]:
        answer = host.run(
            f"runuser -u neta -- curl -sS --max-time 5 -H 'Host: netb.test' http://127.0.0.1{path}"
        )
        assert expected in answer.stdout, answer.stderr


def test_ipv6_loopback_is_guarded_too(host: testinfra.host.Host) -> None:
    # netb listens on ::1 on a port of its extra range for this test.
    host.run(
        "systemd-run --unit netb-v6probe --uid netb --property=RuntimeMaxSec=120 "
        "python3 -m http.server --bind ::1 --directory /tmp 5010"
    )
    try:
        deadline = time.monotonic() + 60  # Python's start is slow on a busy machine
        while time.monotonic() < deadline:
            if host.run("curl -s -o /dev/null http://[::1]:5010/").rc == 0:
                break
            time.sleep(0.1)
        assert "Directory listing" in connect(host, "www-data", 5010, "::1")
        assert REFUSED in tcp_connect(host, "neta", 5010, "::1")
    finally:
        host.run("systemctl stop netb-v6probe")


def test_the_rules_survive_a_restart_of_nftables(host: testinfra.host.Host) -> None:
    host.check_output("systemctl restart nftables")
    assert REFUSED in tcp_connect(host, "neta", 3110)
    assert "netb 3110 netb" in connect(host, "www-data", 3110)


def playbook(name: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"],
         str(REPO / "playbooks" / name), *extra],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "ANSIBLE_ROLES_PATH": str(REPO / "roles"), "ANSIBLE_NOCOLOR": "1"},
    )  # fmt: skip


def test_removing_a_site_removes_only_its_rule(host: testinfra.host.Host) -> None:
    before = host.check_output("nft list table inet siteops")
    assert before.count('comment "siteops net') == 3
    assert host.file("/etc/systemd/system/netc-frontend.spare.service").exists
    run = playbook("remove-site.yml", "-e", "site=netc")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr
    after = host.check_output("nft list table inet siteops")
    assert 'comment "siteops netc"' not in after
    assert 'comment "siteops neta"' in after and 'comment "siteops netb"' in after
    assert REFUSED in tcp_connect(host, "neta", 3110)
    # Every role removed what it made for netc, a process site.
    assert REFUSED in tcp_connect(host, "root", 3120)
    for path in [
        "/etc/systemd/system/netc-frontend.service",
        "/etc/systemd/system/netc-frontend.spare.service",
        "/etc/systemd/system/netc.slice",
        "/etc/nginx/sites-enabled/netc.conf",
        "/etc/nginx/sites-available/netc.conf",
        "/etc/logrotate.d/siteops-netc",
        "/etc/logrotate.d/siteops-netc-nginx",
        "/etc/siteops/backup/netc.conf",
        "/etc/siteops/nftables.d/netc.nft",
        "/srv/sites/netc",
    ]:
        assert not host.file(path).exists, path
    assert host.run("systemctl cat netc-frontend.service").rc != 0
    assert host.run("systemctl is-enabled siteops-backup@netc.timer").stdout.strip() != "enabled"
    assert not host.user("netc").exists and not host.group("netc").exists
    final = host.file("/var/backups/siteops/netc/final")
    assert final.is_symlink and final.linked_to.endswith("-final")
    assert host.run(f"tar -tzf {final.linked_to}/files.tar.gz shared/.env").rc == 0
    # Removing it again, and a dry run of that, change nothing.
    for extra in [[], ["--check"]]:
        again = playbook("remove-site.yml", "-e", "site=netc", *extra)
        assert again.returncode == 0, again.stdout[-3000:] + again.stderr
        assert "changed=0" in again.stdout, again.stdout[-3000:]
        assert f"siteops final backup: {final.linked_to}" in again.stdout
    # A name that is not a site name stops the run before any task.
    bad = playbook("remove-site.yml", "-e", "site=../etc")
    assert bad.returncode != 0
    assert "'../etc' is not a site name" in bad.stdout + bad.stderr
    assert host.file("/etc/nginx/nginx.conf").exists
    # A second converge of the remaining sites changes nothing.
    again = playbook("site.yml", "-e", '{"siteops_only": ["neta", "netb"]}')
    assert again.returncode == 0, again.stdout[-3000:]
    assert "changed=0" in again.stdout, again.stdout[-3000:]
