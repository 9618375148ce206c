"""The registry file: an exclusive lock between siteops runs, atomic and stable saves."""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import time
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader  # type: ignore[import-untyped]

from siteops.errors import SiteModelError
from siteops.fileformat import SITES_FORMAT
from siteops.inventory import load_host_sites, sites_path
from siteops.model import HostSites
from siteops.registry import HEADER, Registry, RegistryLocked, holder_of, render
from tests.conftest import EXAMPLE_INVENTORY

SPAWN = multiprocessing.get_context("spawn")


def example() -> HostSites:
    return load_host_sites(sites_path(EXAMPLE_INVENTORY, "vps1"))


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """A host's sites.yml holding the example sites, written by siteops."""
    target = tmp_path / "host_vars" / "vps1" / "sites.yml"
    with Registry(target).locked(purpose="fixture") as reg:
        reg.save(example())
    return target


# --- children (module level: they run in spawned processes) ---------------------


def _hold_lock(target: str, purpose: str, held: Event, release: Event) -> None:
    with Registry(Path(target)).locked(timeout=5, purpose=purpose):
        held.set()
        release.wait(30)


def _crash_between_write_and_replace(target: str) -> None:
    def die(*_args: object) -> None:
        os._exit(17)  # the process dies before the rename, like a power cut or kill -9

    os.replace = die  # type: ignore[assignment]
    with Registry(Path(target)).locked(purpose="crash") as reg:
        sites = reg.load()
        sites.siteops_sites.pop("docs-site")
        reg.save(sites)


def _start_holder(path: Path, purpose: str) -> tuple[multiprocessing.process.BaseProcess, Event]:
    held, release = SPAWN.Event(), SPAWN.Event()
    child = SPAWN.Process(target=_hold_lock, args=(str(path), purpose, held, release))
    child.start()
    assert held.wait(30), "the child did not get the lock"
    return child, release


# --- lock ------------------------------------------------------------------------


def test_a_second_process_times_out_naming_the_holder(path: Path) -> None:
    child, release = _start_holder(path, "add-site shop")
    try:
        started = time.monotonic()
        with pytest.raises(RegistryLocked) as caught, Registry(path).locked(timeout=0.3):
            pytest.fail("got a lock another process holds")
        waited = time.monotonic() - started
    finally:
        release.set()
        child.join(30)
    assert waited >= 0.3
    holder = caught.value.holder
    assert holder is not None
    assert (holder.pid, holder.purpose) == (child.pid, "add-site shop")
    message = str(caught.value)
    assert f"is locked by pid {child.pid}" in message
    assert "'add-site shop'" in message
    assert f"since {holder.since}" in message
    assert "Wait for that run to finish and try again" in message


def test_a_second_process_waits_for_the_holder_then_gets_the_lock(path: Path) -> None:
    child, release = _start_holder(path, "deploy shop")
    timer = threading.Timer(0.4, release.set)
    timer.start()
    try:
        started = time.monotonic()
        with Registry(path).locked(timeout=20, purpose="add-site blog") as reg:
            waited = time.monotonic() - started
            assert reg.is_locked
            assert holder_of(path) is not None
    finally:
        timer.cancel()
        release.set()
        child.join(30)
    assert waited >= 0.3
    assert child.exitcode == 0


def test_the_lock_file_names_its_holder_only_while_held(path: Path) -> None:
    lock = path.with_name("sites.yml.lock")
    with Registry(path).locked(purpose="registry --refresh"):
        data = json.loads(lock.read_text(encoding="utf-8"))
        assert set(data) == {"pid", "user", "hostname", "purpose", "since"}
        assert (data["pid"], data["purpose"]) == (os.getpid(), "registry --refresh")
        assert data["since"].endswith("Z")
        holder = holder_of(path)
        assert holder is not None
        assert holder.pid == os.getpid()
    assert lock.read_text(encoding="utf-8") == ""
    assert holder_of(path) is None


def test_the_lock_is_free_again_after_an_error_inside(path: Path) -> None:
    with pytest.raises(ZeroDivisionError), Registry(path).locked():
        _ = 1 / 0
    with Registry(path).locked(timeout=0):
        pass


def test_a_registry_cannot_take_its_own_lock_twice(path: Path) -> None:
    reg = Registry(path)
    with (
        reg.locked(),
        pytest.raises(RuntimeError, match="already holds its lock"),
        reg.locked(),
    ):
        pytest.fail("took the same lock twice")


def test_saving_needs_the_lock(path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"save\(\) needs the lock"):
        Registry(path).save(example())


def test_ansible_ignores_the_lock_and_temporary_files(path: Path) -> None:
    host_vars = path.parent.parent
    (path.parent / ".sites.yml.abc123.tmp").write_text("{broken", encoding="utf-8")
    with Registry(path).locked():
        found = DataLoader().find_vars_files(str(host_vars), "vps1")
    assert found == [str(path)]


# --- save ------------------------------------------------------------------------


