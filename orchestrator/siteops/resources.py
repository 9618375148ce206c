"""Where siteops finds what it ships: the Ansible collection and the test-host scripts.

siteops runs in one of two ways, and finds its files accordingly:

- **installed** (``pip install siteops``): the wheel puts the collection
  ``siteops.hosting`` (``roles/``, ``playbooks/``, ``plugins/``) in
  ``site-packages/ansible_collections/siteops/hosting``, where Ansible finds
  it on its own (it scans ``sys.path`` for collections), and the test-host
  scripts in ``site-packages/siteops/testhosts``;
- **from its checkout** (``pip install -e .``, or ``SITEOPS_PROJECT`` naming a
  checkout): the repository root is the collection (``galaxy.yml`` is there),
  and ``<checkout>/.cache/siteops-collections`` holds a link that makes it
  ``siteops.hosting`` for Ansible too.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path
from types import ModuleType

NAMESPACE = "siteops"
NAME = "hosting"
COLLECTION = f"{NAMESPACE}.{NAME}"
# What the collection is made of, below its root (setup.py copies these into the wheel).
COLLECTION_PARTS = ("galaxy.yml", "README.md", "meta", "playbooks", "plugins", "roles")

_PACKAGE = Path(__file__).resolve().parent
# Where a checkout keeps the link that names it siteops.hosting.
# (Not ansible-lint's .cache/collections, where it installs a built copy of its own.)
_CHECKOUT_COLLECTIONS = Path(".cache") / "siteops-collections"


class ProjectNotFound(RuntimeError):  # noqa: N818 (reads as the condition it reports)
    """The siteops playbooks and roles cannot be found."""


def _is_collection(path: Path) -> bool:
    return (path / "playbooks" / "site.yml").is_file() and (path / "roles").is_dir()


def installed_collection() -> Path:
    """Where the wheel puts the collection: ``ansible_collections/siteops/hosting``."""
    return _PACKAGE.parent / "ansible_collections" / NAMESPACE / NAME


def find_collection() -> Path:
    """The root of the siteops collection (``playbooks/``, ``roles/``, ``plugins/``).

    ``SITEOPS_PROJECT`` (a checkout) wins; then the checkout this package is
    imported from (``pip install -e``); then the collection the wheel installed.
    """
    configured = os.environ.get("SITEOPS_PROJECT")
    if configured:
        return _first_collection([Path(configured)])
    return shipped_collection()


def running_collection() -> Path:
    """The collection siteops runs (:func:`find_collection`), or without one, its own.

    For what siteops reads from the collection itself (the host layout, the
    release parser): commands that run no playbook still work when
    ``SITEOPS_PROJECT`` names no checkout; those that do fail on their own,
    naming the problem.
    """
    try:
        return find_collection()
    except ProjectNotFound:
        return shipped_collection()


@functools.cache
def collection_module(relative: Path) -> ModuleType:
    """A standard-library-only file of the running collection, loaded by its path.

    For the few facts siteops shares with the collection's plugins (the
    release parser, the gate of a run), written once in the collection.
    """
    path = running_collection() / relative
    name = f"siteops_collection_{'_'.join(relative.with_suffix('').parts)}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:  # pragma: no cover (a file path always has one)
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def shipped_collection() -> Path:
    """The collection that came with this package, whatever ``SITEOPS_PROJECT`` says.

    The checkout this package is imported from (``pip install -e``), else the
    collection the wheel installed.
    """
    return _first_collection([_PACKAGE.parents[1], installed_collection()])


def _first_collection(candidates: list[Path]) -> Path:
    for candidate in candidates:
        if _is_collection(candidate):
            return candidate
    raise ProjectNotFound(
        f"no siteops playbooks in {' or '.join(str(c) for c in candidates)}: reinstall "
        "siteops (pip install siteops), or set SITEOPS_PROJECT to a siteops checkout"
    )


def is_checkout(collection: Path) -> bool:
    """Whether ``collection`` is a siteops checkout rather than an installed collection."""
    return (collection / "orchestrator" / "siteops").is_dir()


def collections_path(collection: Path) -> Path:
    """A folder holding ``ansible_collections/siteops/hosting`` for ``collection``.

    For an installed collection that is its ``site-packages``; for a checkout,
    ``.cache/siteops-collections`` in it, where a link to the checkout is made if it
    is missing.
    """
    if not is_checkout(collection):
        return collection.parents[2]
    base = collection / _CHECKOUT_COLLECTIONS
    link = base / "ansible_collections" / NAMESPACE / NAME
    if link.resolve() != collection.resolve():  # missing, or left by a moved checkout
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink():
            link.unlink()
        link.symlink_to(os.path.relpath(collection, link.parent), target_is_directory=True)
    return base


def find_testhosts(collection: Path) -> Path:
    """The test-host scripts (engine, images, proxy, test CA) that ``sandbox`` uses."""
    for candidate in (collection / "testhosts", _PACKAGE / "testhosts"):
        if (candidate / "images.sh").is_file():
            return candidate
    raise ProjectNotFound(
        f"no test-host scripts in {collection / 'testhosts'} or {_PACKAGE / 'testhosts'}: "
        "reinstall siteops"
    )
