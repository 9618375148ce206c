"""End to end: releases of sites on a sandbox host (deploy, health-gated switch, rollback).

Its own sandbox (baked image, Debian 13). Sites: rstatic (static), rnode (node), rpy (python). The
tests build on each other in file order. This module runs every playbook with Ansible's own linear
strategy (ANSIBLE_STRATEGY=linear): Mitogen is optional, and the roles must work without it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.e2e.conftest import Host, sandbox_host

NAME = "siteops-e2e-rel"
FIXTURES = REPO / "molecule" / "shared" / "fixtures"
NODE_V1 = (FIXTURES / "node-app" / "server.js").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    # Release mechanics, not installation: the baked image saves apt time.
    yield from sandbox_host(
        tmp_path_factory.mktemp("rel"), NAME, 2242, 8100, 8463, "--baked",
        env={"ANSIBLE_STRATEGY": "linear"},
    )  # fmt: skip


def release(tmp: Path, files: dict[str, str]) -> str:
    """A source directory holding ``files``."""
    tmp.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (tmp / name).write_text(text, encoding="utf-8")
    return str(tmp)


def releases(host: Host, site: str) -> dict[str, object]:
    data: dict[str, object] = json.loads(host.siteops("releases", site, "--json").stdout)
    return data


def page(host: Host, domain: str) -> tuple[int, str]:
    code, body = host.get(domain)
    return code, body.strip()


def release_dirs(host: Host, site: str) -> list[str]:
    return host.ssh(f"sudo -n ls /srv/sites/{site}/releases").stdout.split()


def test_node_python_and_static_apps_each_deploy_and_serve(host: Host, tmp_path: Path) -> None:
    for site, runtime in [("rstatic", "static"), ("rnode", "node"), ("rpy", "python")]:
        host.siteops("add-site", site, "--domain", f"{site}.test", "--runtime", runtime, "--no-db")
    sources = {
        "rstatic": release(tmp_path / "s1", {"index.html": "<h1>static v1</h1>\n"}),
        "rnode": release(tmp_path / "n1", {"server.js": NODE_V1}),
        "rpy": release(
            tmp_path / "p1", {"app.py": (FIXTURES / "python-app" / "app.py").read_text("utf-8")}
        ),
    }
    for site, source in sources.items():
        started = time.monotonic()
        host.siteops("deploy", site, "--source", source)
        print(f"deploy of {site}: {time.monotonic() - started:.1f}s")
    assert page(host, "rstatic.test") == (200, "<h1>static v1</h1>")
    code, body = page(host, "rnode.test")
    assert code == 200 and body.startswith("node rnode 31") and body.endswith("rnode")
    code, body = page(host, "rpy.test")
    assert code == 200 and body.startswith("python rpy 31") and body.endswith("rpy")


def test_twenty_deploys_under_a_request_loop_never_miss_a_path(host: Host, tmp_path: Path) -> None:
    answers: Counter[str] = Counter()
    stop = threading.Event()

    def loop() -> None:
        # About 10 requests a second: under the site's rate limit (30 r/s), which
        # would answer 429 and get the client banned by fail2ban.
        while not stop.wait(0.1):
            code, body = host.get("rstatic.test")
            answers["ok" if code == 200 and "static v" in body else f"{code}"] += 1

    looper = threading.Thread(target=loop)
    looper.start()
    started = time.monotonic()
    try:
        for n in range(2, 22):
            source = release(tmp_path / f"s{n}", {"index.html": f"<h1>static v{n}</h1>\n"})
            host.siteops("deploy", "rstatic", "--source", source)
    finally:
        stop.set()
        looper.join()
    elapsed = time.monotonic() - started
    print(f"20 deploys in {elapsed:.1f}s ({elapsed / 20:.1f}s each); answers {dict(answers)}")
    assert set(answers) == {"ok"}, f"errors while deploying: {dict(answers)}"
    assert answers["ok"] > 100
    assert page(host, "rstatic.test") == (200, "<h1>static v21</h1>")
    # Never more than the 5 releases kept (plus the placeholder).
    assert len([d for d in release_dirs(host, "rstatic") if d != "placeholder"]) == 5


def test_a_broken_release_is_switched_back_and_logged_as_failed(host: Host, tmp_path: Path) -> None:
    v2 = NODE_V1.replace("res.end(`node", "res.end(`v2 node")
    host.siteops("deploy", "rnode", "--source", release(tmp_path / "n2", {"server.js": v2}))
    assert host.get("rnode.test")[1].startswith("v2 node rnode")
    broken = "console.error('v3 cannot start: missing setting');\nprocess.exit(1);\n"
    done = host.siteops(
        "deploy", "rnode", "--source", release(tmp_path / "n3", {"server.js": broken}),
        "--health-timeout", "8", check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "was not deployed" in done.stderr
    assert host.get("rnode.test")[1].startswith("v2 node rnode")
    log = releases(host, "rnode")["log"]
    assert isinstance(log, list)
    assert log[-1]["result"] == "failed"
    assert "health check failed" in log[-1]["message"]
    # The failed build is not kept on disk.
    assert log[-1]["id"] not in release_dirs(host, "rnode")


def test_rollback_serves_the_previous_good_release_and_marks_the_other_bad(host: Host) -> None:
    before = releases(host, "rnode")
    host.siteops("rollback", "rnode")
    assert host.get("rnode.test")[1].startswith("node rnode")  # v1 again
    after = releases(host, "rnode")
    log = after["log"]
    assert isinstance(log, list)
    assert after["current"] != before["current"]
    assert {"id": before["current"], "result": "bad"}.items() <= log[-2].items()
    # The bad release is skipped by a later rollback: nothing good is left before v1.
    again = host.siteops("rollback", "rnode", check=False)
    assert again.returncode == 2
    assert "no release to roll back to" in again.stderr


def test_a_second_deploy_of_the_same_site_is_refused_naming_the_holder(
    host: Host, tmp_path: Path
) -> None:
    slow = "setTimeout(() => {\n" + NODE_V1 + "}, 6000);\n"
    first = host.start(
        "deploy", "rnode", "--source", release(tmp_path / "slow", {"server.js": slow})
    )
    deadline = time.monotonic() + 60
    while host.ssh("sudo -n test -d /srv/sites/rnode/.release.lock").returncode != 0:
        assert time.monotonic() < deadline, "the first deploy never took the lock"
        time.sleep(0.2)
    # The first deploy holds the host's lock: a second one waits --lock-timeout, then
    # gives up naming it. (The host's per-site release lock, which also refuses a
    # second deploy of one site, is for runs of deploy.yml without siteops.)
    second = host.siteops(
        "--lock-timeout", "2", "deploy", "rnode", "--source",
        release(tmp_path / "other", {"server.js": NODE_V1}), check=False,
    )  # fmt: skip
    out, err = first.communicate(timeout=120)
    print(out, err[-1500:])
    assert first.returncode == 0
    assert second.returncode == 75
    assert re.search(r"host 'sandbox' is locked by \S+ running `siteops deploy rnode` "
                     r"\(pid \d+\)", second.stderr), second.stderr  # fmt: skip
    # Neither the refused deploy nor the finished one leaves its uploaded archive.
    assert host.ssh("sudo -n ls -A /var/lib/siteops/incoming").stdout.split() == []


def test_a_git_repository_deploys_with_its_commit_in_the_release_id(
    host: Host, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    release(repo, {"index.html": "<h1>from git</h1>\n"})
    git = shutil.which("git")
    assert git is not None
    for args in (["init", "-q"], ["add", "."], ["-c", "user.name=t", "-c", "user.email=t@t",
                                                "commit", "-qm", "v1"]):  # fmt: skip
        subprocess.run([git, "-C", str(repo), *args], check=True)
    sha = subprocess.run(
        [git, "-C", str(repo), "rev-parse", "--short", "HEAD"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    host.siteops("deploy", "rstatic", "--source", str(repo), "--ref", "HEAD")
    assert page(host, "rstatic.test") == (200, "<h1>from git</h1>")
    assert str(releases(host, "rstatic")["current"]).endswith(f"-{sha}")


GREETER = """\
const http = require("http");
http.createServer((req, res) => {
  res.end(`greeting ${process.env.GREETING === undefined ? "(none)" : process.env.GREETING}\\n`);
}).listen(Number(process.env.PORT), "127.0.0.1");
"""


def test_env_set_reaches_the_app_after_its_restart_and_the_value_stays_secret(
    host: Host, tmp_path: Path
) -> None:
    host.siteops(
        "deploy", "rnode", "--source", release(tmp_path / "greeter", {"server.js": GREETER})
    )
    assert page(host, "rnode.test") == (200, "greeting (none)")
    env_file = host.ssh("sudo -n cat /srv/sites/rnode/shared/.env").stdout
    value = 'it\'s a "secret" $HOME s3cr3t-e2e'

    done = host.siteops("env", "set", "rnode", f"GREETING={value}", "MODE=e2e")
    assert "changed GREETING, MODE; converged (" in done.stdout
    assert re.search(r"rnode-frontend\.service active on 31\d\d$", done.stdout.strip())
    assert page(host, "rnode.test") == (200, f"greeting {value}")
    listed = json.loads(host.siteops("env", "rnode", "--json").stdout)["variables"]
    mine = {e["key"]: e["value"] for e in listed if not e["managed"]}
    assert mine == {"GREETING": "********", "MODE": "********"}
    assert {"SITE_NAME", "PORT"} <= {e["key"] for e in listed if e["managed"]}
    revealed = json.loads(host.siteops("env", "rnode", "--reveal", "--json").stdout)["variables"]
    assert {e["key"]: e["value"] for e in revealed}["GREETING"] == value

    # The roles' keys are refused, and the file stays as it was.
    before = host.ssh("sudo -n cat /srv/sites/rnode/shared/.env").stdout
    refused = host.siteops("env", "set", "rnode", "PORT=1", check=False)
    assert refused.returncode == 2 and "PORT: managed by siteops" in refused.stderr
    assert host.ssh("sudo -n cat /srv/sites/rnode/shared/.env").stdout == before
    assert before.startswith(env_file.rstrip("\n"))  # the managed blocks are untouched

    # The value is in no log, runner artifact, registry or audit line.
    kept = [p for p in [*host.state.rglob("*"), *host.inventory.rglob("*")] if p.is_file()]
    assert kept
    for path in kept:
        assert b"s3cr3t-e2e" not in path.read_bytes(), path
    audit = host.ssh("sudo -n cat /var/log/siteops/audit.jsonl").stdout
    assert "s3cr3t-e2e" not in audit and "GREETING=***" in audit

    restarted = host.siteops("restart", "rnode", "-c", "frontend", check=False)
    print(host.ssh("sudo -n journalctl -u rnode-frontend -n 25 --no-pager").stdout)
    assert restarted.returncode == 0, restarted.stdout
    assert re.fullmatch(r"rnode-frontend\.service active on 31\d\d", restarted.stdout.strip())
    host.siteops("env", "unset", "rnode", "GREETING")
    assert page(host, "rnode.test") == (200, "greeting (none)")
    assert host.siteops("env", "unset", "rnode", "GREETING").stdout.strip() == (
        "rnode: nothing changed")  # fmt: skip
