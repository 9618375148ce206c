"""The CLI's operations with the playbook runs replaced: what they save, when, and what they run."""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from siteops import control, coordination, hostlock
from siteops import operations as ops
from siteops.errors import SiteModelError
from siteops.fileformat import SITES_FORMAT
from siteops.hostfacts import FACTS_ARTIFACT
from siteops.inventory import load_host_sites
from siteops.layout import Layout, layout
from siteops.model import HostSites, SiteStatus
from siteops.ports import block_ports
from siteops.registry import Registry, RegistryLocked, holder_of, inventory_locked
from siteops.revision import RegistryConflict
from siteops.runner import Progress, RunResult
from siteops.sites import SiteAnswers
from siteops.target import Target
from tests.conftest import REPO


@dataclass
class Call:
    playbook: str
    extravars: dict[str, Any]
    check: bool
    # The registry as it was on disk while the playbook ran.
    registry: HostSites
    locked_by: str | None
    # Who held the host's lock while the playbook ran (None: nobody).
    host_locked_by: str | None = None


def ok_result(artifacts: Mapping[str, Any] | None = None) -> RunResult:
    return RunResult(
        rc=0,
        status="successful",
        stats={"ok": {"sandbox": 5}, "changed": {"sandbox": 2}},
        log_path=None,
        artifacts=artifacts or {},
    )


def failed_result() -> RunResult:
    return RunResult(rc=2, status="failed", stats={"failures": {"sandbox": 1}}, log_path=None)


# The host whose side (lock, record, audit log) the next host session opens (see host_paths).
HOST_NOW = ["sandbox"]


@dataclass(frozen=True)
class FakeTarget(Target):
    """A Target whose playbook runs are scripted: facts from ``listening``, results by playbook."""

    listening: tuple[int, ...] = ()
    results: dict[str, RunResult] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    # Each run started ahead of its host session: (playbook, whether it went past its gate).
    started_runs: list[list[Any]] = field(default_factory=list)

    def variables(self) -> dict[str, Any]:
        HOST_NOW[0] = self.host  # the host's side runs here, in its own folder (host_paths)
        return {"ansible_connection": "local"}

    def run(
        self,
        playbook: str,
        extravars: Mapping[str, Any],
        *,
        check: bool,
        on_progress: Any,
        cancel: Any = None,
    ) -> RunResult:
        on_progress(Progress(task="a task"))
        holder = holder_of(self.sites_file)
        on_host = hostlock.lock_status(self.variables(), self.host)
        self.calls.append(
            Call(
                playbook,
                dict(extravars),
                check,
                load_host_sites(self.sites_file),
                holder.purpose if holder else None,
                on_host["holder"]["purpose"] if on_host["held"] else None,
            )
        )
        if playbook == "facts.yml":
            sites: dict[str, Any] = {
                name: {"units": {}} for name in extravars["siteops_facts_sites"]
            }
            return ok_result({FACTS_ARTIFACT: {"listening": list(self.listening), "sites": sites}})
        # site.yml's first check: a new site's block must have no listener.
        new_ports = [p for ports in extravars.get("siteops_new_sites", {}).values() for p in ports]
        busy = sorted(set(self.listening) & set(new_ports))
        if playbook == "site.yml" and busy:
            return RunResult(rc=2, status="failed", stats={"failures": {"sandbox": 1}},
                             log_path=None, artifacts={ops.BUSY_PORTS_ARTIFACT: busy})  # fmt: skip
        return self.results.get(playbook, ok_result())

    @contextlib.contextmanager
    def started(
        self, playbook: str, extravars: Mapping[str, Any], *, on_progress: Any
    ) -> Iterator[Any]:
        """A started run: it goes past its gate (and is recorded) when its result is asked."""
        target, entry = self, [playbook, False]
        self.started_runs.append(entry)

        class Started:
            def result(self, cancel: Any = None) -> RunResult:
                entry[1] = True
                return target.run(playbook, extravars, check=False, on_progress=on_progress)

        yield Started()


