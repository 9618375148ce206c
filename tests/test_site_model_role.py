"""The site_model role, run by ansible-playbook: records that break the model stop the play.

Every fault of every record is named in one message, with the field it is
in; good records pass. The role runs on the controller only (localhost).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import local_ansible_env

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_SITES = ROOT / "inventory" / "example" / "host_vars" / "vps1" / "sites.yml"

PLAYBOOK = """
- name: Check the records
  hosts: localhost
  gather_facts: false
  roles:
    - role: site_model
"""


def check(tmp_path: Path, sites: Any) -> tuple[int, str]:
    book = tmp_path / "play.yml"
    book.write_text(PLAYBOOK)
    extra = tmp_path / "sites.json"
    extra.write_text(json.dumps({"site_model_sites": sites}))
    env = local_ansible_env()
    run = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), str(book), "-e", f"@{extra}"],
        capture_output=True, text=True, env=env, cwd=tmp_path, check=False,
    )  # fmt: skip
    return run.returncode, run.stdout + run.stderr


def test_good_records_pass_and_every_fault_of_bad_ones_is_named(tmp_path: Path) -> None:
    sites: dict[str, Any] = yaml.safe_load(EXAMPLE_SITES.read_text())["siteops_sites"]
    rc, output = check(tmp_path, sites)
    assert rc == 0, output

    sites["shop"]["port_block"] = "seven"
    sites["shop"]["components"]["Api2"] = {"runtime": "perl"}
    rc, output = check(tmp_path, sites)
    assert rc != 0
    assert "siteops_sites.shop: argument 'port_block' is of type" in output, output
    assert "siteops_sites.shop.components.Api2: component name must be" in output, output
    assert "siteops_sites.shop.components.Api2: value of runtime must be one of" in output, output
