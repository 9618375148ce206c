"""One check of the roles' variables in playbooks/site.yml (plugins/lookup/role_options.py).

site.yml imports its roles with ``rolespec_validate: false`` and checks all of
their variables in one task against the merged options of their specs: the
roles it names there must be exactly those it imports so, and a wrong variable
still stops the run before any change, named.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from ansible.errors import AnsibleLookupError  # type: ignore[import-untyped]

from tests.conftest import REPO, load_plugin, local_ansible_env

SITE_PLAY = REPO / "playbooks" / "site.yml"


@pytest.fixture(scope="module")
def plugin() -> ModuleType:
    return load_plugin(REPO / "plugins" / "lookup" / "role_options.py", "role_options")


def spec(role: str) -> dict[str, Any]:
    path = REPO / "roles" / role / "meta" / "argument_specs.yml"
    return dict(yaml.safe_load(path.read_text(encoding="utf-8"))["argument_specs"])


def site_play_tasks() -> list[dict[str, Any]]:
    return list(yaml.safe_load(SITE_PLAY.read_text(encoding="utf-8"))[0]["tasks"])


def checked_terms() -> list[str]:
    task = next(t for t in site_play_tasks() if "ansible.builtin.validate_argument_spec" in t)
    text = task["ansible.builtin.validate_argument_spec"]["argument_spec"]
    return re.findall(r"'([a-z_]+(?::[a-z_]+)?)'", text.split("entry_point")[0])


def test_site_yml_checks_exactly_the_roles_it_imports_without_their_own_check() -> None:
    unchecked = [
        t["ansible.builtin.import_role"]["name"]
        for t in site_play_tasks()
        if t.get("ansible.builtin.import_role", {}).get("rolespec_validate") is False
    ]
    assert len(unchecked) >= 10
    assert sorted(term.split(":")[0] for term in checked_terms()) == sorted(unchecked)


def test_the_merged_options_are_each_role_s_options_of_its_entry_point(
    plugin: ModuleType,
) -> None:
    roles = [term.partition(":") for term in checked_terms()]
    merged = plugin.merged_options([(r, spec(r), e or "sites") for r, _, e in roles])
    for role, _, entry in roles:
        for name, option in spec(role)[entry or "sites"]["options"].items():
            assert merged[name] == option
    assert "site_user_sites" in merged and merged["site_user_sites"]["required"] is True


def test_a_role_or_entry_point_that_is_not_there_or_an_option_in_two_specs_is_an_error(
    plugin: ModuleType, tmp_path: Path
) -> None:
    with pytest.raises(AnsibleLookupError, match="no argument spec of role 'nope'"):
        plugin.role_spec_file("nope", plugin.role_dirs([]))
    with pytest.raises(AnsibleLookupError, match="role 'site_model' has no entry point 'sites'"):
        plugin.merged_options([("site_model", spec("site_model"), "sites")])
    twice = [("limits", spec("limits"), "sites"), ("limits", spec("limits"), "main")]
    with pytest.raises(AnsibleLookupError, match="option 'limits_remove_sites' is in two"):
        plugin.merged_options(twice)
    assert plugin.role_spec_file("limits", plugin.role_dirs([str(tmp_path)])) == (
        REPO / "roles" / "limits" / "meta" / "argument_specs.yml"
    )


def test_a_wrong_role_variable_stops_site_yml_before_any_change_naming_it(
    tmp_path: Path,
) -> None:
    env = local_ansible_env()
    run = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), str(SITE_PLAY), "--check",
         "-i", "localhost,", "-c", "local", "-e", "limits_tasks_max=many",
         "-e", f"ansible_python_interpreter={sys.executable}"],
        capture_output=True, text=True, env=env, cwd=tmp_path, check=False,
    )  # fmt: skip
    output = run.stdout + run.stderr
    assert run.returncode != 0, output
    failed = output.split("TASK [")[-1]
    assert failed.startswith("Ensure the roles' variables match their argument specs"), output
    assert "limits_tasks_max" in failed and "int" in failed, output
    assert "changed=0" in output and "failed=1" in output, output
