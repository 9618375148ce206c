"""End to end: the siteops CLI, as a person runs it, against a sandbox host reached over SSH.

One sandbox (its own container name, ports and inventory) serves the whole
module; the tests run in file order and build on each other, like a session
at the terminal: bring the host up, add sites (two at once), try bad input
and a dry run, interrupt a run and finish it, kill one and finish it, look
at status and logs,
remove a site. Needs the container engine and the test host image
(`./dev e2e` sets both up).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from siteops.guard import PRIVATE_OPTION, RUN_ID, marked
from siteops.inventory import load_host_sites
from tests.e2e.conftest import Host, sandbox_host

NAME = "siteops-e2e-sandbox"
SSH_PORT, HTTP_PORT, HTTPS_PORT = 2232, 8090, 8453


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    yield from sandbox_host(tmp_path_factory.mktemp("e2e"), NAME, SSH_PORT, HTTP_PORT, HTTPS_PORT)


def test_the_sandbox_is_reached_over_ssh_as_a_non_root_user_with_sudo(host: Host) -> None:
    assert host.ssh("id -un").stdout.strip() == "deploy"
    assert host.ssh("sudo -n id -u").stdout.strip() == "0"
    status = json.loads(host.siteops("sandbox", "status", "--json").stdout)
    assert (status["container"], status["ssh"], status["http"]) == ("running", SSH_PORT, HTTP_PORT)


def test_two_concurrent_add_sites_both_finish_with_their_own_blocks(host: Host) -> None:
    started = time.monotonic()
    first = host.start("add-site", "alpha", "--domain", "alpha.test", "--domain",
                       "www.alpha.test", "--runtime", "static")  # fmt: skip
    time.sleep(0.3)
    second = host.start("add-site", "beta", "--domain", "beta.test", "--runtime", "static",
                        "--cache")  # fmt: skip
    outputs = [process.communicate(timeout=600) for process in (first, second)]
    elapsed = time.monotonic() - started
    for process, (out, err) in zip((first, second), outputs, strict=True):
        print(out, err[-1500:])
        assert process.returncode == 0, err
    print(f"two add-site run at once: {elapsed:.1f}s in all")
    sites = load_host_sites(host.sites_file)  # valid, or this raises
    assert {n: s.status for n, s in sites.sites.items()} == {"alpha": "active", "beta": "active"}
    assert sites.sites["alpha"].port_block != sites.sites["beta"].port_block


def test_each_site_answers_through_nginx_with_its_own_content(host: Host) -> None:
    for domain, site in [("alpha.test", "alpha"), ("www.alpha.test", "alpha"),
                         ("beta.test", "beta")]:  # fmt: skip
        code, body = host.get(domain)
        assert code == 200
        assert f"Site {site} has not been deployed yet" in body
    code, body = host.get("unknown.test")
    assert code == 0 or "deployed" not in body  # the default server closes the connection


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["alpha", "--domain", "other.test"], "site 'alpha' already exists"),
        (["gamma", "--domain", "beta.test"], "'beta.test' is already served by site 'beta'"),
        (["Gamma_1", "--domain", "gamma.test"], "site name 'Gamma_1' may use only"),
    ],
)
def test_a_taken_name_or_domain_is_refused_and_the_registry_is_untouched(
    host: Host, args: list[str], problem: str
) -> None:
    before = host.sites_file.read_bytes()
    done = host.siteops("add-site", *args, check=False)
    assert done.returncode == 2
    assert problem in done.stderr
    assert host.sites_file.read_bytes() == before


# A static site's dry run also checks nginx's ACL on directories that do not exist yet.
@pytest.mark.parametrize("kind", [["--runtime", "python", "--api"], ["--runtime", "static"]],
                         ids=["python-api", "static"])  # fmt: skip
def test_a_dry_run_changes_nothing_on_the_host_or_in_the_registry(
    host: Host, kind: list[str]
) -> None:
    before = {p: p.read_bytes() for p in host.inventory.rglob("*") if p.is_file()}
    done = host.siteops("add-site", "gamma", "--domain", "gamma.test", *kind, "--dry-run")
    assert "would get port block 2" in done.stdout
    assert re.search(r"\d+ would change", done.stdout)
    after = {p: p.read_bytes() for p in host.inventory.rglob("*") if p.is_file()}
    assert after == before
    probe = host.ssh("id gamma; sudo -n ls /srv/sites /etc/nginx/sites-enabled /etc/systemd/system")
    assert "no such user" in probe.stderr
    assert "gamma" not in probe.stdout
    assert host.get("gamma.test")[0] == 0


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, waiting for init to reap it, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _descendants(pid: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                parents[int(entry.name)] = int(
                    (entry / "stat").read_text().rpartition(")")[2].split()[1]
                )
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        children = {child for child, ppid in parents.items() if ppid == parent}
        todo.extend(children - found)
        found |= children
    return found


def _run_of(pid: int) -> tuple[set[int], set[str]]:
    """The processes a siteops process started, and the run ids they carry (siteops.guard)."""
    started = _descendants(pid)
    run_ids: set[str] = set()
    for child in started:
        with contextlib.suppress(OSError):
            environ = Path(f"/proc/{child}/environ").read_bytes().decode().split("\0")
            run_ids |= {v.split("=", 1)[1] for v in environ if v.startswith(f"{RUN_ID}=")}
    assert run_ids, f"no process of the run carries {RUN_ID}: {started}"
    return started, run_ids


def _private_dirs(pids: set[int]) -> list[Path]:
    """The private folders the guards among ``pids`` were given (``--private DIR``)."""
    found = []
    for pid in pids:
        with contextlib.suppress(OSError):
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
            if "siteops.guard" in argv and PRIVATE_OPTION in argv:
                found.append(Path(argv[argv.index(PRIVATE_OPTION) + 1]))
    return found


def _gone_within(seconds: float, run: tuple[set[int], set[str]], after: str) -> None:
    """Every process of ``run`` (from :func:`_run_of`) ends within ``seconds``."""
    started, run_ids = run
    since = time.monotonic()
    while any(_alive(pid) for pid in started) or any(marked(i) for i in run_ids):
        left = [p for p in started if _alive(p)] + [p for i in run_ids for p in marked(i)]
        assert time.monotonic() - since < seconds, f"still running {seconds}s after {after}: {left}"
        time.sleep(0.1)
    print(f"{len(started)} processes of the run gone {time.monotonic() - since:.1f}s after {after}")


def test_an_interrupted_add_site_is_finished_by_apply_without_duplicates(host: Host) -> None:
    run = host.start("add-site", "delta", "--domain", "delta.test", "--runtime", "node", "--api")
    assert run.stderr is not None
    seen = []
    for line in run.stderr:
        seen.append(line)
        if re.match(r"\s+\[(\d+)\]", line) and int(re.findall(r"\[(\d+)\]", line)[0]) >= 30:
            started = _run_of(run.pid)
            run.send_signal(signal.SIGINT)  # Ctrl-C halfway through the site's run
            break
    rest = run.communicate(timeout=120)[1]
    # Nothing of the run is left, Mitogen's helpers (in sessions of their own) included.
    _gone_within(5, started, "Ctrl-C")
    print("".join(seen[-3:]) + rest)
    assert run.returncode == 130
    assert "siteops apply delta" in rest
    assert load_host_sites(host.sites_file).sites["delta"].status == "failed"

    host.siteops("apply", "delta")

    sites = load_host_sites(host.sites_file)
    assert sites.sites["delta"].status == "active"
    assert len({s.port_block for s in sites.sites.values()}) == len(sites.sites)
    probe = host.ssh(
        "getent passwd | grep -c '^delta:'; sudo -n ls /etc/nginx/sites-enabled | grep -c delta;"
        " sudo -n ls /etc/systemd/system | grep -c '^delta-'; sudo -n -u postgres psql -tAc"
        " \"SELECT count(*) FROM pg_database WHERE datname = 'delta'\""
    )
    # One user, one nginx config, four unit files (frontend and api, each with its spare slot
    # for switching releases), one database.
    assert probe.stdout.split() == ["1", "1", "4", "1"]


def test_a_killed_add_site_leaves_nothing_running_and_apply_finishes_it(host: Host) -> None:
    run = host.start("add-site", "echo", "--domain", "echo.test", "--runtime", "python")
    assert run.stderr is not None
    for line in run.stderr:
        if re.match(r"\s+\[[2-9]\]", line):  # the first task is done
            break
    started = _run_of(run.pid)
    private = _private_dirs(started[0])
    assert [p.name.startswith("siteops-run-") and p.is_dir() for p in private] == [True]
    run.send_signal(signal.SIGKILL)
    run.wait()
    _gone_within(5, started, "SIGKILL")
    # The run's private folder (its extra variables: the site's secrets) went with it.
    assert not private[0].exists()

    host.siteops("apply", "echo")
    assert load_host_sites(host.sites_file).sites["echo"].status == "active"
    probe = host.ssh(
        "getent passwd | grep -c '^echo:'; sudo -n ls /etc/nginx/sites-enabled | grep -c echo;"
        " sudo -n ls /etc/systemd/system | grep -c '^echo-'; sudo -n -u postgres psql -tAc"
        " \"SELECT count(*) FROM pg_database WHERE datname = 'echo'\""
    )
    # One user, one nginx config, two unit files (the frontend and its spare slot), one database.
    assert probe.stdout.split() == ["1", "1", "2", "1"]


def test_list_show_and_status_speak_json(host: Host) -> None:
    listed = json.loads(host.siteops("list", "--json").stdout)
    assert set(listed["sites"]) == {"alpha", "beta", "delta", "echo"}
    shown = json.loads(host.siteops("show", "delta", "--json").stdout)
    assert shown["units"] == ["delta-frontend.service", "delta-api.service"]
    status = json.loads(host.siteops("status", "--json").stdout)["sites"]
    assert status["alpha"]["http"]["status"] == 200
    assert status["beta"]["http"]["status"] == 200
    # delta has no release yet: its units exist but nothing runs from the placeholder.
    assert status["delta"]["units"]["delta-frontend.service"] == "inactive"
    assert status["delta"]["units"]["siteops-backup@delta.timer"] == "active"


def test_logs_show_the_sites_own_log_lines(host: Host) -> None:
    host.get("alpha.test")
    done = host.siteops("logs", "alpha", "-n", "5")
    assert "GET / HTTP/1.1" in done.stdout


def test_the_database_password_never_leaves_the_host(host: Host) -> None:
    env = host.ssh("sudo -n grep ^DATABASE_URL= /srv/sites/delta/shared/.env").stdout
    password = re.findall(r"://delta:([^@]+)@", env)[0]
    assert len(password) >= 16
    kept = [*host.state.rglob("*.log"), *host.inventory.rglob("*.yml"),
            *host.inventory.rglob("*.md")]  # fmt: skip
    assert kept
    for path in kept:
        assert password not in path.read_text(encoding="utf-8"), path


def test_remove_site_keeps_a_backup_and_leaves_the_others_serving(host: Host) -> None:
    done = host.siteops("remove-site", "beta", "--yes")
    backup = re.findall(r"final backup (/\S+)", done.stdout)[0]
    listing = host.ssh(f"sudo -n ls {backup}").stdout.split()
    assert set(listing) == {"db.dump", "files.tar.gz"}
    archived = host.ssh(f"sudo -n tar -tzf {backup}/files.tar.gz").stdout.split()
    assert "shared/.env" in archived
    assert host.ssh("id beta").returncode != 0
    assert host.get("beta.test")[0] == 0
    assert host.get("alpha.test")[0] == 200
    sites = load_host_sites(host.sites_file)
    assert "beta" not in sites.sites
    assert sites.archived["beta"].backup == backup


def _started(run: subprocess.Popen[str]) -> list[str]:
    """Read ``run``'s progress until its first task (it holds the host's lock by then)."""
    assert run.stderr is not None
    seen = []
    for line in run.stderr:
        seen.append(line)
        if re.match(r"\s+\[1\]", line):
            return seen
    raise AssertionError("the run ended before its first task: " + "".join(seen))


@contextlib.contextmanager
def _paused(run: subprocess.Popen[str]) -> Iterator[None]:
    """``run``'s siteops process stopped for the block, its lock session on the host going on.

    However fast the run is, it still holds the host's lock when the block
    looks at it, kills its session or releases it by force.
    """
    os.kill(run.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(run.pid, signal.SIGCONT)


@pytest.fixture(scope="module")
def bob(host: Host, tmp_path_factory: pytest.TempPathFactory) -> Host:
    """A second operator with their own copy of the inventory (a clone), for the same sandbox."""
    root = tmp_path_factory.mktemp("bob")
    shutil.copytree(host.inventory, root / "inventory",
                    ignore=shutil.ignore_patterns("*.lock"))  # fmt: skip
    return Host(root, NAME, SSH_PORT, HTTP_PORT, env={"USER": "bob", "LOGNAME": "bob"})


def test_two_operators_adding_at_once_take_turns_and_lose_no_site(host: Host, bob: Host) -> None:
    first = host.start("add-site", "foxtrot", "--domain", "foxtrot.test", "--runtime", "static")
    seen = _started(first)  # alice's run holds the host's lock
    second = bob.start("add-site", "golf", "--domain", "golf.test", "--runtime", "static")
    rest = [first.communicate(timeout=600), second.communicate(timeout=600)]
    alice_err, bob_err = "".join(seen) + rest[0][1], rest[1][1]
    print(alice_err[-1500:], bob_err[-3000:])
    assert (first.returncode, second.returncode) == (0, 0)
    # Bob waited, told who held the host, then took the host's newer sites file first.
    assert re.search(r"waiting for the lock of host sandbox: root@\S+ running "
                     r"`siteops add-site foxtrot` \(pid \d+\) since 20", bob_err)  # fmt: skip
    assert "took the host's copy first: foxtrot: only on the host" in bob_err
    ours, theirs = load_host_sites(host.sites_file), load_host_sites(bob.sites_file)
    assert ours.sites["foxtrot"].port_block != theirs.sites["golf"].port_block
    on_host = host.ssh("sudo -n cat /var/lib/siteops/registry/sites.yml").stdout
    assert on_host == bob.sites_file.read_text(encoding="utf-8")
    assert host.get("foxtrot.test")[0] == 200 and host.get("golf.test")[0] == 200

    # Alice's copy lacks golf now: her next run is refused, and changes nothing.
    before = host.sites_file.read_bytes()
    refused = host.siteops("apply", "foxtrot", check=False)
    assert refused.returncode == 4
    assert "older than the host's revision" in refused.stderr
    assert "Sites that differ: golf: only on the host" in refused.stderr
    assert host.sites_file.read_bytes() == before

    pulled = host.siteops("registry", "pull")
    assert "golf: only on the host" in pulled.stdout
    host.siteops("apply", "foxtrot")
    sites = load_host_sites(host.sites_file).sites
    assert {"alpha", "delta", "echo", "foxtrot", "golf"} <= set(sites)
    assert len({s.port_block for s in sites.values()}) == len(sites)


def test_a_dead_holders_lock_is_taken_over_and_a_live_one_needs_force(host: Host) -> None:
    run = host.start("apply", "alpha")
    _started(run)
    with _paused(run):
        state = json.loads(host.siteops("lock", "status", "--json").stdout)
        assert state["held"] is True and state["holder"]["purpose"] == "apply alpha"
        refused = host.siteops("lock", "release", check=False)
        assert refused.returncode == 75 and "still running" in refused.stderr
        assert json.loads(host.siteops("lock", "status", "--json").stdout)["held"] is True
        # The holder dies on the host without releasing (as if the machine had crashed).
        host.ssh(f"sudo -n kill -KILL {state['holder']['host_pid']}")
    run.communicate(timeout=300)
    left = json.loads(host.siteops("lock", "status", "--json").stdout)
    assert left["held"] is False and left["left"]["purpose"] == "apply alpha"

    done = host.siteops("apply", "alpha")
    assert re.search(r"took over the lock of host sandbox left by root@\S+ running "
                     r"`siteops apply alpha`", done.stderr)  # fmt: skip

    run = host.start("apply", "alpha")
    _started(run)
    with _paused(run):
        forced = host.siteops("lock", "release", "--force")
        assert "released the lock of" in forced.stdout
    run.communicate(timeout=300)
    assert json.loads(host.siteops("lock", "status", "--json").stdout)["held"] is False


def _until(run: subprocess.Popen[str], text: str) -> list[str]:
    """Read ``run``'s progress until a line holds ``text``."""
    assert run.stderr is not None
    seen = []
    for line in run.stderr:
        seen.append(line)
        if text in line:
            return seen
    raise AssertionError(f"the run ended before saying {text!r}: " + "".join(seen))


