"""Shared fixtures for the orchestrator tests."""

from __future__ import annotations

import copy
import importlib.util
import os
import sys
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
