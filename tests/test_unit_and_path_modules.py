"""siteops.hosting.site_units: one systemctl query, then only the actions that differ.

The module's reading of ``systemctl show`` and its plan are checked here on
systemctl's own output; Molecule runs it against real systemd.
"""

from __future__ import annotations

import ast
import hashlib
import os
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.conftest import load_plugin

MODULE = Path(__file__).resolve().parent.parent / "plugins" / "modules" / "site_units.py"

# `systemctl show --property=Id,LoadState,ActiveState,UnitFileState a b c d` on Debian 13.
SHOWN = """Id=shop-frontend.service
LoadState=loaded
ActiveState=active
UnitFileState=enabled

Id=shop-api.service
LoadState=loaded
ActiveState=failed
UnitFileState=disabled

Id=siteops-backup@shop.timer
LoadState=loaded
ActiveState=inactive
UnitFileState=disabled

Id=gone.service
LoadState=not-found
ActiveState=inactive
UnitFileState=
"""


@pytest.fixture(scope="module")
def site_units() -> ModuleType:
    return load_plugin(MODULE, "siteops_test_site_units")


def test_systemctl_show_is_read_unit_by_unit(site_units: ModuleType) -> None:
    shown = site_units.parse_show(SHOWN)
    assert [u["Id"] for u in shown] == [
        "shop-frontend.service",
        "shop-api.service",
        "siteops-backup@shop.timer",
        "gone.service",
    ]
    assert shown[1] == {
        "Id": "shop-api.service",
        "LoadState": "loaded",
        "ActiveState": "failed",
        "UnitFileState": "disabled",
    }


def test_only_units_that_differ_get_actions(site_units: ModuleType) -> None:
    wanted = [
        {"name": "shop-frontend.service", "enabled": True, "state": "started"},
        {"name": "shop-api.service", "enabled": True, "state": "started"},
        {"name": "siteops-backup@shop.timer", "enabled": False, "state": "stopped"},
        {"name": "gone.service", "enabled": True, "state": "started"},
    ]
    assert site_units.plan(wanted, site_units.parse_show(SHOWN)) == {
        "shop-api.service": ["enable", "start"],
        "gone.service": ["missing"],
    }


def test_restart_is_always_done_and_stop_only_when_running(site_units: ModuleType) -> None:
    wanted = [
        {"name": "shop-frontend.service", "enabled": None, "state": "restarted"},
        {"name": "shop-api.service", "enabled": None, "state": "stopped"},
        {"name": "siteops-backup@shop.timer", "enabled": True, "state": None},
        {"name": "gone.service", "enabled": False, "state": "stopped"},
    ]
    assert site_units.plan(wanted, site_units.parse_show(SHOWN)) == {
        "shop-frontend.service": ["restart"],
        "siteops-backup@shop.timer": ["enable"],
    }
    stopping = [{"name": "shop-frontend.service", "enabled": False, "state": "stopped"}]
    assert site_units.plan(stopping, site_units.parse_show(SHOWN)[:1]) == {
        "shop-frontend.service": ["disable", "stop"]
    }


def test_reload_is_always_done_or_a_start_when_not_running(site_units: ModuleType) -> None:
    # shop-frontend runs, shop-api failed: a reload of a stopped unit would fail.
    wanted = [
        {"name": "shop-frontend.service", "state": "reloaded"},
        {"name": "shop-api.service", "state": "reloaded"},
    ]
    assert site_units.plan(wanted, site_units.parse_show(SHOWN)[:2]) == {
        "shop-frontend.service": ["reload"],
        "shop-api.service": ["start"],
    }


def test_a_started_unit_whose_file_changed_is_restarted_when_asked(
    site_units: ModuleType,
) -> None:
    units = [
        {"name": "shop-api.service", "state": "started", "restart_on_change": True},
        {"name": "shop-web.service", "state": "started", "restart_on_change": True},
        {"name": "shop.slice", "state": "started", "restart_on_change": False},
        {"name": "blog-api.service", "enabled": True, "restart_on_change": True},
    ]
    changed = [
        "/etc/systemd/system/shop-api.service",
        "/etc/systemd/system/shop.slice",
        "/etc/systemd/system/blog-api.service",
        "/srv/sites/shop/shared/logs/web.log",
    ]
    assert [u.get("state") for u in site_units.restarts(units, changed)] == [
        "restarted",  # its file changed
        "started",  # another unit's file did
        "started",  # a slice is never restarted: that would stop the site
        None,  # no state wanted (a placeholder site's unit): none given
    ]