@pytest.fixture(autouse=True)
def host_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The host's lock, registry record and audit log under ``tmp_path/host``."""
    root = tmp_path / "hosts"

    def moved() -> Layout:
        host = root / HOST_NOW[0]
        return replace(
            layout(),
            host_lock=str(host / "run/host.lock"),
            registry_dir=str(host / "registry"),
            audit_log=str(host / "audit.jsonl"),
            sites_root=str(host / "srv"),
        )

    monkeypatch.setattr(hostlock, "layout", moved)
    monkeypatch.setattr(control, "layout", moved)
    return root


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    (tmp_path / "hosts.yml").write_text("all:\n  hosts:\n    sandbox: {}\n", encoding="utf-8")
    return tmp_path


def target(inventory: Path, **changes: Any) -> FakeTarget:
    return FakeTarget(inventory, "sandbox", REPO, inventory / "logs", 1.0, **changes)


def answers(*domains: str, **changes: Any) -> SiteAnswers:
    return SiteAnswers(domains=list(domains), block=0, runtime="static", **changes)


def nothing(_: object) -> None:
    pass


def add(t: FakeTarget, name: str, *domains: str, dry_run: bool = False) -> ops.Added:
    return ops.add(t, name, answers(*domains), dry_run=dry_run, on_progress=nothing)


def test_add_saves_the_site_pending_runs_only_it_then_marks_it_active(inventory: Path) -> None:
    t = target(inventory)

    added = add(t, "shop", "shop.test")

    [site_run] = t.calls  # one Ansible run
    assert site_run.playbook == "site.yml"
    assert site_run.extravars == {"siteops_only": ["shop"],
                                  "siteops_new_sites": {"shop": block_ports(0)}}  # fmt: skip
    assert site_run.check is False
    assert site_run.registry.sites["shop"].status == "pending"
    assert site_run.locked_by == "add-site shop"  # the lock is held during the run
    assert site_run.host_locked_by == "add-site shop"  # and the host's
    assert load_host_sites(t.sites_file).sites["shop"].status == "active"
    assert added.site.port_block == 0
    markdown = t.registry_file.read_text(encoding="utf-8")
    assert "### Site #1: shop" in markdown
    assert holder_of(t.sites_file) is None


def test_blocks_go_to_the_lowest_free_one_and_skip_live_listeners(inventory: Path) -> None:
    add(target(inventory), "one", "one.test")
    # Something on the host listens on an API port of block 1 and a frontend port of block 3.
    busy = target(inventory, listening=(22, 4011, 3135))

    assert add(busy, "two", "two.test").site.port_block == 2
    # Block 1 was tried first, stopped by the host before any change, then block 2.
    assert [c.extravars["siteops_new_sites"]["two"][0] for c in busy.calls] == [3110, 3120]
    assert busy.calls[0].registry.sites["two"].port_block == 1  # pending while it was tried
    assert add(busy, "three", "three.test").site.port_block == 4
    assert add(target(inventory), "four", "four.test").site.port_block == 1


def test_a_block_that_stays_busy_is_reported_not_retried_forever(inventory: Path) -> None:
    t = target(inventory, listening=(3100,), results={})
    stuck = RunResult(rc=2, status="failed", stats={"failures": {"sandbox": 1}}, log_path=None,
                      artifacts={ops.BUSY_PORTS_ARTIFACT: [3100]})  # fmt: skip
    t.results["site.yml"] = stuck
    busy: set[int] = {3100}
    assert ops._block_busy(stuck, busy) is False  # nothing new: the failure is reported
    assert ops._block_busy(ok_result({ops.BUSY_PORTS_ARTIFACT: [3101]}), busy) is False
    assert busy == {3100}


@pytest.mark.parametrize(
    ("name", "domain", "problem"),
    [
        ("My_App", "new.test", "name: site name 'My_App' may use only lowercase"),
        ("shop", "other.test", "name: site 'shop' already exists"),
        ("blog", "shop.test", "domains: 'shop.test' is already served by site 'shop'"),
        ("blog", "not a domain", "domains"),
    ],
)
def test_bad_input_is_refused_before_the_host_is_contacted(
    inventory: Path, name: str, domain: str, problem: str
) -> None:
    add(target(inventory), "shop", "shop.test")
    before = target(inventory).sites_file.read_bytes()
    t = target(inventory)

    with pytest.raises(SiteModelError) as caught:
        add(t, name, domain)

    assert problem in " ".join(caught.value.problems)
    assert t.calls == []
    assert t.sites_file.read_bytes() == before