def test_a_run_waiting_for_the_hosts_lock_is_held_before_its_first_task(
    host: Host, bob: Host
) -> None:
    first = host.start("apply", "alpha")
    _started(first)
    with _paused(first):
        # Bob's apply starts its Ansible run at once, then waits for the lock alice holds.
        second = bob.start("apply", "alpha")
        seen = _until(second, "waiting for the lock of host sandbox")
        run = _run_of(second.pid)
        time.sleep(3)  # time enough for tasks that were not held
        second.send_signal(signal.SIGINT)  # Ctrl-C while he waits
        seen.append(second.communicate(timeout=60)[1])
        _gone_within(5, run, "Ctrl-C")
    print("".join(seen))
    assert second.returncode == 130 and "siteops: cancelled (Ctrl-C)" in seen[-1]
    assert not re.search(r"^\s+\[\d+\]", "".join(seen), re.MULTILINE)  # no task ran
    first.communicate(timeout=300)
    assert first.returncode == 0
    state = json.loads(host.siteops("lock", "status", "--json").stdout)
    assert (state["held"], state["left"]) == (False, None)  # bob left no holder behind


def test_the_markdown_registry_is_stable_and_names_every_site(host: Host) -> None:
    host.siteops("registry")
    path = host.inventory / "registry" / "sandbox.md"
    first = path.read_bytes()
    host.siteops("registry")
    assert path.read_bytes() == first
    text = first.decode()
    assert "### Site #1: alpha" in text
    assert "delta" in text
    assert "beta" in text  # in the archive section