def test_a_running_unit_that_started_before_its_env_changed_is_restarted(
    site_units: ModuleType, tmp_path: Path
) -> None:
    env = tmp_path / ".env"
    env.write_text("PORT=3100\n")
    os.utime(env, (1_800_000_000.5, 1_800_000_000.5))
    unit = {"name": "shop-api.service", "state": "started", "restart_when_newer": [str(env)]}

    def shown(when: str) -> list[dict[str, str]]:
        return [
            {"Id": "shop-api.service", "LoadState": "loaded", "ActiveState": "active",
             "UnitFileState": "enabled", "ActiveEnterTimestamp": when}
        ]  # fmt: skip

    # 2027-01-15 08:00:00 UTC is 1800000000; the .env changed half a second later.
    assert site_units.plan([unit], shown("Fri 2027-01-15 08:00:00.400000 UTC")) == {
        "shop-api.service": ["restart"]
    }
    assert site_units.plan([unit], shown("Fri 2027-01-15 08:00:00.600000 UTC")) == {}
    # Never started, or a .env that is gone: nothing to compare, nothing done.
    assert site_units.plan([unit], shown("")) == {}
    env.unlink()
    assert site_units.plan([unit], shown("Fri 2027-01-15 08:00:00.400000 UTC")) == {}


def test_a_unit_waiting_for_its_path_to_go_keeps_only_its_enablement(
    site_units: ModuleType, tmp_path: Path
) -> None:
    marker = tmp_path / "current" / ".placeholder"
    unit = {"name": "shop-api.service", "enabled": True, "state": "started",
            "restart_on_change": True, "unless_exists": str(marker)}  # fmt: skip
    assert site_units.waiting([unit]) == [unit]
    marker.parent.mkdir()
    marker.write_text("")
    assert site_units.waiting([unit]) == [{"name": "shop-api.service", "enabled": True}]


class _FailedError(Exception):
    pass


class _Module:
    """What Systemd needs of AnsibleModule; ``nginx -t`` answers ``check_rc``."""

    check_mode = False

    def __init__(self, check_rc: int) -> None:
        self.check_rc = check_rc
        self.calls: list[list[str]] = []

    def get_bin_path(self, name: str, required: bool = False) -> str:
        return f"/usr/bin/{name}"

    def run_command(self, argv: list[str]) -> tuple[int, str, str]:
        self.calls.append(argv)
        if argv[0] == "nginx":
            return self.check_rc, "", 'unknown directive "oops" in /etc/nginx/conf.d/x.conf:1'
        if argv[1] == "show":
            return 0, "Id=nginx.service\nLoadState=loaded\nActiveState=active\n", ""
        return 0, "", ""

    def fail_json(self, **result: Any) -> None:
        raise _FailedError(result)


def test_a_unit_is_reloaded_only_after_its_check_passes(site_units: ModuleType) -> None:
    unit = {"name": "nginx.service", "state": "reloaded", "check": ["nginx", "-t"]}
    fine = _Module(check_rc=0)
    assert site_units.Systemd(fine).ensure([unit]) == {"nginx.service": ["reload"]}
    assert [call[:2] for call in fine.calls[1:]] == [
        ["nginx", "-t"],
        ["/usr/bin/systemctl", "reload"],
    ]

    broken = _Module(check_rc=1)
    with pytest.raises(_FailedError) as failed:
        site_units.Systemd(broken).ensure([unit])
    assert failed.value.args[0]["msg"] == (
        'nginx.service was not reloaded: nginx -t failed: unknown directive "oops" in '
        "/etc/nginx/conf.d/x.conf:1"
    )
    assert not any(call[1:2] == ["reload"] for call in broken.calls)


def test_a_short_answer_is_not_matched_to_the_wrong_units(site_units: ModuleType) -> None:
    with pytest.raises(ValueError):
        site_units.plan([{"name": "a.service"}, {"name": "b.service"}], [{"Id": "a.service"}])


MARK = "# siteops component unit of site"


