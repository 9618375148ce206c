"""siteops.hosting.site_files: many paths ensured in one call, each change reported.

The module's logic runs here on a temporary folder; the action plugin runs in
a real ansible-playbook against localhost, where a template it renders must
match, byte for byte, what ansible.builtin.template writes.
"""

from __future__ import annotations

import grp
import os
import pwd
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from siteops import resources
from tests.conftest import load_plugin

ROOT = Path(__file__).resolve().parent.parent
MODULE = ROOT / "plugins" / "modules" / "site_files.py"
USER = pwd.getpwuid(os.getuid()).pw_name
GROUP = grp.getgrgid(os.getgid()).gr_name


@pytest.fixture(scope="module")
def site_files() -> ModuleType:
    return load_plugin(MODULE, "siteops_test_site_files")


@pytest.fixture(scope="module")
def utils() -> ModuleType:
    return load_plugin(
        ROOT / "plugins" / "module_utils" / "site_files.py", "siteops_test_files_utils"
    )


def entry(path: Path | str, **fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"path": str(path), "state": "file", "force": True}
    out.update(fields)
    return out


def ensure(site_files: ModuleType, entries: list[dict[str, Any]], check: bool = False) -> Any:
    ensurer = site_files.Ensurer(check=check)
    for one in entries:
        ensurer.ensure(one)
    return ensurer


def tree(tmp_path: Path) -> list[dict[str, Any]]:
    site = tmp_path / "shop"
    return [
        entry(site, state="directory", owner=USER, group=GROUP, mode="0750"),
        entry(site / "shared", state="directory", mode="0700"),
        entry(site / "shared" / "app.log", state="touch", mode="0640"),
        entry(site / "settings.conf", content="PORT=3100\n", mode="0644"),
        entry(site / "current", state="link", src="releases/placeholder", force=False),
    ]


def test_a_tree_is_created_in_order_and_every_path_reported(
    site_files: ModuleType, tmp_path: Path
) -> None:
    done = ensure(site_files, tree(tmp_path))
    site = tmp_path / "shop"
    assert done.changed == [str(e["path"]) for e in tree(tmp_path)]
    assert oct(site.stat().st_mode & 0o777) == "0o750"
    assert oct((site / "shared").stat().st_mode & 0o777) == "0o700"
    assert (site / "shared" / "app.log").read_bytes() == b""
    assert oct((site / "shared" / "app.log").stat().st_mode & 0o777) == "0o640"
    assert (site / "settings.conf").read_text() == "PORT=3100\n"
    assert os.readlink(site / "current") == "releases/placeholder"


def test_a_second_run_changes_nothing(site_files: ModuleType, tmp_path: Path) -> None:
    ensure(site_files, tree(tmp_path))
    assert ensure(site_files, tree(tmp_path)).changed == []


def test_check_mode_reports_the_changes_and_makes_none(
    site_files: ModuleType, tmp_path: Path
) -> None:
    done = ensure(site_files, tree(tmp_path), check=True)
    assert done.changed == [str(e["path"]) for e in tree(tmp_path)]
    assert not (tmp_path / "shop").exists()


def test_only_what_differs_is_changed_and_reported(site_files: ModuleType, tmp_path: Path) -> None:
    ensure(site_files, tree(tmp_path))
    site = tmp_path / "shop"
    (site / "settings.conf").write_text("PORT=9999\n")
    os.chmod(site / "shared", 0o755)
    (site / "shared" / "app.log").write_text("kept\n")
    checked = ensure(site_files, tree(tmp_path), check=True)
    assert checked.changed == [str(site / "shared"), str(site / "settings.conf")]
    assert checked.diffs == [
        {
            "before_header": str(site / "settings.conf"),
            "after_header": str(site / "settings.conf"),
            "before": "PORT=9999\n",
            "after": "PORT=3100\n",
        }
    ]
    assert (site / "settings.conf").read_text() == "PORT=9999\n"
    done = ensure(site_files, tree(tmp_path))
    assert done.changed == [str(site / "shared"), str(site / "settings.conf")]
    assert (site / "settings.conf").read_text() == "PORT=3100\n"
    assert oct((site / "shared").stat().st_mode & 0o777) == "0o700"
    # touch leaves content alone; a link with force=false is not moved.
    assert (site / "shared" / "app.log").read_text() == "kept\n"
    os.remove(site / "current")
    os.symlink("releases/20261127", site / "current")
    assert ensure(site_files, tree(tmp_path)).changed == []
    assert os.readlink(site / "current") == "releases/20261127"


