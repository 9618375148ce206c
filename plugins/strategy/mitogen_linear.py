"""The ``mitogen_linear`` strategy of Mitogen for Ansible, found through this folder.

ansible.cfg names this folder in ``strategy_plugins``, so the setting does not
depend on where the virtual environment keeps its site-packages. Mitogen keeps
one Python interpreter per host and user for the whole run instead of starting
one per task and loop item, which is where most of a run's time went (see
benchmarks/RESULTS.md). Molecule does not use it: its own config keeps
Ansible's linear strategy (its create/destroy playbooks poll async tasks on
localhost, which hangs under Mitogen).

Ansible runs every task in a worker process forked from this one, so whatever
a worker loads for itself is loaded again by the next one. Before the first
task, this strategy finds once what Mitogen needs in every worker, so the
workers inherit it: the list of installed collection folders that Mitogen
looks up for every task that runs a collection's module (about 200 ms each
time with the ``ansible`` package's collections). The results are the same;
only the time to reach them moves. (What any strategy's workers load, such as
Jinja's filters and tests, plugins/callback/gc_freeze.py loads before them.)

Mitogen's controller side also compiles Python source to find what a module
imports (once per Ansible module for every ``module_utils`` file it uses:
``ansible.module_utils.basic`` and its helpers again for each of the ~20
modules of a run, and some 110 files for any module that imports
``module_utils.facts``), and it strips comments and docstrings from its own
source before sending it to the host. Both results depend only on the source
text, so they are kept in a cache folder keyed by a hash of that text (and of
the Python or Mitogen version): the first run fills it, later runs read it.
The folder is ``$SITEOPS_CACHE_DIR``, else ``$XDG_CACHE_HOME/siteops/mitogen``,
else ``~/.cache/siteops/mitogen``. It is created 0700 and used only while it
belongs to the user running Ansible and no one else may write to it (the
minified source runs on the hosts). It holds nothing but derived forms of the
installed Python files (a few MB); an unusable folder only means the work is
done again in each run, and it may be deleted at any time.

On a controller with fewer than 4 CPUs, Mitogen pins its connection
multiplexer to CPU 0 and this process, every worker and every ssh it starts
to CPU 1: the second CPU does nothing for the run while the run's processes
queue for the other (measured with 2 CPUs: a no-op run of one site took
3.17-3.33 s unpinned, 3.29-3.57 s pinned). There the strategy leaves the
placement to the kernel, as Ansible itself does. With 4 CPUs or more,
Mitogen's placement stays as it is.

A host reached as a login user with ``become: true`` (siteops' ``deploy``)
is, for Mitogen, two hops: ssh as that user, then sudo to root. The first
hop's Python interpreter only starts the second, yet it is bootstrapped,
imports Ansible's module_utils and forks a spare interpreter like any other
(about 0.2 s of every run on the 2-CPU machine of benchmarks/RESULTS.md).
Where the sudo is to root, without a password and with no flags but -H, -S
and -n, this strategy makes the pair one hop: ssh runs ``sudo -n [-H] -u
root -- python3``, as siteops' lock session does (:func:`sudo_folded`).
Tasks that become another user (``become_user: postgres``) keep both hops.

Turn it off for one run with ``ANSIBLE_STRATEGY=linear``.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import inspect
import marshal
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import CodeType
from typing import Any

import ansible_mitogen.affinity
import ansible_mitogen.connection
import ansible_mitogen.module_finder
import ansible_mitogen.planner
import mitogen
import mitogen.master
import mitogen.minify
from ansible.utils.display import Display
from ansible_mitogen.plugins.strategy.mitogen_linear import StrategyModule as _MitogenLinear

__all__ = ["StrategyModule"]


@functools.cache
def _collection_dirs() -> tuple[bytes, ...]:
    """The folder of each installed collection (``<root>/ansible_collections/<ns>/<name>``).

    What ``ansible.collections.list.list_collection_dirs()`` gives, in the order
    Ansible's collection finder searches the roots (a collection in two roots:
    the first), without importing each collection's package to dedupe (it reads
    every collection's meta/runtime.yml: about 0.1 s of each run with the ~90
    collections of the ``ansible`` package).
    """
    import ansible_collections  # Ansible's collection finder provides it, once installed

    found: dict[tuple[str, str], bytes] = {}
    for root in map(Path, ansible_collections.__path__):
        for namespace in sorted(_subdirs(root)):
            for name in sorted(_subdirs(root / namespace)):
                found.setdefault((namespace, name), bytes(root / namespace / name))
    return tuple(found.values())


def _subdirs(path: Path) -> list[str]:
    try:
        return [
            e.name for e in os.scandir(path) if e.is_dir() and not e.name.startswith(("_", "."))
        ]
    except OSError:
        return []


def _load_collections(invocation: Any) -> None:
    """Mitogen's ``_load_collections``, reading the folder list found once per run."""
    for collection_path in _collection_dirs():
        invocation._extra_sys_paths.add(collection_path.decode("utf-8"))