def test_stale_units_are_the_marked_files_named_like_the_sites_units_not_wanted(
    site_units: ModuleType, tmp_path: Path
) -> None:
    files = {
        "shop-api.service": f"{MARK} shop\n[Unit]\n",  # a component still wanted
        "shop-worker.service": f"{MARK} shop\n[Unit]\n",  # a removed component: stale
        "shop-backup.timer": f"{MARK} shop\n",  # a removed job's timer: stale
        "shop-cron.service": "[Unit]\nDescription=written by hand\n",  # not ours: kept
        "shop-other.service": f"{MARK} shopx\n",  # another site's mark: kept
        "blog-api.service": f"{MARK} blog\n",  # another site's name: not looked at
        "shop-api.service.d": None,  # a drop-in folder: not a unit file
    }
    for name, text in files.items():
        if text is None:
            (tmp_path / name).mkdir()
        else:
            (tmp_path / name).write_text(text)
    patterns = [r"^shop-[a-z]+\.service$", r"^shop-[a-z]+\.timer$"]
    found = site_units.first_lines(str(tmp_path), patterns)

    assert sorted(name for name, _ in found) == [
        "shop-api.service", "shop-backup.timer", "shop-cron.service",
        "shop-other.service", "shop-worker.service",
    ]  # fmt: skip
    marker = f"{MARK} (?:shop)"
    assert site_units.stale_units(found, patterns, marker, {"shop-api.service"}) == [
        "shop-backup.timer",
        "shop-worker.service",
    ]
    # A site being removed keeps nothing: every unit of its own goes.
    assert site_units.stale_units(found, patterns, marker, set()) == [
        "shop-api.service",
        "shop-backup.timer",
        "shop-worker.service",
    ]


def test_no_unit_folder_means_no_stale_units(site_units: ModuleType, tmp_path: Path) -> None:
    assert site_units.first_lines(str(tmp_path / "missing"), [".*"]) == []


# site_accounts: many sites' accounts with one read.

ACCOUNTS = Path(__file__).resolve().parent.parent / "plugins" / "modules" / "site_accounts.py"

USERS = """shop:x:998:998:siteops site shop:/srv/sites/shop:/usr/sbin/nologin
blog:x:997:997:siteops site blog:/srv/sites/blog:/bin/bash
docs:x:996:996:siteops site docs:/srv/sites/docs:/usr/sbin/nologin
wiki:x:995:995:siteops site wiki:/srv/sites/wiki:/usr/sbin/nologin
odd:x:994:27:siteops site odd:/srv/sites/odd:/usr/sbin/nologin
"""
SHADOW = """shop:!:19000::::::
blog:!:19000::::::
docs:!:19000::::::
wiki:$y$j9T$hash:19000::::::
odd:!:19000::::::
"""
GROUP = """root:x:0:
sudo:x:27:docs
shop:x:998:
blog:x:997:
docs:x:996:docs
wiki:x:995:
odd:x:994:
"""


@pytest.fixture(scope="module")
def site_accounts() -> ModuleType:
    return load_plugin(ACCOUNTS, "siteops_test_site_accounts")


def _account(name: str) -> dict[str, str]:
    return {
        "name": name,
        "home": f"/srv/sites/{name}",
        "shell": "/usr/sbin/nologin",
        "comment": f"siteops site {name}",
    }


def test_only_missing_and_differing_accounts_are_fixed(site_accounts: ModuleType) -> None:
    f = site_accounts.fields
    accounts = [_account(n) for n in ("shop", "blog", "docs", "wiki", "odd", "new")]
    out = site_accounts.accounts_to_fix(f(USERS), f(SHADOW), f(GROUP), accounts)
    # blog: a login shell; docs: in sudo; wiki: a password; odd: another primary
    # group; new: nothing yet (its group too). shop is as wanted.
    assert out == {"groups": ["new"], "users": ["blog", "docs", "wiki", "odd", "new"]}
    moved = {**_account("shop"), "home": "/srv/other/shop"}
    assert site_accounts.accounts_to_fix(f(USERS), f(SHADOW), f(GROUP), [moved]) == {
        "groups": [],
        "users": ["shop"],
    }


def test_a_new_site_gets_its_group_then_a_locked_system_user_without_a_home_made(
    site_accounts: ModuleType,
) -> None:
    out = site_accounts.accounts_to_fix([], [], site_accounts.fields(GROUP), [_account("new")])
    assert out == {"groups": ["new"], "users": ["new"]}
    assert site_accounts.user_command(_account("new"), exists=False) == [
        "useradd", "--system", "--no-create-home", "--gid", "new",
        "--home-dir", "/srv/sites/new", "--shell", "/usr/sbin/nologin",
        "--comment", "siteops site new", "--password", "!", "--", "new",
    ]  # fmt: skip
    # An existing user is corrected in place, and leaves every other group.
    assert site_accounts.user_command(_account("docs"), exists=True) == [
        "usermod", "--gid", "docs", "--home", "/srv/sites/docs",
        "--shell", "/usr/sbin/nologin", "--comment", "siteops site docs",
        "--password", "!", "--groups", "", "--", "docs",
    ]  # fmt: skip