def test_a_refreshed_registry_shows_live_facts(host: Host) -> None:
    path = host.inventory / "registry" / "sandbox.md"
    assert "❔ unknown" in path.read_text(encoding="utf-8")  # before: unit states unknown
    host.siteops("registry", "--refresh")
    text = path.read_text(encoding="utf-8")
    assert "**Live facts as of:** 20" in text
    # delta's frontend unit exists but does not run from the placeholder release.
    assert "`delta-frontend.service` | ⏸️ inactive" in text
    assert "❔ unknown" not in text


def test_a_site_with_tls_is_served_over_https_by_the_sandbox_ca(host: Host) -> None:
    started = time.monotonic()
    host.siteops("add-site", "secure", "--domain", "secure.test", "--domain", "www.secure.test",
                 "--runtime", "static", "--tls-email", "ops@secure.test")  # fmt: skip
    print(f"add-site with a certificate: {time.monotonic() - started:.1f}s")
    # The sandbox's own CA is the host's default: no --ca-directory was needed.
    record = load_host_sites(host.sites_file).sites["secure"]
    assert str(record.tls.ca_directory) == "https://127.0.0.1:14000/dir"
    ca = json.loads(host.siteops("sandbox", "status", "--json").stdout)["ca"]
    for name in ["secure.test", "www.secure.test"]:
        done = subprocess.run(
            ["curl", "-sS", "--cacert", ca, "--resolve", f"{name}:{HTTPS_PORT}:127.0.0.1",
             "-w", "\n%{http_code} %{ssl_verify_result}", f"https://{name}:{HTTPS_PORT}/"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        body, _, codes = done.stdout.rpartition("\n")
        assert codes == "200 0"  # answered, and the certificate verified against the CA
        assert "Site secure has not been deployed yet" in body
    code, _ = host.get("secure.test")
    assert code == 301  # plain HTTP redirects to HTTPS


def test_the_audit_log_lists_every_changing_command_with_operator_and_result(
    host: Host, bob: Host
) -> None:
    entries = json.loads(host.siteops("audit", "--json").stdout)["entries"]
    done = [(e["command"], e["result"]) for e in entries]
    print("\n".join(f"{e['time']} {e['operator']['user']} {e['command']}: {e['result']}"
                    for e in entries))  # fmt: skip
    assert done[0] == ("sandbox up", "ok")
    assert sorted(done[1:3]) == [("add-site alpha", "ok"), ("add-site beta", "ok")]
    assert done[3:] == [
        ("add-site delta", "cancelled"), ("apply delta", "ok"),
        ("add-site echo", "interrupted"), ("apply echo", "ok"),
        ("remove-site beta", "ok"),
        ("add-site foxtrot", "ok"), ("add-site golf", "ok"),
        ("apply foxtrot", "refused"), ("apply foxtrot", "ok"),
        ("apply alpha", "interrupted"),  # killed on the host: logged by the run taking over
        ("apply alpha", "ok"),
        ("apply alpha", "interrupted"), ("lock release --force", "ok"),
        ("apply alpha", "ok"),  # bob, waiting for it, cancelled: he never held the lock
        ("add-site secure", "ok"),
    ]  # fmt: skip
    users = {e["command"]: e["operator"]["user"] for e in entries}
    assert users["add-site golf"] == "bob" and users["add-site foxtrot"] != "bob"
    key = subprocess.run(["ssh-keygen", "-l", "-f", str(host.inventory / ".ssh/id_ed25519")],
                         capture_output=True, text=True, check=True).stdout.split()[1]  # fmt: skip
    # sshd names the key once the baseline has set ExposeAuthInfo (after `sandbox up`'s run).
    assert {e["operator"]["key"] for e in entries[1:]} == {key}
    # The registry revision each run left (0: none yet, before the first add-site).
    assert entries[0]["revision"] == 0 and all(e["revision"] for e in entries[1:])
    golf = json.loads(host.siteops("audit", "--site", "golf", "--json").stdout)["entries"]
    assert [e["command"] for e in golf] == ["add-site golf"]
    assert "add-site secure" in host.siteops("audit", "--since", "1h").stdout
    # The log is root's only, and holds no secret of a site.
    raw = host.ssh("sudo -n stat -c %a /var/log/siteops/audit.jsonl; "
                   "sudo -n cat /var/log/siteops/audit.jsonl").stdout  # fmt: skip
    assert raw.startswith("600\n")
    env = host.ssh("sudo -n cat /srv/sites/delta/shared/.env").stdout
    password = re.findall(r"://delta:([^@]+)@", env)[0]
    assert password not in raw