def test_a_failed_run_leaves_the_site_failed_and_says_to_apply_it(inventory: Path) -> None:
    t = target(inventory, results={"site.yml": failed_result()})

    with pytest.raises(ops.RunFailed) as caught:
        add(t, "shop", "shop.test")

    assert load_host_sites(t.sites_file).sites["shop"].status == "failed"
    assert "siteops apply shop" in caught.value.hint
    assert caught.value.result.exit_code == 2
    # Adding it again points at the way to finish it instead.
    with pytest.raises(SiteModelError, match="siteops apply shop"):
        add(target(inventory), "shop", "shop.test")
    ops.apply(target(inventory), ["shop"], dry_run=False, on_progress=nothing)
    assert load_host_sites(t.sites_file).sites["shop"].status == "active"


def test_a_dry_run_passes_the_intended_sites_in_check_mode_and_writes_nothing(
    inventory: Path,
) -> None:
    add(target(inventory), "shop", "shop.test")
    before = {p: p.read_bytes() for p in inventory.rglob("*") if p.is_file()}
    t = target(inventory)

    added = add(t, "blog", "blog.test", dry_run=True)

    run = t.calls[-1]
    assert (run.playbook, run.check) == ("site.yml", True)
    assert run.extravars["siteops_only"] == ["blog"]
    assert set(run.extravars["siteops_sites"]) == {"shop", "blog"}
    assert added.site.port_block == 1
    after = {p: p.read_bytes() for p in inventory.rglob("*") if p.is_file()}
    assert after == before


def test_the_lock_holder_is_named_to_a_second_run(inventory: Path) -> None:
    t = target(inventory)
    with (
        Registry(t.sites_file).locked(purpose="add-site first"),
        pytest.raises(Exception, match="add-site first") as caught,
    ):
        add(target(inventory), "shop", "shop.test")
    assert type(caught.value).__name__ == "RegistryLocked"
    assert not t.sites_file.exists()


def test_remove_archives_the_site_with_its_final_backup_and_frees_its_block(
    inventory: Path,
) -> None:
    add(target(inventory), "shop", "shop.test")
    add(target(inventory), "blog", "blog.test")
    backup = "/var/backups/siteops/shop/20261123T000000Z-final"
    t = target(
        inventory, results={"remove-site.yml": ok_result({ops.FINAL_BACKUP_ARTIFACT: backup})}
    )

    removed = ops.remove(t, "shop", dry_run=False, on_progress=nothing)

    (run,) = t.calls
    assert run.extravars == {"site": "shop"}
    assert run.registry.sites["shop"].status == "removing"
    sites = load_host_sites(t.sites_file)
    assert list(sites.sites) == ["blog"]
    assert sites.archived["shop"].backup == backup == removed.backup
    assert sites.archived["shop"].site.status == "active"
    # The freed block and domain can be given again; the name stays taken by the archive.
    assert add(target(inventory), "shop2", "shop.test").site.port_block == 0
    with pytest.raises(SiteModelError, match="archived site"):
        add(target(inventory), "shop", "shop3.test")


def test_forgetting_an_archived_site_frees_its_name_and_runs_nothing(inventory: Path) -> None:
    add(target(inventory), "shop", "shop.test")
    backup = "/var/backups/siteops/shop/20261123T000000Z-final"
    t = target(
        inventory, results={"remove-site.yml": ok_result({ops.FINAL_BACKUP_ARTIFACT: backup})}
    )
    ops.remove(t, "shop", dry_run=False, on_progress=nothing)
    with pytest.raises(SiteModelError, match="is an active site"):
        add(target(inventory), "blog", "blog.test")
        ops.forget(target(inventory), "blog", on_progress=nothing)
    forgetting = target(inventory)
    assert ops.forget(forgetting, "shop", on_progress=nothing).backup == backup
    assert forgetting.calls == []  # no playbook: nothing on the host changes
    assert "shop" not in load_host_sites(forgetting.sites_file).archived
    add(target(inventory), "shop", "shop.test")  # a new site of the same name
    assert "shop" in load_host_sites(forgetting.sites_file).sites
    with pytest.raises(SiteModelError, match="'ghost' is not an archived site"):
        ops.forget(target(inventory), "ghost", on_progress=nothing)


