"""The cache of plugins/strategy/mitogen_linear.py: Mitogen's compile and minify results on disk.

A cached result must be exactly what Mitogen computes itself, a later run must
read it instead of computing it again, and a folder someone else could have
written must never be read (minified source runs on the managed hosts).
"""

from __future__ import annotations

import marshal
import stat
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import mitogen.imports
import mitogen.minify
import pytest

from tests.conftest import load_plugin

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
    assert len(strategy.PATCHED) == 4


def test_a_renamed_target_is_reported(
    strategy: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(mitogen.minify, "minimize_source")
    assert strategy.missing_targets() == ["mitogen.minify.minimize_source"]