def test_saving_the_loaded_registry_again_gives_the_same_bytes(path: Path) -> None:
    first = path.read_bytes()
    with Registry(path).locked() as reg:
        reg.save(reg.load())
    assert path.read_bytes() == first
    assert render(load_host_sites(path)).encode("utf-8") == first


def test_the_file_starts_with_the_header_and_keeps_the_sites_order(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.startswith(HEADER)
    assert "Written by siteops" in HEADER
    # Insertion order, not sorted: shop comes before docs-site as in the example.
    assert text.index("\n  shop:\n") < text.index("\n  docs-site:\n")
    assert yaml.safe_load(text) == example().to_yaml_data()
    assert load_host_sites(path) == example()


def test_long_values_are_not_folded_over_lines(tmp_path: Path) -> None:
    data = example().to_yaml_data()
    command = "node server.js " + " ".join(f"--flag-{i}=value" for i in range(40))
    data["siteops_sites"]["shop"]["components"]["frontend"]["command"] = command
    text = render(HostSites.model_validate(data))
    assert f"command: {command}\n" in text


def test_a_failed_rename_leaves_the_old_file_and_no_temporary_file(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = path.read_bytes()

    def fail(*_args: object) -> None:
        raise OSError(28, "No space left on device")

    with Registry(path).locked() as reg:
        sites = reg.load()
        sites.siteops_sites.pop("docs-site")
        monkeypatch.setattr(os, "replace", fail)
        with pytest.raises(OSError, match="No space left"):
            reg.save(sites)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["sites.yml", "sites.yml.lock"]


def test_a_crash_between_write_and_rename_leaves_the_old_file_intact(path: Path) -> None:
    before = path.read_bytes()
    child = SPAWN.Process(target=_crash_between_write_and_replace, args=(str(path),))
    child.start()
    child.join(30)
    assert child.exitcode == 17
    assert path.read_bytes() == before
    leftovers = [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    assert len(leftovers) == 1
    assert leftovers[0].startswith(".sites.yml.")  # hidden: Ansible skips it
    # The next run that takes the lock clears what the dead run left.
    with Registry(path).locked():
        pass
    assert sorted(p.name for p in path.parent.iterdir()) == ["sites.yml", "sites.yml.lock"]


def test_an_invalid_model_is_not_saved(path: Path) -> None:
    before = path.read_bytes()
    with Registry(path).locked() as reg:
        sites = reg.load()
        sites.siteops_sites["docs-site"].port_block = 0  # in place: skips validation
        with pytest.raises(SiteModelError, match="port block 0 is given to both"):
            reg.save(sites)
    assert path.read_bytes() == before


def test_the_file_mode_is_kept(path: Path) -> None:
    path.chmod(0o640)
    with Registry(path).locked() as reg:
        reg.save(reg.load())
    assert path.stat().st_mode & 0o777 == 0o640


def test_a_missing_file_is_an_empty_registry_and_is_created_on_save(tmp_path: Path) -> None:
    target = tmp_path / "host_vars" / "new" / "sites.yml"
    with Registry(target).locked() as reg:
        assert reg.load() == HostSites()
        reg.save(HostSites())
    assert target.read_text(encoding="utf-8") == (
        HEADER + f"siteops_sites_format: {SITES_FORMAT}\n"
        "siteops_sites: {}\nsiteops_archived_sites: {}\n"
    )


def test_yaml_is_read_with_libyaml_into_the_same_data_as_safe_load() -> None:
    from siteops import yamltext

    # The wheels of PyYAML on PyPI carry libyaml; the fast parser is the one in use.
    assert yaml.__with_libyaml__
    assert yamltext.SafeLoader is yaml.CSafeLoader  # type: ignore[comparison-overlap]
    for path in sorted((Path(__file__).parent / "fixtures").rglob("*.yml")):
        text = path.read_text(encoding="utf-8")
        assert yamltext.load(text) == yaml.safe_load(text), path
    assert yamltext.load("") is None
    with pytest.raises(yaml.YAMLError):
        yamltext.load("a: [1\n")


def test_yaml_is_written_with_libyaml_as_safe_dump_writes_it() -> None:
    from siteops import yamltext

    assert yamltext.SafeDumper is yaml.CSafeDumper  # type: ignore[comparison-overlap]
    options: dict[str, Any] = {"sort_keys": False, "default_flow_style": False,
                               "allow_unicode": True, "width": 4096}  # fmt: skip
    odd = {"é": "héllo → ü", "colon": "a: b", "lines": "one\ntwo\n", "empty": "", "none": None,
           "zero": "0123", "quote": "'q'", "long": "word " * 2000,
           "list": [1, "2", {"k": []}]}  # fmt: skip
    for path in sorted((Path(__file__).parent / "fixtures").rglob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert yamltext.dump(data, **options) == yaml.safe_dump(data, **options), path
    assert yamltext.dump(odd, **options) == yaml.safe_dump(odd, **options)