def test_a_failed_removal_keeps_the_site_removing_and_can_be_run_again(inventory: Path) -> None:
    add(target(inventory), "shop", "shop.test")
    failing = target(inventory, results={"remove-site.yml": failed_result()})

    with pytest.raises(ops.RunFailed, match="stays in the registry as removing") as caught:
        ops.remove(failing, "shop", dry_run=False, on_progress=nothing)

    assert load_host_sites(failing.sites_file).sites["shop"].status == "removing"
    assert "remove-site shop" in caught.value.hint
    backup = "/var/backups/siteops/shop/x-final"
    again = target(
        inventory, results={"remove-site.yml": ok_result({ops.FINAL_BACKUP_ARTIFACT: backup})}
    )
    ops.remove(again, "shop", dry_run=False, on_progress=nothing)
    assert "shop" in load_host_sites(again.sites_file).archived


def test_remove_refuses_unknown_and_archived_sites(inventory: Path) -> None:
    t = target(inventory)
    with pytest.raises(SiteModelError, match="'ghost' is unknown"):
        ops.remove(t, "ghost", dry_run=False, on_progress=nothing)
    assert t.calls == []


def test_apply_without_names_converges_the_baseline_and_every_site(inventory: Path) -> None:
    add(target(inventory), "shop", "shop.test")
    t = target(inventory)

    applied = ops.apply(t, [], dry_run=False, on_progress=nothing)

    assert [c.playbook for c in t.calls] == ["all.yml"]
    assert applied.names == ["shop"]
    # Started ahead, it went past its gate under both locks.
    assert t.started_runs == [["all.yml", True]]
    assert (t.calls[0].locked_by, t.calls[0].host_locked_by) == ("apply (all)", "apply (all)")
    with pytest.raises(SiteModelError, match="'ghost' is not in the registry"):
        ops.apply(t, ["ghost"], dry_run=False, on_progress=nothing)


def test_a_missing_inventory_is_named(tmp_path: Path) -> None:
    t = target(tmp_path / "nowhere")
    with pytest.raises(SiteModelError, match=r"no hosts\.yml here"):
        add(t, "shop", "shop.test")


def two_hosts(inventory: Path) -> FakeTarget:
    """Host ``other`` next to ``sandbox`` in the inventory (its target is returned)."""
    (inventory / "hosts.yml").write_text(
        "all:\n  hosts:\n    sandbox: {}\n  children:\n    web:\n      hosts:\n        other: {}\n",
        encoding="utf-8",
    )
    return FakeTarget(inventory, "other", REPO, inventory / "logs", 1.0)


def test_each_host_of_an_inventory_has_its_own_registry(inventory: Path) -> None:
    other = two_hosts(inventory)
    add(target(inventory), "shop", "shop.test")

    # The same name and block are free on another host; blocks start at 0 on each.
    assert add(other, "shop", "shop.other.test").site.port_block == 0
    assert other.sites_file != target(inventory).sites_file
    assert list(load_host_sites(other.sites_file).sites) == ["shop"]
    assert list(load_host_sites(target(inventory).sites_file).sites) == ["shop"]
    assert other.registry_file.name == "other.md"


def test_a_domain_of_another_host_is_refused_before_anything_is_written(inventory: Path) -> None:
    other = two_hosts(inventory)
    add(target(inventory), "shop", "shop.test", "www.shop.test")
    before = {p: p.read_bytes() for p in inventory.rglob("*") if p.is_file()}

    with pytest.raises(SiteModelError) as caught:
        add(other, "blog", "blog.test", "WWW.shop.test")

    assert caught.value.problems[0].startswith(
        "domains: 'WWW.shop.test' is already served by site 'shop' on host 'sandbox'"
    )
    assert other.calls == []
    assert {p: p.read_bytes() for p in inventory.rglob("*") if p.is_file()} == before
    # A dry run is refused the same way.
    with pytest.raises(SiteModelError, match="on host 'sandbox'"):
        add(other, "blog", "shop.test", dry_run=True)


