"""The disposable test host behaves like a fresh systemd VPS."""

import testinfra


def test_systemd_is_pid_1_and_booted(host: testinfra.host.Host) -> None:
    assert host.file("/proc/1/comm").content_string.strip() == "systemd"
    state = host.run("systemctl is-system-running").stdout.strip()
    assert state in ("running", "degraded"), state


def test_apt_installed_a_package_from_the_mirror(host: testinfra.host.Host) -> None:
    assert host.package("tree").is_installed
    assert host.run("tree --version").rc == 0


def test_a_systemd_service_answers_http(host: testinfra.host.Host) -> None:
    assert host.service("nginx").is_running
    assert host.service("nginx").is_enabled
    answer = host.run("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1/")
    assert answer.stdout == "200"