def test_a_forced_link_is_moved(site_files: ModuleType, tmp_path: Path) -> None:
    link = tmp_path / "current"
    os.symlink("old", link)
    done = ensure(site_files, [entry(link, state="link", src="new")])
    assert done.changed == [str(link)] and os.readlink(link) == "new"


def test_absent_removes_files_links_and_whole_directories(
    site_files: ModuleType, tmp_path: Path
) -> None:
    ensure(site_files, tree(tmp_path))
    site = tmp_path / "shop"
    gone = [entry(site / "current", state="absent"), entry(site, state="absent")]
    assert ensure(site_files, gone, check=True).changed == [str(site / "current"), str(site)]
    assert site.exists()
    assert ensure(site_files, gone).changed == [str(site / "current"), str(site)]
    assert not site.exists()
    assert ensure(site_files, gone).changed == []


def test_a_file_that_fails_validation_is_not_written(
    site_files: ModuleType, tmp_path: Path
) -> None:
    target = tmp_path / "app.conf"
    target.write_text("good\n")
    bad = entry(target, content="bad\n", validate="grep -q good %s")
    with pytest.raises(site_files.EntryError, match="validation failed"):
        ensure(site_files, [bad])
    assert target.read_text() == "good\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.conf"]
    assert ensure(site_files, [entry(target, content="good too\n", validate="grep -q good %s")])


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"owner": "no-such-user-siteops", "content": ""}, "user 'no-such-user-siteops'"),
        ({"mode": "rw-r--r--", "content": ""}, "not an octal mode"),
        ({"state": "link"}, "a link needs src"),
        ({}, "a file needs content"),
    ],
)
def test_a_wrong_entry_is_refused_naming_what_is_wrong(
    site_files: ModuleType, tmp_path: Path, bad: dict[str, Any], message: str
) -> None:
    one = entry(tmp_path / "x", **bad)
    with pytest.raises(site_files.EntryError, match=message):
        ensure(site_files, [one])


@pytest.mark.parametrize("field", ["owner", "group"])
def test_an_unknown_owner_or_group_is_refused_but_expected_in_check_mode(
    site_files: ModuleType, tmp_path: Path, field: str
) -> None:
    # In check mode the user may be one this run creates first: a change, not an error.
    one = entry(tmp_path / "x", content="", **{field: "siteops-no-such-name"})
    kind = "user" if field == "owner" else "group"
    with pytest.raises(site_files.EntryError, match=f"{kind} 'siteops-no-such-name' does not"):
        ensure(site_files, [one])
    assert ensure(site_files, [one], check=True).changed == [str(tmp_path / "x")]
    assert not (tmp_path / "x").exists()


def test_a_relative_path_is_refused(site_files: ModuleType) -> None:
    with pytest.raises(site_files.EntryError, match="path must be absolute"):
        ensure(site_files, [entry("relative/x", content="")])


def test_a_directory_where_a_file_is_wanted_is_refused(
    site_files: ModuleType, tmp_path: Path
) -> None:
    (tmp_path / "x").mkdir()
    with pytest.raises(site_files.EntryError, match="not a regular file"):
        ensure(site_files, [entry(tmp_path / "x", content="")])


