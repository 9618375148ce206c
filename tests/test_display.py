"""Progress lines, tables and status text."""

from __future__ import annotations

import io

from siteops.display import hosts_table, serving_text, status_text, table
from siteops.hostfacts import HostFacts
from siteops.inventory import load_host_sites, sites_path
from siteops.model import HostSites
from siteops.progress import ProgressDisplay, progress_line
from siteops.runner import Progress
from tests.conftest import EXAMPLE_INVENTORY


def test_a_progress_line_names_task_host_and_counts() -> None:
    line = progress_line(Progress(task="Ensure x", host="vps1", ok=3, changed=1, tasks_done=3))
    assert line == "task 4: Ensure x (vps1)  ok=3 changed=1 failed=0"


def test_a_known_total_draws_a_bar() -> None:
    line = progress_line(Progress(task="t", tasks_done=5, tasks_total=10))
    assert line.startswith("[##########..........] 5/10 ")


def test_the_end_of_a_run_shows_the_totals_and_unreachable_hosts() -> None:
    done = Progress(ok=9, changed=2, failed=1, unreachable=1, finished=True)
    assert progress_line(done) == "done: ok=9 changed=2 failed=1 unreachable=1"


def test_without_a_terminal_each_task_is_printed_once() -> None:
    out = io.StringIO()
    show = ProgressDisplay(out, interactive=False)
    for progress in [
        Progress(task="A"),
        Progress(task="A", host="h", ok=1),
        Progress(task="B", tasks_done=1),
        Progress(finished=True, tasks_done=2),
    ]:
        show(progress)
    assert out.getvalue() == "  [1] A\n  [2] B\n"


def test_on_a_terminal_the_line_is_rewritten_and_ended() -> None:
    out = io.StringIO()
    show = ProgressDisplay(out, interactive=True)
    show(Progress(task="A"))
    show(Progress(finished=True, tasks_done=1))
    assert out.getvalue().count("\r\x1b[K") == 2
    assert out.getvalue().endswith("done: ok=0 changed=0 failed=0\n")


def test_a_table_aligns_its_columns() -> None:
    assert table(["A", "BB"], [["xxx", "y"], ["z", "wwww"]]) == "A    BB\nxxx  y\nz    wwww"


def test_status_text_shows_http_answer_units_certificate_and_backup() -> None:
    sites = load_host_sites(sites_path(EXAMPLE_INVENTORY, "vps1"))
    name = next(iter(sites.sites))
    facts = HostFacts(
        listening=frozenset({22}),
        sites={
            name: {
                "units": {f"{name}-frontend.service": "active"},
                "listeners": {"3100": ["127.0.0.1"]},
                "http": {"url": "https://x/", "status": 200},
                "cert_expiry": "2027-01-01",
                "cert_issued": "2026-10-01",
                "disk_use": "12M",
                "memory_use": "20.0M",
                "cpu_percent": 3.5,
                "tasks": 12,
                "db_connections": 1,
                "backup": {"result": "ok", "at": "2026-11-23T03:00:00Z"},
                "restore_test": None,
                "release": {"current": "20261128T120000Z", "serving_ports": [3100, 4000]},
            }
        },
    )
    text = status_text(sites, facts)
    assert "release:     20261128T120000Z from the main slot (ports 3100, 4000)" in text
    assert "https://x/ -> 200" in text
    assert f"{name}-frontend.service active" in text
    assert "3100 on 127.0.0.1" in text
    assert "expires 2027-01-01" in text
    assert "last backup: ok at 2026-11-23T03:00:00Z" in text
    assert "restore test: none yet" in text
    assert "memory: 20.0M of 1G, cpu: 3.5% of 100%, tasks: 12 of 512, db connections: 1/20" in text


def test_serving_text_names_the_slot_nginx_passes_requests_to() -> None:
    assert serving_text("r2", [3110, 4010], [3110, 4010]) == (
        "r2 from the main slot (ports 3110, 4010)"
    )
    assert serving_text("r2", [3111, 4011], [3110, 4010]) == (
        "r2 from the spare slot: a switch is under way (ports 3111, 4011)"
    )
    assert serving_text("r1", [], []) == "r1 (static: nginx serves it)"
    assert serving_text(None, [], [3110]) == "none (no upstream in the nginx config)"


def test_the_all_hosts_table_has_a_host_column_and_names_hosts_without_sites() -> None:
    vps1 = load_host_sites(sites_path(EXAMPLE_INVENTORY, "vps1"))
    text = hosts_table({"vps1": vps1, "vps2": HostSites(), "vps3": vps1})
    header, *rows = text.split("\n\n")[0].splitlines()
    assert header.split()[:3] == ["HOST", "SITE", "STATUS"]
    assert [row.split()[:2] for row in rows] == [
        ["vps1", "shop"], ["vps1", "docs-site"], ["vps3", "shop"], ["vps3", "docs-site"]
    ]  # fmt: skip
    assert text.endswith("\n\nno sites yet on: vps2")
    assert hosts_table({"vps2": HostSites()}) == "no sites on any host yet"
    assert hosts_table({}) == "no hosts in the inventory's hosts.yml"