# site_paths: the read of many sites' paths in one call.

PATHS = Path(__file__).resolve().parent.parent / "plugins" / "modules" / "site_paths.py"


@pytest.fixture(scope="module")
def site_paths() -> ModuleType:
    return load_plugin(PATHS, "siteops_test_site_paths")


def test_site_paths_says_what_exists_with_checksums_asked_for(
    site_paths: ModuleType, tmp_path: Path
) -> None:
    (tmp_path / "shop" / "releases" / "placeholder").mkdir(parents=True)
    (tmp_path / "shop" / "releases" / "placeholder" / ".siteops-placeholder").write_text("x")
    (tmp_path / "shop" / "current").symlink_to("releases/placeholder")
    (tmp_path / "shop" / ".env").write_text("A=1\n")
    files = {
        "env": f"{tmp_path}/{{site}}/.env",
        "placeholder": f"{tmp_path}/{{site}}/current/.siteops-placeholder",
    }
    found = site_paths.read(["shop", "blog"], files, ["env"], ["env"])
    assert found == {
        "shop": {
            "env": {
                "exists": True,
                "checksum": hashlib.sha1(b"A=1\n").hexdigest(),  # noqa: S324
                "content": "A=1\n",
            },
            "placeholder": {"exists": True},
        },
        "blog": {
            "env": {"exists": False, "checksum": None, "content": None},
            "placeholder": {"exists": False},
        },
    }


RELEASE = Path(__file__).resolve().parent.parent / "plugins" / "modules" / "debian_release.py"

# /etc/os-release of Debian 13 and of Debian testing (no VERSION_ID there).
TRIXIE = """PRETTY_NAME="Debian GNU/Linux 13 (trixie)"
NAME="Debian GNU/Linux"
VERSION_ID="13"
VERSION="13 (trixie)"
VERSION_CODENAME=trixie
ID=debian
"""
TESTING = 'PRETTY_NAME="Debian GNU/Linux forky/sid"\nNAME="Debian GNU/Linux"\nID=debian\n'


@pytest.fixture(scope="module")
def debian_release() -> ModuleType:
    return load_plugin(RELEASE, "debian_release")


def test_the_release_facts_are_what_setup_names_them_on_debian(
    debian_release: ModuleType,
) -> None:
    assert debian_release.release_facts(TRIXIE, "13.1\n") == {
        "ansible_distribution": "Debian",
        "ansible_distribution_version": "13.1",
        "ansible_distribution_major_version": "13",
        "ansible_distribution_release": "trixie",
    }
    # Without /etc/debian_version the os-release version stands.
    assert debian_release.release_facts(TRIXIE, None)["ansible_distribution_version"] == "13"
    # Testing has no numbered release: no major version, so no role's per-release table matches.
    facts = debian_release.release_facts(TESTING, "forky/sid\n")
    assert facts["ansible_distribution"] == "Debian"
    assert facts["ansible_distribution_major_version"] == ""
    ubuntu = debian_release.release_facts('ID=ubuntu\nVERSION_ID="24.04"\n', None)
    assert ubuntu["ansible_distribution"] == "Ubuntu"
    assert ubuntu["ansible_distribution_major_version"] == "24"


@pytest.mark.parametrize(
    "module", sorted((Path(__file__).resolve().parent.parent / "plugins" / "modules").glob("*.py"))
)
def test_every_modules_documentation_is_yaml_naming_its_options(module: Path) -> None:
    """What ansible-doc and ansible-lint read: a YAML error there hides the module's docs."""
    docs = {
        node.targets[0].id: yaml.safe_load(node.value.value)
        for node in ast.parse(module.read_text(encoding="utf-8")).body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and node.targets[0].id in ("DOCUMENTATION", "EXAMPLES", "RETURN")
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    }
    assert set(docs) == {"DOCUMENTATION", "EXAMPLES", "RETURN"}
    assert docs["DOCUMENTATION"]["module"] == module.stem
    assert isinstance(docs["DOCUMENTATION"].get("options", {}) or {}, dict)
