"""The web edge: two sites over HTTPS with certificates from a real ACME CA.

All requests are made inside the test host with real Host headers / SNI; the
site names resolve to 127.0.0.1 there and the host trusts Pebble's root.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import testinfra
import yaml

REPO = Path(__file__).resolve().parents[3]
SITES = {"site-a.test": "node site-a 3100 site-a", "site-b.test": "static fixture site"}


def converge(extra_vars: dict[str, object] | None = None) -> subprocess.CompletedProcess[str]:
    """Run playbooks/site.yml against the test host."""
    return subprocess.run(
        [
            "ansible-playbook",
            "-i",
            os.environ["MOLECULE_INVENTORY_FILE"],
            str(REPO / "playbooks" / "site.yml"),
            "-e",
            json.dumps(extra_vars or {}),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "ANSIBLE_ROLES_PATH": str(REPO / "roles"), "ANSIBLE_NOCOLOR": "1"},
    )


def curl(host: testinfra.host.Host, args: str) -> testinfra.backend.base.CommandResult:
    return host.run(f"curl -sS --max-time 5 {args}")


def issued_serials(host: testinfra.host.Host) -> list[str]:
    log = host.check_output("journalctl -u pebble --no-pager -o cat")
    return [
        line.split("serial ")[1].split()[0]
        for line in log.splitlines()
        if "Issued certificate serial" in line
    ]


def count_orders(host: testinfra.host.Host) -> int:
    return host.check_output("journalctl -u pebble --no-pager -o cat").count("Added order")


def served_serial(host: testinfra.host.Host, name: str) -> str:
    out = host.check_output(
        f"openssl s_client -connect 127.0.0.1:443 -servername {name} </dev/null 2>/dev/null"
        " | openssl x509 -noout -serial"
    )
    return out.split("=")[1].lower()


@pytest.mark.parametrize(("name", "body"), SITES.items())
def test_each_site_answers_over_https_with_its_own_certificate(
    host: testinfra.host.Host, name: str, body: str
) -> None:
    answer = curl(host, f"https://{name}/")
    assert answer.rc == 0, answer.stderr
    assert body in answer.stdout
    cert = host.check_output(
        f"openssl s_client -connect 127.0.0.1:443 -servername {name} </dev/null 2>/dev/null"
        " | openssl x509 -noout -issuer -ext subjectAltName"
    )
    assert "Pebble" in cert
    site = name.removesuffix(".test")
    expected = {"site-a": "DNS:site-a.test, DNS:www.site-a.test", "site-b": "DNS:site-b.test"}[site]
    assert expected in cert


def test_the_api_path_goes_to_the_api_component(host: testinfra.host.Host) -> None:
    assert curl(host, "https://site-a.test/api/x").stdout.strip() == "python site-a 4000 site-a"
    assert curl(host, "https://www.site-a.test/").stdout.strip() == "node site-a 3100 site-a"


@pytest.mark.parametrize("name", SITES)
def test_http_redirects_to_https_with_hsts_and_security_headers(
    host: testinfra.host.Host, name: str
) -> None:
    redirect = curl(host, f"-o /dev/null -w '%{{http_code}} %{{redirect_url}}' http://{name}/x?y=1")
    assert redirect.stdout == f"301 https://{name}/x?y=1"
    headers = curl(host, f"-D - -o /dev/null https://{name}/").stdout.lower()
    assert "strict-transport-security: max-age=63072000" in headers
    assert "x-content-type-options: nosniff" in headers
    assert "x-frame-options: sameorigin" in headers
    assert "server: nginx\r" in headers  # no version (server_tokens off)


def test_acme_challenges_are_served_over_http_not_redirected(host: testinfra.host.Host) -> None:
    host.check_output("echo token > /var/lib/siteops/acme/.well-known/acme-challenge/t1")
    try:
        for name in (*SITES, "unknown.test"):
            answer = curl(host, f"-H 'Host: {name}' http://127.0.0.1/.well-known/acme-challenge/t1")
            assert answer.stdout == "token\n", name
    finally:
        host.run("rm -f /var/lib/siteops/acme/.well-known/acme-challenge/t1")


@pytest.mark.parametrize(
    ("version", "accepted"), [("tls1_1", False), ("tls1_2", True), ("tls1_3", True)]
)
def test_only_tls_1_2_and_1_3_are_accepted(
    host: testinfra.host.Host, version: str, accepted: bool
) -> None:
    # SECLEVEL=0 lets this client offer TLS 1.1 at all: the refusal must be the server's.
    handshake = host.run(
        f"openssl s_client -connect 127.0.0.1:443 -servername site-a.test -{version} "
        "-cipher 'DEFAULT@SECLEVEL=0' </dev/null"
    )
    assert (handshake.rc == 0) is accepted, handshake.stdout[-500:] + handshake.stderr[-500:]


def test_an_unknown_host_gets_no_sites_content(host: testinfra.host.Host) -> None:
    plain = curl(host, "-H 'Host: unknown.test' http://127.0.0.1/")
    assert plain.rc == 52  # connection closed without an answer (444)
    tls = curl(host, "--resolve unknown.test:443:127.0.0.1 -k https://unknown.test/")
    assert tls.rc != 0
    assert "static fixture" not in tls.stdout and "node" not in tls.stdout


def test_release_dotfiles_of_a_static_site_are_never_served(host: testinfra.host.Host) -> None:
    answer = curl(host, "-o /dev/null -w '%{http_code}' https://site-b.test/.env")
    assert answer.stdout == "403"


def test_a_burst_beyond_the_api_limit_gets_429(host: testinfra.host.Host) -> None:
    codes = host.check_output(
        "for i in $(seq 60); do "
        "curl -s -o /dev/null -w '%{http_code}\\n' https://site-a.test/api/; done"
    ).split()
    print(f"60 fast /api/ requests: {codes.count('200')} x 200, {codes.count('429')} x 429")
    assert codes.count("429") > 0
    assert codes.count("200") >= 20
    assert set(codes) <= {"200", "429"}


def test_three_converges_order_exactly_one_certificate_per_site(host: testinfra.host.Host) -> None:
    # Converge and idempotence have already run; this is the third converge.
    run = converge()
    assert run.returncode == 0, run.stdout[-3000:]
    serials = issued_serials(host)
    print(f"Pebble issued {len(serials)} certificates after three converges")
    assert len(serials) == 2
    for site in ("site-a", "site-b"):
        assert (
            host.check_output(f"ls /etc/letsencrypt/archive/{site}").split().count("cert1.pem") == 1
        )
        assert "cert2.pem" not in host.check_output(f"ls /etc/letsencrypt/archive/{site}")


def test_a_forced_renewal_is_served_after_a_reload_not_a_restart(host: testinfra.host.Host) -> None:
    before = served_serial(host, "site-a.test")
    master = host.check_output("cat /run/nginx.pid")
    host.check_output(
        "REQUESTS_CA_BUNDLE=/etc/pebble/ca.pem certbot renew --cert-name site-a --force-renewal "
        "--no-random-sleep-on-renew --quiet"
    )
    deadline = time.monotonic() + 60  # each look is a round trip: slow on a busy machine
    after = before
    while after == before and time.monotonic() < deadline:
        time.sleep(0.2)
        after = served_serial(host, "site-a.test")
    print(f"site-a serial {before} -> {after}")
    assert after != before
    assert after in [s.lower() for s in issued_serials(host)]
    assert host.check_output("cat /run/nginx.pid") == master


def test_a_name_that_does_not_resolve_places_no_order(host: testinfra.host.Host) -> None:
    orders_before = host.check_output(
        "journalctl -u pebble --no-pager -o cat | grep -c 'Added order' || true"
    )
    sites = _sites()
    sites["site-b"]["domains"]["aliases"] = ["nowhere.invalid"]
    run = converge({"siteops_sites": sites, "siteops_only": ["site-b"]})
    assert run.returncode != 0
    output = run.stdout + run.stderr
    assert "Not ordering certificates: nowhere.invalid" in output
    assert "DNS A/AAAA record" in output
    orders_after = host.check_output(
        "journalctl -u pebble --no-pager -o cat | grep -c 'Added order' || true"
    )
    assert orders_after == orders_before
    assert curl(host, "https://site-b.test/").rc == 0


def test_a_broken_site_config_is_rolled_back_while_the_other_site_keeps_answering(
    host: testinfra.host.Host,
) -> None:
    config = "/etc/nginx/sites-available/site-b.conf"
    before = host.file(config).sha256sum
    host.check_output(
        'nohup sh -c \'for i in $(seq 150); do curl -s -o /dev/null -w "%{http_code}\\n" '
        "https://site-a.test/; sleep 0.05; done' > /tmp/site-a-codes 2>&1 &"
    )
    run = converge(
        {"siteops_only": ["site-b"], "nginx_site_server_extra": {"site-b": "not_a_directive on;"}}
    )
    output = run.stdout + run.stderr
    assert run.returncode != 0
    assert 'unknown directive "not_a_directive"' in output
    assert "previous one was restored" in output
    assert host.file(config).sha256sum == before
    assert host.run("nginx -t").rc == 0
    kept = host.run("ls /etc/nginx/sites-available/ | grep '~$'")
    assert kept.stdout == "", "the copy of the previous config is removed once it is back"
    # The 150 requests take 7.5 s and more (longer on a busy machine): wait for the last.
    deadline = time.monotonic() + 60
    codes = host.check_output("cat /tmp/site-a-codes").split()
    while len(codes) < 150 and time.monotonic() < deadline:
        time.sleep(0.5)
        codes = host.check_output("cat /tmp/site-a-codes").split()
    print(f"site-a during the broken run: {len(codes)} requests, {codes.count('200')} x 200")
    assert len(codes) == 150
    assert set(codes) == {"200"}
    assert curl(host, "https://site-b.test/").rc == 0


def test_the_firewall_admits_only_ssh_http_and_https(host: testinfra.host.Host) -> None:
    status = host.check_output("ufw status verbose")
    assert "Status: active" in status
    assert "Default: deny (incoming)" in status
    allowed = sorted({line.split()[0] for line in status.splitlines() if "ALLOW IN" in line})
    assert allowed == ["22/tcp", "443/tcp", "80/tcp"]


def test_fail2ban_guards_ssh_and_the_rate_limits(host: testinfra.host.Host) -> None:
    jails = host.check_output("fail2ban-client status")
    assert "sshd" in jails
    assert "nginx-limit-req" in jails


def test_certificates_renew_from_a_randomised_timer(host: testinfra.host.Host) -> None:
    assert host.service("certbot.timer").is_enabled
    assert host.service("certbot.timer").is_running
    assert host.check_output("systemctl show -P RandomizedDelayUSec certbot.timer") != "0"
    hook = host.file("/etc/letsencrypt/renewal-hooks/deploy/siteops-reload-nginx")
    assert hook.mode == 0o755
    assert "nginx -t" in hook.content_string


def test_security_updates_install_automatically(host: testinfra.host.Host) -> None:
    config = host.file("/etc/apt/apt.conf.d/20auto-upgrades").content_string
    assert 'APT::Periodic::Unattended-Upgrade "1";' in config
    assert host.service("unattended-upgrades").is_enabled


def test_turning_tls_off_removes_the_sites_certificate(host: testinfra.host.Host) -> None:
    # Runs last: site-b leaves HTTPS for good.
    sites = _sites()
    sites["site-b"]["tls"]["enabled"] = False
    run = converge({"siteops_sites": sites, "siteops_only": ["site-b"]})
    assert run.returncode == 0, run.stdout[-3000:]
    assert not host.file("/etc/letsencrypt/live/site-b").exists
    assert not host.file("/etc/letsencrypt/renewal/site-b.conf").exists
    answer = curl(host, "-o /dev/null -w '%{http_code}' http://site-b.test/")
    assert answer.stdout == "200"
    assert host.file("/etc/letsencrypt/live/site-a/fullchain.pem").exists


def _sites() -> dict[str, Any]:
    path = Path(__file__).resolve().parents[1] / "host_vars" / "siteops-web" / "sites.yml"
    return yaml.safe_load(path.read_text())["siteops_sites"]
