"""What the facts playbook is asked, what its script reports, and how siteops reads it."""

from __future__ import annotations

import json
import os
import pwd
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from siteops.hostfacts import FACTS_ARTIFACT, FactsMissing, facts_request, parse_facts
from siteops.inventory import load_host_sites, sites_path
from siteops.layout import layout
from tests.conftest import EXAMPLE_INVENTORY, REPO

SCRIPT = REPO / "playbooks" / "files" / "siteops_facts.py"
# What playbooks/facts.yml hands the script: the host layout.
LAYOUT = {
    "sites_root": layout().sites_root,
    "backup_root": layout().backup_root,
    "release_log_dir": layout().release_log_dir,
}


def test_the_request_names_each_sites_domain_block_units_and_slice() -> None:
    sites = load_host_sites(sites_path(EXAMPLE_INVENTORY, "vps1"))
    name, site = next(iter(sites.sites.items()))
    request = facts_request(sites, [name])
    assert request[name]["domain"] == site.domains.primary
    assert len(request[name]["ports"]) == 30
    assert f"siteops-backup@{name}.timer" in request[name]["units"]
    assert request[name]["slice"].endswith(".slice")


def test_facts_are_read_from_the_runs_artifacts() -> None:
    facts = parse_facts(
        {FACTS_ARTIFACT: {"listening": [22, 80], "sites": {"a": {"units": {"x.service": "active",
                                                                          "x.timer": "active"}}}}}
    )  # fmt: skip
    assert facts.listening == {22, 80}
    assert facts.registry_facts()["a"].units == {"x.service": "active"}


def test_a_run_without_facts_says_so() -> None:
    with pytest.raises(FactsMissing, match="not handed back"):
        parse_facts({})


def test_the_script_reports_a_real_loopback_listener() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT.read_text(encoding="utf-8")],
            input=json.dumps({"layout": LAYOUT, "sites": {}}),
            capture_output=True,
            text=True,
            check=True,
        )
    facts = json.loads(done.stdout)
    assert port in facts["listening"]
    assert facts["owners"][str(port)] == pwd.getpwuid(os.getuid()).pw_name


def test_the_script_reads_the_layout_it_is_handed(tmp_path: Path) -> None:
    sites, backups, logs = tmp_path / "sites", tmp_path / "backups", tmp_path / "releases"
    (sites / "shop" / "releases" / "r1").mkdir(parents=True)
    (sites / "shop" / "current").symlink_to("releases/r1")
    (backups / "shop" / "status").mkdir(parents=True)
    (backups / "shop" / "status" / "backup.json").write_text('{"result": "ok"}')
    logs.mkdir()
    (logs / "shop.jsonl").write_text('{"id": "r1", "result": "ok"}\n')
    nginx = tmp_path / "nginx"
    nginx.mkdir()
    (nginx / "shop.conf").write_text(
        "upstream shop_frontend {\n    server 127.0.0.1:3101 max_fails=3;\n}\n"
        "upstream shop_api {\n    server 127.0.0.1:4001;\n}\n"
        "server {\n    server_name shop.invalid;\n}\n"
    )
    layout = {"sites_root": str(sites), "backup_root": str(backups), "release_log_dir": str(logs),
              "nginx_config_format": f"{nginx}/%s.conf"}  # fmt: skip
    request = {"shop": {"domain": "shop.invalid", "ports": [], "units": [], "slice": "shop.slice",
                        "tls": False}}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT.read_text(encoding="utf-8")],
        input=json.dumps({"layout": layout, "sites": request}),
        capture_output=True,
        text=True,
        check=True,
    )
    shop = json.loads(done.stdout)["sites"]["shop"]
    # The ports nginx passes the site's requests to: here its spare slots (a switch under way).
    assert shop["release"] == {
        "current": "r1",
        "log": [{"id": "r1", "result": "ok"}],
        "serving_ports": [3101, 4001],
    }
    assert shop["backup"] == {"result": "ok"}
    assert shop["disk_use"] is not None
