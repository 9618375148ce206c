"""The host layout is written once, in roles/site_layout, and siteops reads it from there."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import yaml

from siteops import display, markdown, naming, remote
from siteops.layout import (
    LAYOUT_FILE,
    PREFIX,
    Layout,
    LayoutError,
    layout,
    layout_path,
    parse_layout,
)
from siteops.model import Site
from siteops.resources import find_collection
from tests.conftest import REPO, VALID_SITE

FILE: dict[str, Any] = yaml.safe_load((REPO / LAYOUT_FILE).read_text(encoding="utf-8"))
LAYOUT_ROLE = REPO / "roles" / "site_layout"


def test_the_layout_is_read_from_the_collection_siteops_runs() -> None:
    assert layout_path() == find_collection() / LAYOUT_FILE
    assert layout_path().resolve() == (REPO / LAYOUT_FILE).resolve()


def test_every_value_of_the_file_is_read_and_nothing_else() -> None:
    assert set(FILE) == {PREFIX + field.name for field in fields(Layout)}
    for field in fields(Layout):
        assert getattr(layout(), field.name) == FILE[PREFIX + field.name], field.name


def test_the_name_rules_are_the_files() -> None:
    assert FILE["site_layout_site_name_pattern"] == naming.SITE_NAME_PATTERN
    assert FILE["site_layout_site_name_min_length"] == naming.SITE_NAME_MIN
    assert FILE["site_layout_site_name_max_length"] == naming.SITE_NAME_MAX
    assert FILE["site_layout_component_pattern"] == naming.COMPONENT_NAME_PATTERN
    longest = "a" * FILE["site_layout_site_name_max_length"]
    assert naming.check_site_name(longest) == longest
    with pytest.raises(ValueError, match="characters long"):
        naming.check_site_name(longest + "a")


def test_the_name_patterns_are_anchored() -> None:
    # The roles cut the anchors off (pattern[1:-1]) to find a site's units by name.
    for key in ("site_layout_site_name_pattern", "site_layout_component_pattern"):
        pattern = FILE[key]
        assert pattern.startswith("^") and pattern.endswith("$"), key
        assert "^" not in pattern[1:-1] and "$" not in pattern[1:-1], key


def test_units_slices_and_paths_follow_the_file() -> None:
    root = FILE["site_layout_sites_root"]
    assert markdown.unit_name("shop", "api") == FILE["site_layout_unit_format"] % ("shop", "api")
    escape = FILE["site_layout_slice_dash_escape"]
    assert markdown.slice_name("web-app-v2") == FILE["site_layout_slice_format"] % (
        f"web{escape}app{escape}v2"
    )
    logs = f"{root}/shop/{FILE['site_layout_logs_subdir']}"
    assert f"set -- {logs}/*.log;" in remote.log_command("shop", None, 10, follow=False)[2]
    view = display.site_view("shop", Site.model_validate(VALID_SITE))
    assert view["paths"]["root"] == f"{root}/shop"
    assert view["paths"]["logs"] == logs
    assert view["slice"] == markdown.slice_name("shop")


def test_the_documented_examples_hold() -> None:
    # The names the layout file's comments give as examples.
    assert layout().unit_name("shop", "frontend") == "shop-frontend.service"
    assert layout().slice_name("web-app-v2") == "web\\x2dapp\\x2dv2.slice"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"site_layout_sites_root": None}, "site_layout_sites_root must be a str"),
        ({"site_layout_site_name_max_length": True}, "must be a int"),
        ({"site_layout_sites_root": "{{ x }}"}, "must be a plain value"),
    ],
)
def test_a_broken_layout_file_is_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(LayoutError, match=re.escape(message)):
        parse_layout({**FILE, **change}, "layout.yml")


# --- Each literal of the layout is written in roles/site_layout only ----------------------

# The values written once: paths, and the name rules (a copy of either is a second source).
WRITTEN_ONCE = [
    "site_layout_sites_root",
    "site_layout_backup_root",
    "site_layout_release_log_dir",
    "site_layout_acme_webroot",
    "site_layout_site_name_pattern",
    "site_layout_component_pattern",
]
ROLE_CODE = ("defaults", "vars", "tasks", "handlers", "templates")


def _yaml_strings(data: Any) -> Iterator[str]:
    """Every string of a YAML document, keys and values (its comments are not data)."""
    if isinstance(data, str):
        yield data
    elif isinstance(data, dict):
        for key, value in data.items():
            yield from _yaml_strings(key)
            yield from _yaml_strings(value)
    elif isinstance(data, list):
        for value in data:
            yield from _yaml_strings(value)


def _spec_defaults(data: Any) -> Iterator[str]:
    """The ``default:`` values of an argument spec (its descriptions are documentation)."""
    if isinstance(data, dict):
        for key, value in data.items():
            if key == "default":
                yield from _yaml_strings(value)
            else:
                yield from _spec_defaults(value)
    elif isinstance(data, list):
        for value in data:
            yield from _spec_defaults(value)


def _python_strings(text: str) -> Iterator[str]:
    """Every string constant of a Python module but its docstrings (comments are not in the AST)."""
    tree = ast.parse(text)
    docstrings: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    for node in ast.walk(tree):
        is_string = isinstance(node, ast.Constant) and isinstance(node.value, str)
        if is_string and id(node) not in docstrings:
            yield str(node.value)  # type: ignore[attr-defined]


def _template_text(text: str) -> str:
    """A template without its Jinja comments and the comment lines of the file it renders."""
    text = re.sub(r"\{#.*?#\}", "", text, flags=re.DOTALL)
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def code_strings(path: Path) -> list[str]:
    """What a file of the collection or of siteops says as code, without comments and docs."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".py":
        return list(_python_strings(text))
    if "templates" in path.parts:
        return [_template_text(text)]
    if path.name in ("argument_specs.yml", "argument_specs.yaml"):
        return list(_spec_defaults(yaml.safe_load(text)))
    return list(_yaml_strings(yaml.safe_load(text)))


