"""A user's project folder: their inventory and settings, apart from the installed tool.

``siteops init DIR`` writes::

    DIR/ansible.cfg         settings siteops and plain ansible-playbook both read
    DIR/inventory/hosts.yml the hosts (siteops host add writes them)
    DIR/.gitignore          keeps private keys and local state out of git
    DIR/README.md           what lives here and the commands to use

Every siteops command run in such a folder (or below it) finds it: the
nearest ``ansible.cfg`` whose ``[defaults] inventory`` names a ``hosts.yml``
gives both the inventory (that file's directory) and the settings the playbook
runs use, so ``ansible-playbook siteops.hosting.site`` run there reaches the
same hosts with the same settings.
"""

from __future__ import annotations

import configparser
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from siteops.errors import SiteopsError
from siteops.inventory import HOSTS_FILE, hosts_yaml_text
from siteops.registry import write_atomically
from siteops.resources import COLLECTION, NAMESPACE, collections_path, is_checkout

CONFIG = "ansible.cfg"
INVENTORY = "inventory"
# What may already be in a folder that init treats as empty.
_IGNORED_IN_EMPTY = frozenset({".git"})


@dataclass(frozen=True)
class Project:
    """A folder whose ``ansible.cfg`` names the inventory siteops manages."""

    config: Path
    hosts_file: Path

    @property
    def root(self) -> Path:
        return self.config.parent

    @property
    def inventory(self) -> Path:
        return self.hosts_file.parent


def _configured_inventory(config: Path) -> Path | None:
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=("#", ";"))
    try:
        parser.read(config, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        return None
    value = parser.get("defaults", "inventory", fallback="").strip()
    if not value or "," in value or not value.endswith(HOSTS_FILE):
        return None
    path = Path(value).expanduser()
    return path if path.is_absolute() else config.parent / path


def find_project(start: Path) -> Project | None:
    """The project folder ``start`` is in: the nearest ``ansible.cfg`` naming a ``hosts.yml``."""
    here = start.resolve()
    for folder in (here, *here.parents):
        config = folder / CONFIG
        if config.is_file():
            hosts_file = _configured_inventory(config)
            if hosts_file is not None:
                return Project(config, hosts_file)
    return None


def _mitogen_installed() -> bool:
    return importlib.util.find_spec("ansible_mitogen") is not None


def ansible_cfg(collection: Path, *, mitogen: bool) -> str:
    """The ``ansible.cfg`` of a new project folder (the same settings the CLI's runs use)."""
    lines = [
        "# Written by `siteops init`. siteops and plain ansible-playbook both read it here,",
        "# so both reach the hosts of inventory/ the same way, for example:",
        f"#   ansible-playbook {COLLECTION}.site",
        "[defaults]",
        f"inventory = {INVENTORY}/{HOSTS_FILE}",
        "# Handlers (nginx -t, reload) still run when a later task fails.",
        "force_handlers = True",
        "# Facts are gathered only where a play asks for the subset it uses.",
        "gathering = explicit",
        "interpreter_python = auto_silent",
        "callback_result_format = yaml",
        "# Ansible's workers skip its objects when they collect garbage (faster runs).",
        f"callbacks_enabled = {COLLECTION}.gc_freeze",
        "retry_files_enabled = False",
        "host_key_checking = True",
        "forks = 10",
    ]
    if is_checkout(collection):
        lines += [
            f"# siteops runs from its checkout: the collection {COLLECTION} is linked here.",
            f"collections_path = {collections_path(collection)}"
            ":~/.ansible/collections:/usr/share/ansible/collections",
        ]
    if mitogen:
        lines += [
            "# Mitogen for Ansible: one Python per host for a whole run (much faster).",
            "# ANSIBLE_STRATEGY=linear turns it off for one run.",
            f"strategy = {COLLECTION}.mitogen_linear",
            "deprecation_warnings = False",
        ]
    lines += [
        "",
        "[ssh_connection]",
        "pipelining = True",
        "ssh_args = -o ControlMaster=auto -o ControlPersist=60s",
    ]
    return "\n".join(lines) + "\n"


GITIGNORE = """\
# Private keys and local state: never commit them.
.ssh/
id_rsa
id_ecdsa
id_ed25519
*.key
.siteops.lock
.cache/
*.retry
"""

README = f"""\
# siteops project

This folder holds the hosts and sites that siteops manages; siteops itself is
installed apart from it (`pip install siteops`), so upgrading it never touches
this folder. Keep it in git: `.gitignore` keeps private keys out.

| path | what it is |
|---|---|
| `ansible.cfg` | settings siteops and `ansible-playbook` both read |
| `{INVENTORY}/{HOSTS_FILE}` | the hosts (`siteops host add` writes them) |
| `{INVENTORY}/known_hosts` | the SSH host keys siteops accepted for them |
| `{INVENTORY}/host_vars/<host>/sites.yml` | each host's sites (written by siteops only) |
| `{INVENTORY}/registry/<host>.md` | a readable registry of each host |

    siteops host add vps1 --ssh admin@203.0.113.10 --key ~/.ssh/id_ed25519
    siteops --host vps1 add-site blog --domain blog.example.org
    siteops --host vps1 deploy blog --source ./blog
    ansible-playbook {COLLECTION}.site     # the same run, with plain Ansible

The playbooks and roles are the Ansible collection `{COLLECTION}`, installed with
siteops (`{NAMESPACE}.hosting.nginx_site` and the others can be used from your
own playbooks too).
"""

EMPTY_HOSTS: dict[str, Any] = {"all": {"hosts": {}}}


def init_project(folder: Path, *, force: bool, collection: Path) -> list[Path]:
    """Write a new project folder; return the files written.

    A folder that holds anything (but ``.git``) is refused unless ``force``;
    even then an existing ``inventory/hosts.yml`` is kept as it is.
    """
    if folder.exists() and not folder.is_dir():
        raise SiteopsError(f"{folder}: a file, not a folder; choose a folder for the project")
    present = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    if not force and any(name not in _IGNORED_IN_EMPTY for name in present):
        shown = ", ".join(present[:5]) + (", …" if len(present) > 5 else "")
        raise SiteopsError(
            f"{folder}: not empty ({shown}); choose an empty folder, or give --force to "
            "write the project files into it (an existing inventory is kept)"
        )
    files = {
        folder / CONFIG: ansible_cfg(collection, mitogen=_mitogen_installed()),
        folder / ".gitignore": GITIGNORE,
        folder / "README.md": README,
    }
    hosts_file = folder / INVENTORY / HOSTS_FILE
    if not hosts_file.exists():
        files[hosts_file] = hosts_yaml_text(dict(EMPTY_HOSTS))
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, text)
    return list(files)