def test_an_assembled_file_is_its_fragments_in_name_order(
    site_files: ModuleType, tmp_path: Path
) -> None:
    parts = tmp_path / "users.acl.d"
    parts.mkdir()
    (parts / "00-admin.acl").write_text("user admin on\n")
    (parts / "site-b.acl").write_text("user b on")  # no newline: one is added after it
    (parts / "site-c.acl").write_text("user c on\n")
    (parts / "notes.txt").write_text("not a fragment\n")
    acl = tmp_path / "users.acl"
    assembled = entry(acl, state="assemble", src=str(parts), regexp=r"\.acl$", mode="0640")

    assert ensure(site_files, [assembled]).changed == [str(acl)]
    assert acl.read_text() == "user admin on\nuser b on\nuser c on\n"
    assert oct(acl.stat().st_mode & 0o777) == "0o640"
    assert ensure(site_files, [assembled]).changed == []


def test_check_mode_assembles_what_the_entries_before_would_leave(
    site_files: ModuleType, tmp_path: Path
) -> None:
    parts = tmp_path / "users.acl.d"
    parts.mkdir()
    (parts / "site-b.acl").write_text("user b on\n")
    acl = tmp_path / "users.acl"
    assembled = entry(acl, state="assemble", src=str(parts))
    ensure(site_files, [assembled])

    # A new fragment and the old one gone: the file changes, in check mode too.
    change = [
        entry(parts / "site-c.acl", content="user c on\n"),
        entry(parts / "site-b.acl", state="absent"),
        assembled,
    ]
    checked = ensure(site_files, change, check=True)
    assert checked.changed == [str(parts / "site-c.acl"), str(parts / "site-b.acl"), str(acl)]
    assert acl.read_text() == "user b on\n" and (parts / "site-b.acl").exists()
    assert ensure(site_files, change).changed == checked.changed
    assert acl.read_text() == "user c on\n"
    # Nothing to change: check mode says so as well.
    same = [entry(parts / "site-c.acl", content="user c on\n"), assembled]
    assert ensure(site_files, same, check=True).changed == []