def scanned_files(root: Path) -> list[Path]:
    """The roles' code, their argument specs, the playbooks (and their scripts), siteops' code."""
    files: set[Path] = set()
    for role in sorted((root / "roles").iterdir()):
        if not role.is_dir() or role.name == LAYOUT_ROLE.name:
            continue
        for part in ROLE_CODE:
            files.update(p for p in (role / part).rglob("*") if p.is_file())
        files.update((role / "meta").glob("argument_specs.y*ml"))
    files.update((root / "playbooks").rglob("*.yml"))
    files.update((root / "playbooks").rglob("*.py"))
    files.update((root / "plugins").rglob("*.py"))
    files.update((root / "orchestrator" / "siteops").rglob("*.py"))
    files.update((root / "orchestrator" / "siteops" / "templates").rglob("*.j2"))
    return sorted(p for p in files if "__pycache__" not in p.parts)


def copies(root: Path, literal: str) -> list[str]:
    return [
        str(path.relative_to(root))
        for path in scanned_files(root)
        if any(literal in text for text in code_strings(path))
    ]


def test_the_scan_covers_the_places_that_held_copies() -> None:
    scanned = {str(p.relative_to(REPO)) for p in scanned_files(REPO)}
    for expected in [
        "roles/site_user/defaults/main.yml",
        "roles/site_user/meta/argument_specs.yml",
        "roles/site_model/tasks/main.yml",
        "roles/systemd_service/vars/main.yml",
        "roles/site_release/templates/usr/local/sbin/siteops-release.j2",
        "playbooks/remove-site.yml",
        "playbooks/facts.yml",
        "playbooks/files/siteops_facts.py",
        "orchestrator/siteops/markdown.py",
        "orchestrator/siteops/naming.py",
        "orchestrator/siteops/remote.py",
    ]:
        assert expected in scanned, expected
    assert not any(name.startswith("roles/site_layout/") for name in scanned)


@pytest.mark.parametrize("key", WRITTEN_ONCE)
def test_the_layout_file_itself_is_found_by_the_scan(key: str) -> None:
    assert FILE[key] in code_strings(REPO / LAYOUT_FILE)


@pytest.mark.parametrize("key", WRITTEN_ONCE)
def test_no_layout_value_is_written_outside_the_layout_role(key: str) -> None:
    assert copies(REPO, FILE[key]) == [], f"{FILE[key]} is written outside roles/site_layout"


def test_the_scan_finds_copies_in_code_but_not_in_comments_or_docs(tmp_path: Path) -> None:
    literal = FILE["site_layout_sites_root"]
    role = tmp_path / "roles" / "r"
    files = {
        role / "defaults" / "main.yml": f"---\n# under {literal}\nr_root: {literal}\n",
        role
        / "tasks"
        / "main.yml": f"---\n- name: x\n  ansible.builtin.file:\n    path: '{literal}/x'\n",
        role / "templates" / "a.conf.j2": f"{{# {literal} #}}\n# {literal}\nroot {literal}/x;\n",
        role / "meta" / "argument_specs.yml": (
            f"---\nargument_specs:\n  main:\n    short_description: {literal}\n"
            f"    options:\n      r_root:\n        description: {literal}\n"
            f"        default: {literal}\n"
        ),
        tmp_path / "playbooks" / "p.yml": f"---\n- hosts: all\n  vars:\n    r: {literal}\n",
        tmp_path
        / "playbooks"
        / "files"
        / "s.py": f'"""{literal}"""\n# {literal}\nR = "{literal}"\n',
        tmp_path / "orchestrator" / "siteops" / "m.py": (
            f'"""{literal}"""\n\n\ndef f(s: str) -> str:\n    """{literal}"""\n'
            f'    return f"{literal}/{{s}}"  # {literal}\n'
        ),
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert sorted(copies(tmp_path, literal)) == sorted(
        str(path.relative_to(tmp_path)) for path in files
    )
    quiet = {
        role / "defaults" / "main.yml": f"---\n# under {literal}\nr_root: x\n",
        role / "templates" / "a.conf.j2": f"{{# {literal} #}}\n  # {literal}\nroot x;\n",
        role / "meta" / "argument_specs.yml": (
            f"---\nargument_specs:\n  main:\n    short_description: {literal}\n"
            f"    options:\n      r_root:\n        description: {literal}\n"
        ),
        tmp_path / "orchestrator" / "siteops" / "m.py": (
            f'"""{literal}"""\n\n\nclass C:\n    """{literal}"""\n\n    x = 1  # {literal}\n'
        ),
    }
    for path, text in quiet.items():
        path.write_text(text, encoding="utf-8")
    assert copies(tmp_path, literal) == [
        "playbooks/files/s.py",
        "playbooks/p.yml",
        "roles/r/tasks/main.yml",
    ]
