"""Shared fixtures for the orchestrator tests."""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from siteops import resources

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_INVENTORY = REPO / "inventory" / "example"

# The collection's modules import its module_utils as Ansible runs them
# (ansible_collections.siteops.hosting...): this checkout is that collection.
sys.path.insert(0, str(resources.collections_path(REPO)))


def local_ansible_env() -> dict[str, str]:
    """The environment for ``ansible-playbook`` on the controller with this checkout's roles."""
    return {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": str(resources.collections_path(REPO)),
        "ANSIBLE_ROLES_PATH": str(REPO / "roles"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_STDOUT_CALLBACK": "default",
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
    }


# A lookup that returns one Python expression's value, as the worker of a task
# computes it (gc and sys imported), and a play on localhost that prints it as
# JSON without spaces (Ansible's YAML output folds long lines at spaces).
_PROBE = """
import gc, json, sys
from ansible.plugins.lookup import LookupBase

class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        return [json.dumps({expression}, separators=(",", ":"))]
"""
_PROBE_PLAY = """
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - ansible.builtin.debug:
        msg: "probe={{ lookup('probe') }};"
"""


def probe_in_a_worker(
    tmp_path: Path,
    expression: str,
    *,
    command: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Any:
    """``expression`` in the worker of a task of a real ansible-playbook run (``command``)."""
    (tmp_path / "lookup_plugins").mkdir(exist_ok=True)
    probe = _PROBE.format(expression=expression)
    (tmp_path / "lookup_plugins" / "probe.py").write_text(probe, encoding="utf-8")
    (tmp_path / "probe.yml").write_text(_PROBE_PLAY, encoding="utf-8")
    playbook = command or [str(Path(sys.executable).parent / "ansible-playbook")]
    run = subprocess.run(
        [*playbook, "-i", "localhost,", str(tmp_path / "probe.yml")],
        env=dict(env or local_ansible_env()), cwd=tmp_path, capture_output=True, text=True,
        check=False, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    (found,) = re.findall(r"probe=(\S*?);", run.stdout)
    return json.loads(found)


def load_plugin(path: Path, name: str) -> ModuleType:
    """A plugin or module file of the collection, imported on its own as ``name``."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


VALID_SITE: dict[str, Any] = {
    "port_block": 2,
    "domains": {"primary": "app.example.test", "aliases": ["www.app.example.test"]},
    "components": {
        "frontend": {"runtime": "node", "port": 3120, "command": "node server.js"},
        "api": {"runtime": "python", "port": 4020, "command": ".venv/bin/python api.py"},
    },
    "tls": {"enabled": True, "email": "ops@example.test"},
}


@pytest.fixture
def site() -> dict[str, Any]:
    """A valid site entry that each test may change."""
    return copy.deepcopy(VALID_SITE)
