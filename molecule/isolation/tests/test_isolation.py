"""Two sites on one host cannot read, slow down or stop each other.

Site A is "shop" (Node frontend on 3100, Python API on 4000, 96M memory),
site B is "shop-blog" (Python frontend on 3110). Probes run as A's user.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
import testinfra
import yaml

from siteops.ports import PortRange, ports_of

A, B = "shop", "shop-blog"
A_SLICE, B_SLICE = "shop.slice", r"shop\x2dblog.slice"
BLOCKS = {A: 0, B: 1}
UNITS = {
    "shop-frontend.service": ("node", A, 3100),
    "shop-api.service": ("python", A, 4000),
    "shop-blog-frontend.service": ("python", B, 3110),
}
RESTART_SEC = 2
SCENARIO = Path(__file__).resolve().parent.parent
REPO = SCENARIO.parent.parent


def as_user(
    host: testinfra.host.Host, user: str, command: str
) -> testinfra.backend.base.CommandResult:
    return host.run(f"runuser -u {user} -- sh -c {command!r}")


def show(host: testinfra.host.Host, unit: str, prop: str) -> str:
    """A property of ``unit`` as ``systemctl show`` gives it."""
    return host.check_output(f"systemctl show -P {prop} '{unit}'")


def main_pid(host: testinfra.host.Host, unit: str) -> int:
    return int(show(host, unit, "MainPID"))


def curl(host: testinfra.host.Host, port: int) -> str:
    return host.check_output(f"curl -sS --max-time 5 http://127.0.0.1:{port}/")


@pytest.mark.parametrize(
    "path",
    [
        f"/srv/sites/{B}/shared/.env",
        f"/srv/sites/{B}/shared/uploads",
        f"/srv/sites/{B}/shared/logs/frontend.log",
        f"/srv/sites/{B}",
        f"/srv/sites/{B}/current/app.py",
    ],
)
def test_a_cannot_read_b(host: testinfra.host.Host, path: str) -> None:
    probe = as_user(host, A, f"cat {path} 2>&1 || ls {path} 2>&1")
    assert probe.rc != 0
    assert "Permission denied" in probe.stdout


def test_a_cannot_list_the_sites(host: testinfra.host.Host) -> None:
    probe = as_user(host, A, "ls /srv/sites")
    assert probe.rc != 0
    assert "Permission denied" in probe.stderr


@pytest.mark.parametrize(
    "path",
    [
        f"/srv/sites/{B}/shared/uploads/x",
        f"/srv/sites/{B}/x",
        "/srv/sites/x",
        "/etc/x",
        "/usr/local/bin/x",
        "/etc/systemd/system/x.service",
    ],
)
def test_a_cannot_write_outside_its_tree(host: testinfra.host.Host, path: str) -> None:
    probe = as_user(host, A, f"touch {path}")
    assert probe.rc != 0
    assert "Permission denied" in probe.stderr
    assert not host.file(path).exists


def test_a_can_read_and_write_its_own_shared_files(host: testinfra.host.Host) -> None:
    assert as_user(host, A, f"cat /srv/sites/{A}/shared/.env").stdout.startswith("# BEGIN siteops")
    probe = as_user(
        host, A, f"touch /srv/sites/{A}/shared/uploads/ok && rm /srv/sites/{A}/shared/uploads/ok"
    )
    assert probe.rc == 0, probe.stderr


def test_the_env_file_is_private_and_holds_the_managed_variables(host: testinfra.host.Host) -> None:
    env = host.file(f"/srv/sites/{A}/shared/.env")
    assert (env.user, env.group, env.mode) == (A, A, 0o600)
    lines = env.content_string.splitlines()
    for expected in (
        "SITE_NAME=shop",
        "HOST=127.0.0.1",
        "PORT=3100",
        "FRONTEND_PORT=3100",
        "API_PORT=4000",
    ):
        assert expected in lines


def test_inside_its_unit_a_sees_only_its_own_tree_and_cannot_change_its_code(
    host: testinfra.host.Host,
) -> None:
    pid = main_pid(host, "shop-api.service")
    enter = f"nsenter -t {pid} -m runuser -u {A} -- sh -c"
    assert host.check_output(f"{enter} 'ls /srv/sites'") == A
    write_code = host.run(f"{enter} 'touch /srv/sites/{A}/releases/x'")
    assert "Read-only file system" in write_code.stderr
    write_env = host.run(f"{enter} 'echo X=1 >> /srv/sites/{A}/shared/.env'")
    assert "Read-only file system" in write_env.stderr
    assert (
        host.run(
            f"{enter} 'touch /srv/sites/{A}/shared/uploads/y && rm /srv/sites/{A}/shared/uploads/y'"
        ).rc
        == 0
    )


@pytest.mark.parametrize(("unit", "expected"), UNITS.items())
def test_each_unit_runs_as_its_site_and_answers_on_its_port(
    host: testinfra.host.Host, unit: str, expected: tuple[str, str, int]
) -> None:
    runtime, site, port = expected
    pid = main_pid(host, unit)
    assert host.check_output(f"ps -o user= -p {pid}") == site
    assert curl(host, port) == f"{runtime} {site} {port} {site}"


@pytest.mark.parametrize(("unit", "expected"), UNITS.items())
def test_services_listen_on_loopback_only_inside_their_block(
    host: testinfra.host.Host, unit: str, expected: tuple[str, str, int]
) -> None:
    _, site, port = expected
    pid = main_pid(host, unit)
    listeners = [
        line.split()
        for line in host.check_output("ss -ltnpH").splitlines()
        if f"pid={pid}," in line
    ]
    assert [fields[3] for fields in listeners] == [f"127.0.0.1:{port}"]
    own_range = PortRange.API if unit.endswith("-api.service") else PortRange.FRONTEND
    assert port in ports_of(BLOCKS[site], own_range)


def test_every_unit_scores_at_most_2_in_systemd_analyze_security(host: testinfra.host.Host) -> None:
    scores = {}
    for unit in UNITS:
        out = host.check_output(f"systemd-analyze security --no-pager {unit} | tail -n 1")
        scores[unit] = float(out.split("exposure level for")[1].split(":")[1].split()[0])
    print("systemd-analyze security:", scores)
    assert all(score <= 2.0 for score in scores.values()), scores


def test_each_site_has_its_own_top_level_slice_with_its_limits(host: testinfra.host.Host) -> None:
    assert show(host, A_SLICE, "MemoryMax") == str(96 * 1024 * 1024)
    assert show(host, A_SLICE, "CPUQuotaPerSecUSec") == "500ms"
    assert show(host, A_SLICE, "TasksMax") == "64"
    assert show(host, B_SLICE, "MemoryMax") == str(256 * 1024 * 1024)
    assert show(host, B_SLICE, "CPUQuotaPerSecUSec") == "250ms"
    assert show(host, B_SLICE, "TasksMax") == "128"
    # Not nested: "shop-blog" must not sit inside "shop"'s slice and share its limits.
    assert show(host, B_SLICE, "ControlGroup").endswith(r"/shop\x2dblog.slice")
    assert "/shop.slice/" not in show(host, B_SLICE, "ControlGroup")
    for unit, (_, site, _) in UNITS.items():
        assert show(host, unit, "Slice") == (A_SLICE if site == A else B_SLICE)


def test_a_killed_frontend_is_restarted_and_b_is_untouched(host: testinfra.host.Host) -> None:
    unit = "shop-frontend.service"
    b_pid = main_pid(host, "shop-blog-frontend.service")
    api_pid = main_pid(host, "shop-api.service")
    old = main_pid(host, unit)
    restarts = int(show(host, unit, "NRestarts"))
    host.check_output(f"kill -KILL {old}")
    killed = time.monotonic()
    # Each look is a round trip into the host, slow on a busy machine: the
    # restart's delay is systemd's own record (down, then up again), not ours.
    new, answered = old, None
    while time.monotonic() - killed < RESTART_SEC + 60 and answered is None:
        if new in (0, old):
            new = main_pid(host, unit)
        elif host.run("curl -s --max-time 1 http://127.0.0.1:3100/").rc == 0:
            answered = time.monotonic() - killed
        time.sleep(0.05)
    down = int(show(host, unit, "ActiveExitTimestampMonotonic"))
    up = int(show(host, unit, "ActiveEnterTimestampMonotonic"))
    delay = (up - down) / 1_000_000
    print(f"SIGKILL -> restarted by systemd after {delay:.2f}s, answering here after {answered}s")
    assert new not in (0, old)
    assert int(show(host, unit, "NRestarts")) == restarts + 1
    assert RESTART_SEC <= delay < RESTART_SEC + 1
    assert answered is not None
    assert main_pid(host, "shop-blog-frontend.service") == b_pid
    assert main_pid(host, "shop-api.service") == api_pid


def test_a_memory_hog_in_a_is_killed_at_its_limit_while_b_answers(
    host: testinfra.host.Host,
) -> None:
    cgroup = host.check_output(f"systemctl show -P ControlGroup {A_SLICE}")
    failcnt = f"/sys/fs/cgroup/memory{cgroup}/memory.failcnt"
    hits_before = int(host.check_output(f"cat {failcnt}"))
    grab_256m = "b = [bytearray(8 << 20) for _ in range(32)]; print('survived')"
    hog = host.run(
        f'systemd-run --wait --collect --slice={A_SLICE} --uid={A} python3 -c "{grab_256m}"'
    )
    print(hog.stderr.strip())
    assert hog.rc != 0
    assert "survived" not in hog.stdout
    # systemd 252 (Debian 12) says status=KILL, 257 (Debian 13) status=9/KILL.
    assert re.search(r"status=(9/)?KILL|oom-kill", hog.stderr), hog.stderr
    assert int(host.check_output(f"cat {failcnt}")) > hits_before
    assert curl(host, 3110) == f"python {B} 3110 {B}"


def converge(extra_vars: dict[str, object]) -> str:
    """Run playbooks/site.yml against the test host; return its output."""
    run = subprocess.run(
        [
            "ansible-playbook",
            "-i",
            os.environ["MOLECULE_INVENTORY_FILE"],
            str(REPO / "playbooks" / "site.yml"),
            "-e",
            json.dumps(extra_vars),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "ANSIBLE_ROLES_PATH": str(REPO / "roles"), "ANSIBLE_NOCOLOR": "1"},
    )
    return f"rc={run.returncode}\n{run.stdout}{run.stderr}"


def test_a_record_that_breaks_the_model_fails_before_any_change(host: testinfra.host.Host) -> None:
    bad_site = {
        "port_block": 5,
        "domains": {"primary": "bad.test"},
        "components": {"frontend": {"runtime": "ruby", "port": 3150, "command": "x"}},
    }
    output = converge({"siteops_sites": {"bad-site": bad_site}})
    assert output.startswith("rc=2"), output[-2000:]
    assert "value of runtime must be one of: node, nextjs, python, static, got: ruby" in output
    assert "siteops_sites.bad-site.components.frontend" in output
    assert "changed=0" in output
    assert not host.user("bad-site").exists
    assert not host.file("/srv/sites/bad-site").exists


def test_static_sites_can_be_traversed_by_nginx_only(host: testinfra.host.Host) -> None:
    page = "/srv/sites/docs/current/index.html"
    assert "not been deployed yet" in as_user(host, "www-data", f"cat {page}").stdout
    for probe in ("ls /srv/sites/docs", "cat /srv/sites/docs/shared/.env", f"ls /srv/sites/{A}"):
        assert as_user(host, "www-data", probe).rc != 0, probe
    assert "Permission denied" in as_user(host, A, f"cat {page}").stderr


def test_logs_rotate_without_losing_what_services_append(host: testinfra.host.Host) -> None:
    log = f"/srv/sites/{A}/shared/logs/api-error.log"
    curl(host, 4000)
    assert host.file(log).size > 0
    host.check_output(f"logrotate --force /etc/logrotate.d/siteops-{A}")
    assert host.run(f"ls /srv/sites/{A}/shared/logs/api-error.log-*").rc == 0
    curl(host, 4000)
    rotated = host.file(log)
    assert (rotated.user, rotated.mode) == (A, 0o640)
    # copytruncate + O_APPEND: the next line starts the file (no hole of NULs).
    assert rotated.content_string.startswith("127.0.0.1 - - ["), rotated.content_string[:80]


def test_env_change_restarts_only_that_sites_units(host: testinfra.host.Host) -> None:
    pids = {unit: main_pid(host, unit) for unit in UNITS}
    env = f"/srv/sites/{A}/shared/.env"
    host.check_output(f"printf 'FEATURE_FLAG=on\\nHOST=0.0.0.0\\n' >> {env}")
    output = converge({"siteops_only": [A]})
    assert output.startswith("rc=0"), output[-2000:]
    assert main_pid(host, "shop-frontend.service") != pids["shop-frontend.service"]
    assert main_pid(host, "shop-api.service") != pids["shop-api.service"]
    assert main_pid(host, "shop-blog-frontend.service") == pids["shop-blog-frontend.service"]
    assert "shop-blog" not in output.split("PLAY RECAP")[0].replace("shop-blog-", "")
    # Hand-set lines stay, even one that overrides a managed variable...
    lines = host.file(env).content_string.splitlines()
    assert lines[-2:] == ["FEATURE_FLAG=on", "HOST=0.0.0.0"]
    # ...unless the run is told to enforce the managed values.
    output = converge({"siteops_only": [A], "site_user_env_force": True})
    assert output.startswith("rc=0"), output[-2000:]
    lines = host.file(env).content_string.splitlines()
    assert lines[-1] == "FEATURE_FLAG=on"
    assert lines.count("HOST=127.0.0.1") == 1
    assert "HOST=0.0.0.0" not in lines
    assert curl(host, 3100) == f"node {A} 3100 {A}"


def test_a_removed_component_loses_its_unit_and_comes_back_when_re_added(
    host: testinfra.host.Host,
) -> None:
    sites = yaml.safe_load(
        (SCENARIO / "host_vars" / "siteops-isolation" / "sites.yml").read_text()
    )["siteops_sites"]
    del sites[A]["components"]["api"]
    b_pid = main_pid(host, "shop-blog-frontend.service")
    output = converge({"siteops_sites": sites, "siteops_only": [A]})
    assert output.startswith("rc=0"), output[-2000:]
    assert not host.file("/etc/systemd/system/shop-api.service").exists
    assert not host.file("/etc/systemd/system/shop-api.spare.service").exists
    assert host.run("systemctl is-active shop-api.service").stdout.strip() != "active"
    assert host.run("curl -s --max-time 2 http://127.0.0.1:4000/").rc != 0
    assert main_pid(host, "shop-blog-frontend.service") == b_pid

    output = converge({"siteops_only": [A]})
    assert output.startswith("rc=0"), output[-2000:]
    assert curl(host, 4000) == f"python {A} 4000 {A}"
    # Its spare slot for switching releases is back too, on the other port of its pair.
    spare = host.file("/etc/systemd/system/shop-api.spare.service")
    assert spare.exists and "PORT=4001 exec" in spare.content_string


ACCESS = "/usr/local/sbin/siteops-access"


def as_access(host: testinfra.host.Host, request: str, site: str = A) -> tuple[int, str]:
    """What the forced command of shop's key "dev" does with ``request`` (sudo as over SSH)."""
    done = host.run(
        f"SSH_ORIGINAL_COMMAND={request!r} runuser -u siteops-access -- "
        f"sudo -n {ACCESS} {site} dev </dev/null"
    )
    return done.rc, done.stdout + done.stderr