def acl_of(path: Path) -> list[str]:
    done = subprocess.run(
        ["getfacl", "--absolute-names", "--omit-header", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return [line.split()[0] for line in done.stdout.splitlines() if line.strip()]


def test_acl_entries_are_added_once_and_others_kept(site_files: ModuleType, tmp_path: Path) -> None:
    # nobody: a user every Debian has; X is execute on a directory.
    site = tmp_path / "site"
    site.mkdir(mode=0o750)
    subprocess.run(["setfacl", "-m", "user:root:r", str(site)], check=True)
    wanted = entry(site, state="directory", acl=["user:nobody:x", "default:user:nobody:rX"])

    assert ensure(site_files, [wanted], check=True).changed == [str(site)]
    assert "user:nobody:--x" not in acl_of(site)
    assert ensure(site_files, [wanted]).changed == [str(site)]
    assert {"user:nobody:--x", "default:user:nobody:r-x", "user:root:r--"} <= set(acl_of(site))
    assert ensure(site_files, [wanted]).changed == []

    subprocess.run(["setfacl", "-m", "default:user:nobody:r", str(site)], check=True)
    assert ensure(site_files, [wanted]).changed == [str(site)]
    assert "default:user:nobody:r-x" in acl_of(site)


def test_an_acl_for_a_path_new_in_check_mode_is_reported_with_it(
    site_files: ModuleType, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    wanted = entry(site, state="directory", mode="0750", acl=["user:nobody:x"])
    assert ensure(site_files, [wanted], check=True).changed == [str(site)]
    assert not site.exists()


@pytest.mark.parametrize("spec", ["nobody:x", "other:nobody:x", "user:nobody:rz", "x:user:a:r"])
def test_a_wrong_acl_entry_is_refused_naming_it(
    site_files: ModuleType, tmp_path: Path, spec: str
) -> None:
    with pytest.raises(site_files.EntryError, match=f"acl '{spec}' is not"):
        ensure(site_files, [entry(tmp_path, state="directory", acl=[spec])])


def test_a_replaced_file_with_backup_keeps_the_old_content_beside_it(
    site_files: ModuleType, tmp_path: Path
) -> None:
    conf = tmp_path / "shop.conf"
    new = tmp_path / "new.conf"
    first = ensure(site_files, [entry(conf, content="old\n", backup=True), entry(new, content="x")])
    assert first.backups == {}
    again = ensure(site_files, [entry(conf, content="old\n", backup=True)])
    assert again.changed == [] and again.backups == {}

    replaced = ensure(site_files, [entry(conf, content="new\n", backup=True)])
    kept = replaced.backups[str(conf)]
    assert Path(kept).read_text() == "old\n" and conf.read_text() == "new\n"
    assert Path(kept).parent == tmp_path and kept.endswith("~")


SITE_MARK = "# {mark} site block"
DB_MARK = "# {mark} db block"


def test_a_template_depending_on_nothing_it_reads_is_one_content(utils: ModuleType) -> None:
    rendered: list[Any] = []

    def render(found: Any) -> str:
        rendered.append(found)
        return "same\n"

    assert utils.variants({"cert": "/c", "placeholder": "/p"}, render) == "same\n"
    assert len(rendered) == 1


def test_only_the_paths_that_change_the_content_are_read_on_the_host(utils: ModuleType) -> None:
    def render(found: Any) -> str:
        return "https\n" if found.cert else "http\n"

    assert utils.variants({"cert": "/c", "placeholder": "/p"}, render) == [
        {"when": {"/c": False}, "content": "http\n"},
        {"when": {"/c": True}, "content": "https\n"},
    ]

    def both(found: Any) -> str:
        return f"{found['cert']} {found.placeholder}"

    chosen = utils.variants({"cert": "/c", "placeholder": "/p"}, both)
    assert chosen == [
        {"when": {"/c": c, "/p": p}, "content": f"{c} {p}"}
        for c in (False, True)
        for p in (False, True)
    ]

    # What is read only on one branch is a case only there (the placeholder of an app, not of
    # a static site); each case is rendered once.
    calls: list[Any] = []

    def branch(found: Any) -> str:
        calls.append(found)
        return "tls" if found.cert else ("app" if found.placeholder else "none")

    assert utils.variants({"cert": "/c", "placeholder": "/p"}, branch) == [
        {"when": {"/c": False, "/p": False}, "content": "none"},
        {"when": {"/c": False, "/p": True}, "content": "app"},
        {"when": {"/c": True}, "content": "tls"},
    ]
    assert len(calls) == 3


def test_the_variant_matching_the_host_is_written_and_follows_it(
    site_files: ModuleType, tmp_path: Path
) -> None:
    cert = tmp_path / "fullchain.pem"
    conf = tmp_path / "site.conf"
    wanted = entry(
        conf,
        mode="0644",
        variants=[
            {"when": {str(cert): False}, "content": "http\n"},
            {"when": {str(cert): True}, "content": "https\n"},
        ],
    )
    assert ensure(site_files, [wanted]).changed == [str(conf)]
    assert conf.read_text() == "http\n"
    assert ensure(site_files, [wanted]).changed == []
    cert.write_text("x")
    assert ensure(site_files, [wanted], check=True).changed == [str(conf)]
    assert conf.read_text() == "http\n"
    assert ensure(site_files, [wanted]).changed == [str(conf)]
    assert conf.read_text() == "https\n"
    # A link to a certificate that is gone counts as no certificate.
    cert.unlink()
    cert.symlink_to(tmp_path / "gone.pem")
    ensure(site_files, [wanted])
    assert conf.read_text() == "http\n"


def test_a_file_none_of_whose_variants_matches_is_refused(
    site_files: ModuleType, tmp_path: Path
) -> None:
    conf = tmp_path / "site.conf"
    only = entry(conf, variants=[{"when": {str(tmp_path): False}, "content": "x"}])
    failure = site_files.ensure_entries(site_files.Ensurer(check=False), [only])
    assert failure == f"{conf}: none of its variants matches what the host has"
    assert not conf.exists()


def test_the_paths_a_call_created_are_named_apart_from_the_changed_ones(
    site_files: ModuleType, tmp_path: Path
) -> None:
    old = tmp_path / "old.conf"
    old.write_text("before\n")
    done = ensure(
        site_files,
        [
            entry(old, content="after\n"),
            entry(tmp_path / "new.conf", content="new\n"),
            entry(tmp_path / "link.conf", state="link", src="new.conf"),
        ],
    )
    assert done.changed == [str(old), str(tmp_path / "new.conf"), str(tmp_path / "link.conf")]
    assert done.created == [str(tmp_path / "new.conf"), str(tmp_path / "link.conf")]


def test_blocks_go_where_blockinfile_puts_them_and_change_only_themselves(
    site_files: ModuleType, tmp_path: Path
) -> None:
    env = tmp_path / ".env"
    env.write_text("MINE=1\n")
    blocks = [
        entry(
            env, state="block", marker=SITE_MARK, block="A=1\nB=2", mode="0600", insert_before="BOF"
        ),
        entry(env, state="block", marker="# {mark} end", block="Z=9"),
        entry(env, state="block", marker=DB_MARK, block="DB=x", insert_after="^# END site block"),
    ]
    done = ensure(site_files, blocks)
    assert done.changed == [str(env)]
    assert env.read_text() == (
        "# BEGIN site block\nA=1\nB=2\n# END site block\n"
        "# BEGIN db block\nDB=x\n# END db block\nMINE=1\n# BEGIN end\nZ=9\n# END end\n"
    )
    assert oct(env.stat().st_mode & 0o777) == "0o600"
    assert ensure(site_files, blocks).changed == []
    blocks[2]["block"] = "DB=y"
    checked = ensure(site_files, blocks, check=True)
    # Only the block is shown, never the rest of the file.
    assert checked.diffs == [
        {
            "before_header": str(env),
            "after_header": str(env),
            "before": "# BEGIN db block\nDB=x\n# END db block\n",
            "after": "# BEGIN db block\nDB=y\n# END db block\n",
        }
    ]
    ensure(site_files, blocks)
    assert "DB=y\n# END db block\nMINE=1\n# BEGIN end" in env.read_text()


def test_an_absent_block_goes_with_its_markers_and_the_rest_stays(
    site_files: ModuleType, tmp_path: Path
) -> None:
    env = tmp_path / ".env"
    env.write_text("A=1\n# BEGIN db block\nDB=x\n# END db block\nMINE=1\n")
    env.chmod(0o640)
    gone = [entry(env, state="block_absent", marker=DB_MARK)]
    checked = ensure(site_files, gone, check=True)
    assert checked.changed == [str(env)] and "DB=x" in env.read_text()
    assert checked.diffs[0]["before"] == "# BEGIN db block\nDB=x\n# END db block\n"
    assert ensure(site_files, gone).changed == [str(env)]
    assert env.read_text() == "A=1\nMINE=1\n"
    assert oct(env.stat().st_mode & 0o777) == "0o640"
    assert ensure(site_files, gone).changed == []
    missing = tmp_path / "none"
    assert ensure(site_files, [entry(missing, state="block_absent", marker=DB_MARK)]).changed == []
    assert not missing.exists()


def test_a_block_without_its_marker_is_refused(site_files: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(site_files.EntryError, match="marker"):
        ensure(site_files, [entry(tmp_path / "x", state="block", marker="# no mark", block="")])


PLAYBOOK = """
- hosts: localhost
  connection: local
  gather_facts: false
  vars:
    play_port: 3100
  tasks:
    - name: Render with the builtin template
      ansible.builtin.template:
        src: "{template}"
        dest: "{out}/builtin.txt"
        mode: "0644"
      vars:
        item: {{key: shop, value: {{port: 4100}}}}
    - name: Ensure the same through site_files
      siteops.hosting.site_files:
        files:
          - {{path: "{out}/tree", state: directory, mode: "0750"}}
          - path: "{out}/tree/ours.txt"
            template: "{template}"
            vars:
              item: {{key: shop, value: {{port: 4100}}}}
            mode: "0644"
      register: result
    - name: Write two blocks with the builtin blockinfile
      ansible.builtin.blockinfile:
        path: "{out}/env"
        create: true
        mode: "0600"
        insertbefore: BOF
        marker: "# {{mark}} site block"
        block: "A=1\\nB=2"
    - name: Write the second block with the builtin blockinfile
      ansible.builtin.blockinfile:
        path: "{out}/env"
        marker: "# {{mark}} db block"
        insertafter: "^# END site block"
        block: "DB=x"
    - name: Ensure the same blocks through site_files
      siteops.hosting.site_files:
        files:
          - {{path: "{out}/env", state: block, marker: "# {{mark}} site block", block: "A=1\\nB=2",
             insert_before: BOF}}
          - {{path: "{out}/env", state: block, marker: "# {{mark}} db block", block: "DB=x",
             insert_after: "^# END site block"}}
      register: blocks
    - name: Show the result
      ansible.builtin.debug:
        msg: >-
          RESULT {{{{ result.changed_paths | join(' ') }}}} END
          BLOCKS {{{{ blocks.changed_paths | join(' ') }}}} DONE
"""

TEMPLATE = """# {{ ansible_managed }}
{% for n in range(2) %}
line {{ n }} of {{ item.key }} on {{ item.value.port }} (play {{ play_port }})
{% endfor %}
end
"""


def play(tmp_path: Path, *extra: str) -> tuple[int, str]:
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    template = tmp_path / "t.j2"
    template.write_text(TEMPLATE)
    book = tmp_path / "play.yml"
    book.write_text(PLAYBOOK.format(template=template, out=out))
    env = {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": str(resources.collections_path(ROOT)),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_STDOUT_CALLBACK": "default",
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
    }
    bin_dir = Path(sys.executable).parent
    run = subprocess.run(
        [str(bin_dir / "ansible-playbook"), str(book), *extra],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    return run.returncode, run.stdout + run.stderr


def changed_paths(output: str) -> list[str]:
    line = next(line for line in output.splitlines() if "RESULT " in line)
    return line.split("RESULT ", 1)[1].split(" END", 1)[0].split()


VARIANT_PLAYBOOK = """
- name: Write a file that depends on whether a path exists on the host
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Ensure the file is the variant of what the host has
      siteops.hosting.site_files:
        files:
          - path: "{out}/site.conf"
            template: "{template}"
            exists: {{flag: "{out}/flag"}}
            mode: "0644"
      register: result
    - name: Show the result
      ansible.builtin.debug:
        msg: "RESULT {{{{ result.changed_paths | join(' ') }}}} END"
"""


def test_the_action_hands_the_module_a_variant_per_case_of_the_host(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "t.j2").write_text("{{ 'on' if exists.flag else 'off' }}\n")
    book = tmp_path / "variants.yml"
    book.write_text(VARIANT_PLAYBOOK.format(template=tmp_path / "t.j2", out=out))
    env = {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": str(resources.collections_path(ROOT)),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
    }
    command = [str(Path(sys.executable).parent / "ansible-playbook"), str(book)]

    def converge() -> list[str]:
        run = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        assert run.returncode == 0, run.stdout + run.stderr
        return changed_paths(run.stdout)

    assert converge() == [str(out / "site.conf")]
    assert (out / "site.conf").read_text() == "off\n"
    assert converge() == []
    (out / "flag").write_text("")
    assert converge() == [str(out / "site.conf")]
    assert (out / "site.conf").read_text() == "on\n"


def test_the_action_renders_templates_as_the_builtin_template_does(tmp_path: Path) -> None:
    rc, output = play(tmp_path)
    assert rc == 0, output
    out = tmp_path / "out"
    ours = (out / "tree" / "ours.txt").read_bytes()
    assert ours == (out / "builtin.txt").read_bytes()
    assert b"line 1 of shop on 4100 (play 3100)\nend\n" in ours
    assert changed_paths(output) == [str(out / "tree"), str(out / "tree" / "ours.txt")]
    rc, again = play(tmp_path)
    assert rc == 0, again
    assert changed_paths(again) == []
    # Blocks written by ansible.builtin.blockinfile are what site_files writes.
    assert "BLOCKS  DONE" in again and "BLOCKS  DONE" in output
    assert (out / "env").read_text() == (
        "# BEGIN site block\nA=1\nB=2\n# END site block\n# BEGIN db block\nDB=x\n# END db block\n"
    )
