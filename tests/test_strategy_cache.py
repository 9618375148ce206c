"""The cache of plugins/strategy/mitogen_linear.py: Mitogen's compile and minify results on disk.

A cached result must be exactly what Mitogen computes itself, a later run must
read it instead of computing it again, and a folder someone else could have
written must never be read (minified source runs on the managed hosts).
"""

from __future__ import annotations

import json
import marshal
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import mitogen.imports  # type: ignore[import-untyped]
import mitogen.minify  # type: ignore[import-untyped]
import pytest

from siteops import resources
from tests.conftest import REPO, load_plugin

PLUGIN = Path(__file__).resolve().parent.parent / "plugins" / "strategy" / "mitogen_linear.py"
SOURCE = (
    '"""Doc."""\n\nimport os  # why\nfrom json import dumps\n\n\ndef f():\n    """Doc."""\n'
    "    return os\n"
)


@pytest.fixture
def strategy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    monkeypatch.setenv("SITEOPS_CACHE_DIR", str(tmp_path / "cache"))
    module = load_plugin(PLUGIN, "siteops_test_mitogen_linear")
    yield module
    module._trusted_cache_dir.cache_clear()


def _never() -> Any:
    raise AssertionError("computed again although the result was cached")


def _imports(code: Any) -> list[tuple[int, str, tuple[str, ...]]]:
    return [
        (level, name, tuple(names)) for level, name, names in mitogen.imports.codeobj_imports(code)
    ]


def test_compiled_code_is_cached_on_disk_and_read_by_a_later_run(
    strategy: ModuleType, tmp_path: Path
) -> None:
    code = strategy._compile(SOURCE.encode(), "<test>", "exec")
    assert _imports(code) == _imports(compile(SOURCE, "<test>", "exec"))

    files = list((tmp_path / "cache" / "code").iterdir())
    assert len(files) == 1
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "cache").stat().st_mode) == 0o700

    later = strategy._DerivedCache("code", strategy._CODE._version, marshal.dumps, marshal.loads)
    assert _imports(later.get(SOURCE.encode(), _never)) == _imports(code)


def test_minified_source_is_mitogens_own_and_read_back(strategy: ModuleType) -> None:
    expected = mitogen.minify.minimize_source(SOURCE)
    assert strategy._minimized(SOURCE) == expected
    assert "# why" not in expected

    later = strategy._DerivedCache(
        "minified", strategy._MINIFIED._version, str.encode, bytes.decode
    )  # fmt: skip
    assert later.get(SOURCE, _never) == expected


def test_a_damaged_file_is_computed_again_and_replaced(
    strategy: ModuleType, tmp_path: Path
) -> None:
    strategy._compile(SOURCE, "<test>", "exec")
    (damaged,) = (tmp_path / "cache" / "code").iterdir()
    damaged.write_bytes(b"not marshal data")

    later = strategy._DerivedCache("code", strategy._CODE._version, marshal.dumps, marshal.loads)
    code = later.get(SOURCE, lambda: compile(SOURCE, "<test>", "exec"))
    assert _imports(code) == _imports(compile(SOURCE, "<test>", "exec"))
    assert marshal.loads(damaged.read_bytes()) == code  # noqa: S302 - our own file


def test_a_folder_others_may_write_is_neither_read_nor_written(
    strategy: ModuleType, tmp_path: Path
) -> None:
    root = tmp_path / "cache"
    root.mkdir(mode=0o700)
    planted = root / "minified"
    planted.mkdir()
    key = strategy.hashlib.sha256(strategy._MINIFIED._version.encode() + b"\0" + SOURCE.encode())
    (planted / key.hexdigest()).write_text("import os; os.system('planted')\n")
    root.chmod(0o777)  # the unsafe folder under test

    assert strategy._trusted_cache_dir() is None
    assert strategy._minimized(SOURCE) == mitogen.minify.minimize_source(SOURCE)
    assert len(list(planted.iterdir())) == 1


def test_an_unusable_folder_still_gives_the_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, strategy: ModuleType
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("SITEOPS_CACHE_DIR", str(blocker / "cache"))
    strategy._trusted_cache_dir.cache_clear()

    assert strategy._trusted_cache_dir() is None
    code = strategy._compile(SOURCE, "<test>", "exec")
    assert _imports(code) == _imports(compile(SOURCE, "<test>", "exec"))


def test_every_name_the_strategy_patches_exists_in_the_installed_mitogen(
    strategy: ModuleType,
) -> None:
    # Fails loudly when a Mitogen release renames what the strategy replaces.
    assert strategy.missing_targets() == []
    assert len(strategy.PATCHED) == 6


def test_a_renamed_target_is_reported(
    strategy: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(mitogen.minify, "minimize_source")
    assert strategy.missing_targets() == ["mitogen.minify.minimize_source"]


def test_below_four_cpus_mitogen_pins_nothing(
    strategy: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two CPUs: Mitogen would pin the controller, the workers and ssh to CPU 1.
    import ansible_mitogen.affinity as affinity  # type: ignore[import-untyped]

    pinned = affinity.FixedPolicy(cpu_count=2)
    assert pinned._reserve_mux and pinned._reserve_shift == 1  # its placement below 4 CPUs
    monkeypatch.setattr(affinity, "policy", pinned)

    assert strategy.unpinned_below(cpus=2) is True
    assert type(affinity.policy) is affinity.Policy  # places nothing: the kernel decides


def test_with_four_cpus_or_more_mitogen_keeps_its_placement(
    strategy: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ansible_mitogen.affinity as affinity

    pinned = affinity.FixedPolicy(cpu_count=8)
    monkeypatch.setattr(affinity, "policy", pinned)

    assert strategy.unpinned_below(cpus=8) is False
    assert affinity.policy is pinned


FIND_BOTH = """
import json, sys
from ansible import constants as C
from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder
_AnsibleCollectionFinder(C.COLLECTIONS_PATHS, C.COLLECTIONS_SCAN_SYS_PATH)._install()
import ansible.collections.list
from tests.conftest import load_plugin
strategy = load_plugin(sys.argv[1], "siteops_strategy")
print(json.dumps([sorted(p.decode() for p in found) for found in (
    ansible.collections.list.list_collection_dirs(), strategy._collection_dirs())]))
"""


def test_the_collection_folders_are_ansible_s_own_list_the_first_of_two_copies_included(
    tmp_path: Path,
) -> None:
    # A second copy of a collection in a root searched first: Ansible uses that one.
    copy = tmp_path / "first" / "ansible_collections" / "community" / "postgresql"
    copy.mkdir(parents=True)
    (copy / "galaxy.yml").write_text(
        "namespace: community\nname: postgresql\nversion: 9.9.9\nreadme: README.md\n"
        "authors: [test]\n"
    )
    roots = [tmp_path / "first", resources.collections_path(REPO)]
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": os.pathsep.join(map(str, roots))}
    done = subprocess.run(
        [sys.executable, "-c", FIND_BOTH, str(PLUGIN)],
        capture_output=True, text=True, env=env, cwd=REPO, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    ansible_s, strategy_s = json.loads(done.stdout)
    assert strategy_s == ansible_s
    assert str(copy) in strategy_s
    assert len(strategy_s) > 50  # the collections of the ansible package, and siteops.hosting
    assert any(p.endswith("ansible_collections/siteops/hosting") for p in strategy_s)