def test_a_deploy_key_is_forced_to_its_own_site_and_may_run_nothing_else_as_root(
    host: testinfra.host.Host,
) -> None:
    keys = host.file("/var/lib/siteops/access/.ssh/authorized_keys")
    assert (keys.user, keys.mode) == ("root", 0o644)  # the account cannot change its keys
    lines = [line for line in keys.content_string.splitlines() if not line.startswith("#")]
    assert len(lines) == 1
    assert lines[0].startswith(f'restrict,command="sudo -n {ACCESS} {A} dev" ssh-ed25519 ')
    assert not host.file(f"/etc/sudoers.d/siteops-access-{B}").exists
    rules = host.file(f"/etc/sudoers.d/siteops-access-{A}")
    assert (rules.user, rules.mode) == ("root", 0o440)
    # sudo allows exactly A's access command for "dev", nothing else.
    allowed = host.run("sudo -l -U siteops-access").stdout
    assert f"(root) NOPASSWD: {ACCESS} {A} dev" in allowed
    assert allowed.count("NOPASSWD") == 1
    for command in (f"{ACCESS} {B} dev", f"{ACCESS} {A} other", "id", "/bin/sh -c id"):
        done = host.run(f"runuser -u siteops-access -- sudo -n {command} </dev/null")
        assert done.rc != 0 and "uid=0" not in done.stdout, command
    # The access command: its own site's releases and status; never another site's.
    code, out = as_access(host, f"releases {A}")
    assert code == 0, out
    assert json.loads(out)["site"] == A
    code, out = as_access(host, f"status {A}")
    assert code == 0 and "unit shop-frontend.service: active" in out, out
    for request in (
        f"releases {B}",
        f"logs {B}",
        "sh",
        f"status {A}; id",
        f"deploy {B} 20261128T120000Z",
    ):
        code, out = as_access(host, request)
        assert code == 2 and "uid=0" not in out, (request, out)
        assert "siteops-access:" in out, out
