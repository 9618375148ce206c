"""Packs the Ansible collection and the test-host scripts into the wheel.

The metadata is in pyproject.toml. A built wheel holds, besides the
``siteops`` package:

- ``ansible_collections/siteops/hosting/``: the collection (the parts listed in
  ``siteops.resources.COLLECTION_PARTS``), where Ansible finds installed
  collections on ``sys.path``, so ``ansible-playbook siteops.hosting.site``
  works wherever siteops is installed;
- ``siteops/testhosts/``: the scripts ``siteops sandbox`` uses.

An editable install (``pip install -e .``) copies nothing: it uses the checkout.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
# Kept in step with siteops.resources.COLLECTION_PARTS (a unit test compares them).
COLLECTION_PARTS = ("galaxy.yml", "README.md", "meta", "playbooks", "plugins", "roles")
_SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")


def _copy(source: Path, target: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, target, ignore=_SKIP, dirs_exist_ok=True)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


class BuildWithCollection(build_py):
    """build_py, then the collection and the test-host scripts into the build tree."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        lib = Path(self.build_lib)
        collection = lib / "ansible_collections" / "siteops" / "hosting"
        for part in COLLECTION_PARTS:
            _copy(ROOT / part, collection / part)
        _copy(ROOT / "testhosts", lib / "siteops" / "testhosts")


setup(cmdclass={"build_py": BuildWithCollection})
