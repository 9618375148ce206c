#!/usr/bin/env python3
"""How long siteops takes to add and converge sites, and how that grows with their number.

Runs against a sandbox of its own (container siteops-sandbox-bench, SSH on
127.0.0.1:2252, HTTP on 127.0.0.1:8120; inventory in benchmarks/.work/) and
prints a table; with --write, also benchmarks/RESULTS.md. Measured:

- add-site wall time, from the command's start until the site answers 200
  through nginx with its Host header (static sites with a database: user,
  tree, database and role, slice, units, backups, firewall rule, nginx);
- a no-op `apply` of one site, and of all sites;
- the floor: benchmarks/floor.sh doing the same kind of steps as one shell
  script over one SSH session, and the ratio siteops / floor;
- at each checkpoint (sites #1, #10, #25, #50 by default): add-site time of
  that site, no-op applies, `nginx -t` and reload time, nginx's memory;
- each with Mitogen's strategy (ansible.cfg) and with Ansible's own
  `linear` (--strategies): at a checkpoint the other strategy adds a site of
  its own (lin01, lin10, ...: the host then has a few more sites than the
  checkpoint's number), and applies the same site; the all-sites apply runs
  with the first strategy only;
- how many tasks ran on the host, and how many module calls they made, in a
  no-op converge of one site (each loop item is a call).

The no-op apply of one site is short enough for the machine's noise to show
(on a 2-core VM, +-1 s between identical runs), so it is run --repeat times
(default 3) and reported as the median with the lowest and highest run. At
each checkpoint the same fixed piece of pure-Python work is timed as well:
when it takes longer than at the start, the machine itself was slower then
(a shared VM's neighbours), not siteops.

    .venv/bin/python benchmarks/run.py --sites 50 --write
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "benchmarks" / ".work"
INVENTORY = WORK / "inventory"
SITEOPS = str(Path(sys.executable).parent / "siteops")
NAME, SSH_PORT, HTTP_PORT, HTTPS_PORT = "siteops-sandbox-bench", 2252, 8120, 8473
# Python keeps the bytecode of what siteops and Ansible load (__pycache__), as it
# does for an installed siteops (pip compiles a wheel's files when it installs
# them) and for a checkout by default: an environment that turns that off
# (PYTHONDONTWRITEBYTECODE) would have every run, and every Ansible worker,
# compile the CLI, the collection's plugins and module_utils again.
ENV = {
    **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
    "SITEOPS_SANDBOX": NAME,
    "XDG_STATE_HOME": str(WORK / "state"),
}
LEVERS_HEADING = "## Levers"


# The strategies compared: Mitogen's (ansible.cfg) and Ansible's own.
STRATEGIES = {"mitogen": {}, "linear": {"ANSIBLE_STRATEGY": "linear"}}


def siteops(*args: str, strategy: str = "mitogen") -> float:
    """Run the CLI; return its wall time in seconds (fails loudly)."""
    started = time.monotonic()
    done = subprocess.run(
        [SITEOPS, "-i", str(INVENTORY), *args], cwd=REPO, env={**ENV, **STRATEGIES[strategy]},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(f"siteops {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return elapsed


def ssh(command: str, stdin: str | None = None) -> str:
    keys = INVENTORY / ".ssh"
    done = subprocess.run(
        ["ssh", "-o", f"UserKnownHostsFile={keys / 'known_hosts'}", "-o", "BatchMode=yes",
         "-i", str(keys / "id_ed25519"), "-p", str(SSH_PORT), "deploy@127.0.0.1", command],
        input=stdin, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout


def answers(domain: str) -> bool:
    done = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "5", "-H",
         f"Host: {domain}", f"http://127.0.0.1:{HTTP_PORT}/"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return done.stdout == "200"


def until_answering(domain: str, started: float, limit: float = 60) -> float:
    while not answers(domain):
        if time.monotonic() - started > limit:
            sys.exit(f"{domain} did not answer within {limit}s")
        time.sleep(0.1)
    return time.monotonic() - started


def repeated(times: int, *args: str, strategy: str = "mitogen") -> str:
    """Run the CLI ``times`` times; the median wall time, with the lowest and highest."""
    took = sorted(siteops(*args, strategy=strategy) for _ in range(times))
    if times == 1:
        return f"{took[0]:.1f} s"
    return f"{statistics.median(took):.1f} s (median of {times}: {took[0]:.1f}-{took[-1]:.1f})"


def add_site(name: str, strategy: str = "mitogen") -> float:
    started = time.monotonic()
    siteops("add-site", name, "--domain", f"{name}.test", "--runtime", "static", strategy=strategy)
    return until_answering(f"{name}.test", started)


def floor(n: int, block: int) -> float:
    script = (REPO / "benchmarks" / "floor.sh").read_text(encoding="utf-8")
    started = time.monotonic()
    ssh(f"sudo -n bash -s -- floor{n:02d} {block} floor{n:02d}.test", stdin=script)
    return until_answering(f"floor{n:02d}.test", started)


# Actions that run on the controller only: no round trip to the host.
CONTROLLER_ACTIONS = {
    "ansible.builtin.assert", "ansible.builtin.debug", "ansible.builtin.fail",
    "ansible.builtin.set_fact", "ansible.builtin.set_stats", "ansible.builtin.meta",
    "ansible.builtin.include_tasks", "ansible.builtin.include_role",
    "ansible.builtin.validate_argument_spec",
}  # fmt: skip


def calls(site: str) -> tuple[int, int]:
    """Tasks that ran on the host, and module calls there, in a no-op converge of ``site``.

    Counted from ansible-playbook's JSON output (ansible.posix.json): a task
    that is not skipped and not a controller-only action is one task on the
    host; each of its loop items that is not skipped is one module call.
    """
    done = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(INVENTORY / "hosts.yml"),
         str(REPO / "playbooks" / "site.yml"), "-e", json.dumps({"siteops_only": [site]})],
        cwd=REPO, env={**ENV, "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        sys.exit(f"counting the calls of a run for {site} failed:\n{done.stdout[-3000:]}")
    tasks = modules = 0
    for play in json.loads(done.stdout)["plays"]:
        for task in play["tasks"]:
            for result in task["hosts"].values():
                if result.get("skipped") or result.get("action") in CONTROLLER_ACTIONS:
                    continue
                tasks += 1
                items = result.get("results")
                modules += 1 if items is None else sum(not i.get("skipped") for i in items)
    return tasks, modules


def calibration() -> float:
    """Milliseconds for a fixed piece of CPU work in this process (median of 3)."""
    took = []
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for i in range(2_000_000):
            total += i * i % 7
        took.append(time.perf_counter() - started)
    return statistics.median(took) * 1000


def nginx_facts() -> tuple[float, float, int]:
    out = ssh(
        "sudo -n bash -c 's=$(date +%s%N); nginx -t -q; m=$(date +%s%N); systemctl reload nginx;"
        " e=$(date +%s%N); echo $(( (m-s)/1000 )) $(( (e-m)/1000 )); ps -C nginx -o rss= | "
        'awk "{s+=\\$1} END {print s}"\''
    )
    check_us, reload_us, rss_kb = out.split()
    return int(check_us) / 1000, int(reload_us) / 1000, int(rss_kb)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=50)
    parser.add_argument("--checkpoints", default="1,10,25,50")
    parser.add_argument("--write", action="store_true", help="write benchmarks/RESULTS.md")
    parser.add_argument("--keep", action="store_true", help="leave the sandbox running")
    parser.add_argument(
        "--repeat", type=int, default=3,
        help="runs of each no-op apply of one site; the median is reported (default 3)",
    )  # fmt: skip
    parser.add_argument(
        "--strategies", default="mitogen,linear",
        help="strategies to compare, of: mitogen (ansible.cfg's mitogen_linear), linear "
        "(default: both; the all-sites apply runs with the first only)",
    )  # fmt: skip
    args = parser.parse_args()
    strategies = args.strategies.split(",")
    if unknown := set(strategies) - set(STRATEGIES):
        parser.error(f"--strategies: unknown {', '.join(sorted(unknown))}")
    checkpoints = [c for c in map(int, args.checkpoints.split(",")) if c <= args.sites]
    rows: list[tuple[str, str]] = []

    def note(label: str, value: str) -> None:
        rows.append((label, value))
        print(f"{label:<56} {value}", flush=True)

    def measure(n: int, first: dict[str, float]) -> None:
        """At a checkpoint: add-site with each strategy, no-op applies, all sites."""
        for strategy in strategies:
            # The first strategy adds bench<n> itself; the others an extra site each.
            name = f"bench{n:02d}" if strategy == strategies[0] else f"{strategy[:3]}{n:02d}"
            took = add_site(name, strategy)
            first.setdefault(strategy, took)
            note(f"add-site #{n}, {strategy} (until it answers)",
                 f"{took:.1f} s ({took / first[strategy]:.2f}x #1)")  # fmt: skip
        for strategy in strategies:
            one = repeated(args.repeat, "apply", "bench01", strategy=strategy)
            note(f"no-op apply of one site ({n} sites), {strategy}", one)
        if n > 1:
            took = siteops("apply", strategy=strategies[0])
            note(f"no-op apply of all sites ({n} sites), {strategies[0]}", f"{took:.1f} s")
        note(f"fixed CPU work ({n} sites)", f"{calibration():.0f} ms")

    siteops("sandbox", "down")
    up = siteops("sandbox", "up", "--ssh-port", str(SSH_PORT), "--http-port", str(HTTP_PORT),
                 "--https-port", str(HTTPS_PORT))  # fmt: skip
    note("sandbox up with the host baseline", f"{up:.1f} s")
    note("fixed CPU work at the start (median of 3)", f"{calibration():.0f} ms")
    try:
        first: dict[str, float] = {}
        measure(1, first)
        floor_time = floor(1, 89)
        note("floor: the same steps as one shell script", f"{floor_time:.1f} s")
        for strategy in strategies:
            note(f"ratio siteops / floor (add-site #1, {strategy})",
                 f"{first[strategy] / floor_time:.1f}x")  # fmt: skip
        tasks, modules = calls("bench01")
        note("tasks on the host / module calls, no-op converge of one site",
             f"{tasks} / {modules}")  # fmt: skip
        for n in range(2, args.sites + 1):
            if n in checkpoints:
                measure(n, first)
            else:
                add_site(f"bench{n:02d}")
        check_ms, reload_ms, rss = nginx_facts()
        note(f"nginx -t / reload with {args.sites + 1} vhosts",
             f"{check_ms:.0f} ms / {reload_ms:.0f} ms")  # fmt: skip
        note(
            f"nginx memory (all processes, RSS) with {args.sites + 1} vhosts",
            f"{rss / 1024:.1f} MiB",
        )
    finally:
        if not args.keep:
            siteops("sandbox", "down")
    if args.write:
        write(rows, args)


def write(rows: list[tuple[str, str]], args: argparse.Namespace) -> None:
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
        capture_output=True, text=True, check=False,
    ).stdout.strip()  # fmt: skip
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    lines = [
        "# Benchmark results",
        "",
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- commit: {commit}",
        f"- machine: {platform.platform()}, {os.cpu_count()} cores, {memory:.0f} GiB",
        f"- command: `.venv/bin/python benchmarks/run.py --sites {args.sites} "
        f"--checkpoints {args.checkpoints} --repeat {args.repeat} "
        f"--strategies {args.strategies} --write`",
        "- Ansible strategies: mitogen = siteops.hosting.mitogen_linear (ansible.cfg), "
        "linear = Ansible's own (ANSIBLE_STRATEGY=linear)",
        "- host: the sandbox (a systemd container on this machine, reached over SSH)",
        "- Python bytecode kept (`__pycache__`), as for an installed siteops; "
        "PYTHONDONTWRITEBYTECODE is dropped from the runs' environment",
        "",
        "| measure | value |",
        "|---|---|",
        *[f"| {label} | {value} |" for label, value in rows],
        "",
    ]
    results = REPO / "benchmarks" / "RESULTS.md"
    # The hand-written part (what each lever changed, measured before and after) is kept.
    kept = ""
    if results.is_file():
        old = results.read_text(encoding="utf-8")
        if LEVERS_HEADING in old:
            kept = old[old.index(LEVERS_HEADING) :]
    results.write_text("\n".join(lines) + ("\n" + kept if kept else ""), encoding="utf-8")


if __name__ == "__main__":
    main()