def test_a_domain_archived_on_another_host_is_free(inventory: Path) -> None:
    other = two_hosts(inventory)
    add(target(inventory), "shop", "shop.test")
    backup = "/var/backups/siteops/shop/x-final"
    removing = target(
        inventory, results={"remove-site.yml": ok_result({ops.FINAL_BACKUP_ARTIFACT: backup})}
    )
    ops.remove(removing, "shop", dry_run=False, on_progress=nothing)

    assert add(other, "shop", "shop.test").site.domains.primary == "shop.test"


def test_a_host_not_in_hosts_yml_is_not_consulted(inventory: Path) -> None:
    gone = FakeTarget(inventory, "gone", REPO, inventory / "logs", 1.0)
    add(gone, "shop", "shop.test")  # host_vars/gone/ exists, hosts.yml does not list it

    assert add(target(inventory), "shop", "shop.test").site.port_block == 0


def test_a_domain_taken_on_another_host_during_the_run_is_refused_at_save(
    inventory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = two_hosts(inventory)
    racing = target(inventory)
    allocate = ops.allocate_block  # type: ignore[attr-defined]
    calls: list[int] = []

    def rival_first(taken: set[int], busy: set[int]) -> int:
        # The third call comes after this host's checks (before and under the lock)
        # passed, just before it saves: then another host takes the domain.
        calls.append(1)
        if len(calls) == 3:
            monkeypatch.setattr(ops, "allocate_block", allocate)
            add(other, "rival", "shop.test")
        return allocate(taken, busy)

    monkeypatch.setattr(ops, "allocate_block", rival_first)

    with pytest.raises(SiteModelError, match=r"'shop\.test' is already served by site 'rival'"):
        add(racing, "shop", "shop.test")

    assert racing.calls == []  # the site's run never started
    assert not racing.sites_file.exists()
    assert list(load_host_sites(other.sites_file).sites) == ["rival"]


def test_the_inventory_lock_is_held_while_the_new_site_is_saved(inventory: Path) -> None:
    t = target(inventory)
    with (
        inventory_locked(inventory, timeout=1, purpose="sandbox up other"),
        pytest.raises(RegistryLocked, match="'sandbox up other'") as caught,
    ):
        add(t, "shop", "shop.test")
    assert caught.value.path == inventory
    assert t.calls == []
    assert not t.sites_file.exists()
    assert add(target(inventory), "shop", "shop.test").site.status == "active"


def test_a_file_of_an_older_format_is_written_in_the_current_one_only_when_saved(
    inventory: Path,
) -> None:
    fixtures = Path(__file__).resolve().parent / "fixtures"
    t = target(inventory)
    t.sites_file.parent.mkdir(parents=True)
    t.sites_file.write_bytes((fixtures / "sites-format-0.yml").read_bytes())

    ops.apply(t, ["shop"], dry_run=True, on_progress=nothing)
    assert t.sites_file.read_bytes() == (fixtures / "sites-format-0.yml").read_bytes()

    ops.apply(t, ["shop"], dry_run=False, on_progress=nothing)
    assert t.sites_file.read_bytes() == (fixtures / f"sites-format-{SITES_FORMAT}.yml").read_bytes()


def operator_copy(inventory: Path, tmp_path: Path) -> FakeTarget:
    """A second copy of the inventory (another operator's clone), for the same host."""
    copy = tmp_path / "copy"
    shutil.copytree(inventory, copy)
    return target(copy)


def test_two_copies_of_an_inventory_share_the_hosts_record(inventory: Path, tmp_path: Path) -> None:
    alice, bob = target(inventory), operator_copy(inventory, tmp_path)
    add(alice, "shop", "shop.test")

    # Bob's copy has not seen shop: add-site takes the host's copy first, then adds.
    notes: list[Any] = []
    added = ops.add(bob, "blog", answers("blog.test"), dry_run=False, on_progress=notes.append)
    assert added.site.port_block == 1  # not shop's block 0
    assert list(load_host_sites(bob.sites_file).sites) == ["shop", "blog"]
    [note] = [n for n in notes if isinstance(n, str)]
    assert note.startswith("this inventory's sites file was behind the host's revision 2")
    assert note.endswith("took the host's copy first: shop: only on the host")

    # Alice's copy is now behind the host's: refused before any run or write.
    before = alice.sites_file.read_bytes()
    with pytest.raises(RegistryConflict) as caught:
        ops.apply(alice, ["shop"], dry_run=False, on_progress=nothing)
    message = str(caught.value)
    assert "this inventory's sites file is revision 2, older than the host's revision 4" in message
    assert "Sites that differ: blog: only on the host" in message
    assert "`siteops --host sandbox registry pull`" in message
    assert [c.playbook for c in alice.calls] == ["site.yml"]  # only her add-site's
    assert alice.started_runs == [["site.yml", False]]  # started, never let past its gate
    assert alice.sites_file.read_bytes() == before

    pulled = coordination.registry_pull(alice, dry_run=False)
    assert pulled.written and pulled.changes == ["blog: only on the host"]
    assert alice.sites_file.read_bytes() == bob.sites_file.read_bytes()
    assert "blog" in alice.registry_file.read_text(encoding="utf-8")
    ops.apply(alice, ["shop"], dry_run=False, on_progress=nothing)
    assert list(load_host_sites(alice.sites_file).sites) == ["shop", "blog"]


def test_a_hand_edited_sites_file_is_refused_as_diverged(inventory: Path) -> None:
    t = target(inventory)
    add(t, "shop", "shop.test")
    edited = t.sites_file.read_text(encoding="utf-8").replace("description: ''", "description: x")
    t.sites_file.write_text(edited, encoding="utf-8")

    with pytest.raises(RegistryConflict, match=r"not one the host was converged from.*"
                       r"shop: differs \(description\)"):  # fmt: skip
        ops.remove(t, "shop", dry_run=False, on_progress=nothing)
    assert load_host_sites(t.sites_file).sites["shop"].status == "active"
    assert coordination.registry_pull(t, dry_run=True).written is False
    assert t.sites_file.read_text(encoding="utf-8") == edited


def test_env_set_changes_the_operators_lines_under_the_hosts_lock(
    inventory: Path, host_paths: Path
) -> None:
    t = target(inventory)
    add(t, "shop", "shop.test")
    env = host_paths / "sandbox" / "srv" / "shop" / "shared" / ".env"
    env.parent.mkdir(parents=True)
    env.write_text("# BEGIN siteops site_user: managed\nSITE_NAME=shop\n# END siteops site_user: "
                   "managed\n", encoding="utf-8")  # fmt: skip
    t = replace(t, argv=("env", "set", "shop", "TOKEN=s3cret"))  # as typed

    done = control.change_env(t, "shop", {"TOKEN": "s3cret"}, [], nothing)

    assert (done.changed, done.units) == (["TOKEN"], {})  # a static site: no unit to wait for
    # Then the site alone is converged (its roles restart what the change concerns).
    run = t.calls[-1]
    assert len(t.calls) == 2  # add-site's run, then this one
    assert (run.playbook, run.extravars) == ("site.yml", {"siteops_only": ["shop"]})
    assert run.host_locked_by == "env set shop"
    assert env.read_text(encoding="utf-8").endswith("managed\nTOKEN=s3cret\n")
    listed = control.env_entries(t, "shop", reveal=False)
    assert [(e["key"], e["value"]) for e in listed] == [("SITE_NAME", "********"),
                                                        ("TOKEN", "********")]  # fmt: skip
    with pytest.raises(SiteModelError, match="SITE_NAME: managed by siteops"):
        control.change_env(t, "shop", {"SITE_NAME": "x"}, [], nothing)
    audit = (host_paths / "sandbox" / "audit.jsonl").read_text(encoding="utf-8")
    assert "s3cret" not in audit and '"TOKEN=***"' in audit
    assert [json.loads(line)["result"] for line in audit.splitlines()] == ["ok", "ok", "refused"]
    with pytest.raises(SiteModelError, match="has no process units"):
        control.restart(t, "shop", None, nothing)


def test_with_status_copies_the_registry_only_when_a_status_changes(site: dict[str, Any]) -> None:
    sites = HostSites.model_validate({"siteops_sites": {"shop": {**site, "status": "active"}}})
    assert ops._with_status(sites, ["shop"], SiteStatus.ACTIVE) is sites
    failed = ops._with_status(sites, ["shop"], SiteStatus.FAILED)
    assert failed is not sites
    assert failed.siteops_sites["shop"].status == "failed"
    assert sites.siteops_sites["shop"].status == "active"