def _cache_dir() -> Path:
    if os.environ.get("SITEOPS_CACHE_DIR"):
        return Path(os.environ["SITEOPS_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "siteops" / "mitogen"


@functools.cache
def _trusted_cache_dir() -> Path | None:
    """The cache folder, created 0700; None unless it belongs to this user and only they may write.

    Minified source runs on the managed hosts (as root), so files anyone else
    could have written are never read.
    """
    try:
        root = _cache_dir()
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = root.stat()
    except (OSError, RuntimeError, KeyError):  # RuntimeError, KeyError: no home folder
        return None
    if st.st_uid != os.getuid() or st.st_mode & 0o022:
        return None
    return root


class _DerivedCache:
    """Results that depend only on a source text, kept in memory and in files named by its hash."""

    def __init__(
        self,
        kind: str,
        version: str,
        dump: Callable[[Any], bytes],
        load: Callable[[bytes], Any],
        root: Callable[[], Path | None] = _trusted_cache_dir,
    ) -> None:
        self._kind, self._version, self._dump, self._load = kind, version, dump, load
        self._root = root
        self._memory: dict[bytes, Any] = {}

    def get(self, source: str | bytes, compute: Callable[[], Any]) -> Any:
        """The result for ``source``: from memory, else its file, else ``compute()`` (stored)."""
        raw = source.encode("utf-8") if isinstance(source, str) else source
        key = hashlib.sha256(self._version.encode() + b"\0" + raw).digest()
        if key in self._memory:
            return self._memory[key]
        root = self._root()
        path = None if root is None else root / self._kind / key.hex()
        value = None if path is None else self._read(path)
        if value is None:
            value = compute()
            if path is not None:
                self._store(path, self._dump(value))
        self._memory[key] = value
        return value

    def _read(self, path: Path) -> Any:
        """The stored result, or None when the file is missing or damaged."""
        try:
            return self._load(path.read_bytes())
        except (OSError, ValueError, EOFError, TypeError, UnicodeDecodeError):
            return None

    @staticmethod
    def _store(path: Path, data: bytes) -> None:
        try:
            path.parent.mkdir(mode=0o700, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")  # mode 0600
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            Path(tmp).replace(path)
        except OSError:
            pass


_CODE = _DerivedCache("code", importlib.util.MAGIC_NUMBER.hex(), marshal.dumps, marshal.loads)
_MINIFIED = _DerivedCache(
    "minified", ".".join(map(str, mitogen.__version__)),
    lambda text: text.encode("utf-8"), lambda data: data.decode("utf-8"),
)  # fmt: skip
_minimize_source = mitogen.minify.minimize_source


def _compile(source: str | bytes, filename: str, mode: str, *args: Any) -> CodeType:
    """``compile`` for Mitogen's import scans: they only read the imports of the code object."""
    if args or mode != "exec":
        return compile(source, filename, mode, *args)
    code: CodeType = _CODE.get(source, lambda: compile(source, filename, mode))
    return code


def _minimized(source: str | bytes) -> str:
    text: str = _MINIFIED.get(source, lambda: _minimize_source(source))
    return text


# What run() replaces in Mitogen, as (module, name, how the name is used there). A
# Mitogen release that renames one of them would silently lose the speed-up, so
# missing_targets() checks them: the unit tests fail, and run() warns.
PATCHED = (
    (ansible_mitogen.planner, "_load_collections", "attribute"),
    (mitogen.minify, "minimize_source", "attribute"),
    # These two call the builtin compile(); a module global of that name shadows it.
    (ansible_mitogen.module_finder, "compile", "call"),
    (mitogen.master, "compile", "call"),
    # Mitogen's CPU placement, which run() turns off below 4 CPUs (see the module's doc).
    (ansible_mitogen.affinity, "policy", "attribute"),
    # Where a task's connection is planned: run() folds an ssh login and a sudo to root.
    (ansible_mitogen.connection.Connection, "_stack_from_spec", "attribute"),
)

# The sudo flags a folded login keeps: Ansible's default become_flags (-H -S -n).
# -S (a password on stdin) has nothing to read: only a sudo without a password is folded.
_FOLDABLE_SUDO_FLAGS = frozenset({"-H", "-S", "-n"})


def sudo_folded(stack: tuple[dict[str, Any], ...]) -> tuple[dict[str, Any], ...]:
    """``stack`` with an ssh login followed by a sudo to root made one hop.

    Mitogen reaches ``become: true`` as [ssh as the login user, sudo to root]: a
    Python interpreter for the login user, whose only work is to start root's
    through sudo, and which imports Ansible's module_utils and forks a spare
    interpreter like any other. When the last two hops are that pair, without a
    become password and with no sudo flags but -H, -S and -n, this returns the
    ssh hop alone with ``sudo -n [-H] -u root --`` in front of its Python: the
    same root interpreter, started the way siteops' own lock session starts it
    (``ssh … sudo -n python3``). Any other stack comes back as it is.
    """
    if len(stack) < 2:
        return stack
    login, become = stack[-2], stack[-1]
    if login.get("method") != "ssh" or become.get("method") != "sudo":
        return stack
    login_args, become_args = login.get("kwargs") or {}, become.get("kwargs") or {}
    flags = [str(flag) for flag in become_args.get("sudo_args") or []]
    python = become_args.get("python_path") or login_args.get("python_path")
    if (
        become_args.get("username") != "root"
        or become_args.get("password")
        or not set(flags) <= _FOLDABLE_SUDO_FLAGS
        or not isinstance(python, list)
        or not python
    ):
        return stack
    sudo = [str(become_args.get("sudo_path") or "sudo"), "-n", *(["-H"] if "-H" in flags else [])]
    root_python = [*sudo, "-u", "root", "--", *python]
    folded = {**login, "kwargs": {**login_args, "python_path": root_python}}
    return (*stack[:-2], folded)


_planned_stack = ansible_mitogen.connection.Connection._stack_from_spec


def _stack_from_spec(connection: Any, spec: Any, stack: Any = (), seen_names: Any = ()) -> Any:
    return sudo_folded(tuple(_planned_stack(connection, spec, stack, seen_names)))


#: Below this many CPUs, Mitogen's pinning puts the controller, its workers and
#: their ssh processes on one CPU; the strategy then leaves placement to the kernel.
PINNING_MIN_CPUS = 4


def unpinned_below(min_cpus: int = PINNING_MIN_CPUS, cpus: int | None = None) -> bool:
    """Turn Mitogen's CPU pinning off when the controller has fewer than ``min_cpus`` CPUs.

    Mitogen decides its placement from the CPU count when it is imported: below 4,
    it pins the multiplexer to CPU 0 and everything else of the run to CPU 1. Its
    base ``Policy`` places nothing. True when pinning was turned off.
    """
    count = os.cpu_count() if cpus is None else cpus
    if count is None or count >= min_cpus:
        return False
    ansible_mitogen.affinity.policy = ansible_mitogen.affinity.Policy()
    return True


def missing_targets() -> list[str]:
    """The patched names this Mitogen no longer has (or no longer calls), as ``module.name``."""
    missing = []
    for module, name, use in PATCHED:
        if use == "attribute":
            found = hasattr(module, name)
        else:
            found = module.__loader__ is not None and f"{name}(" in inspect.getsource(module)
        if not found:
            missing.append(f"{module.__name__}.{name}")
    return missing


class StrategyModule(_MitogenLinear):  # type: ignore[misc]
    """Mitogen's linear strategy; what Mitogen needs in each worker is found before the fork."""

    def run(self, iterator: Any, play_context: Any) -> Any:
        missing = missing_targets()
        if missing:
            Display().warning(
                "siteops' Mitogen strategy: this Mitogen has no "
                + ", ".join(missing)
                + "; runs work but lose part of their speed-up (update plugins/strategy/)"
            )
        _collection_dirs()
        unpinned_below()
        ansible_mitogen.planner._load_collections = _load_collections
        # Module globals shadow the builtin for these two modules' functions only.
        ansible_mitogen.module_finder.compile = _compile
        mitogen.master.compile = _compile
        mitogen.minify.minimize_source = _minimized
        ansible_mitogen.connection.Connection._stack_from_spec = _stack_from_spec
        return super().run(iterator, play_context)
