"""The options of several roles' argument specs, merged: one check instead of one per role.

playbooks/site.yml imports a dozen roles, each through an entry point with its
own argument spec; Ansible would run one validation task per role and read
every spec file while loading the play. The play turns that off
(``rolespec_validate: false``) and checks every variable of every role it
runs at once, before any change::

    - ansible.builtin.validate_argument_spec:
        argument_spec: "{{ lookup('siteops.hosting.role_options', 'site_user',
                           'nginx_site', entry_point='sites') }}"

Each role's variables carry its name as their prefix, so the merged options
never collide; a name in two specs is an error all the same. A role is looked
for among this collection's roles (beside this file's ``plugins/``, in this
repository and in the installed collection alike), then in Ansible's roles path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from ansible import constants
from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

DOCUMENTATION = r"""
name: role_options
short_description: The merged options of roles' argument specs for one entry point
description:
  - Reads C(meta/argument_specs.yml) of each named role and returns one dict of the
    options of its O(entry_point), for M(ansible.builtin.validate_argument_spec).
options:
  _terms:
    description: Role names; C(role:entry_point) names another entry point for that role.
    required: true
  entry_point:
    description: The entry point whose options are read (a role without it is an error).
    type: str
    default: main
"""


# This file is plugins/lookup/ of the collection whose roles/ it reads.
COLLECTION_ROLES = Path(__file__).resolve().parent.parent.parent / "roles"


def role_dirs(roles_path: list[str]) -> list[Path]:
    """Where roles are looked for, first found first: this collection's, then Ansible's path."""
    return [COLLECTION_ROLES, *(Path(p).expanduser() for p in roles_path)]


def role_spec_file(role: str, dirs: list[Path]) -> Path:
    for base in dirs:
        for name in ("argument_specs.yml", "argument_specs.yaml"):
            path = base / role / "meta" / name
            if path.is_file():
                return path
    searched = ", ".join(str(d) for d in dirs)
    raise AnsibleLookupError(f"role_options: no argument spec of role {role!r} in {searched}")


def merged_options(specs: list[tuple[str, dict[str, Any], str]]) -> dict[str, Any]:
    """``[(role, its argument_specs, entry point)]`` -> the options of all those entry points."""
    merged: dict[str, Any] = {}
    for role, spec, entry_point in specs:
        if entry_point not in spec:
            raise AnsibleLookupError(
                f"role_options: role {role!r} has no entry point {entry_point!r}"
            )
        for name, option in (spec[entry_point].get("options") or {}).items():
            if name in merged:
                raise AnsibleLookupError(f"role_options: option {name!r} is in two roles' specs")
            merged[name] = option
    return merged


# libyaml's parser when PyYAML has it: the dozen files in ~5 ms instead of ~45 ms.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LookupModule(LookupBase):
    def run(
        self, terms: list[Any], variables: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[Any]:
        self.set_options(var_options=variables, direct=kwargs)
        default_entry = str(self.get_option("entry_point"))
        dirs = role_dirs(list(constants.DEFAULT_ROLES_PATH or []))
        specs = []
        for term in (str(term) for term in terms):
            role, _, entry_point = term.partition(":")
            text = role_spec_file(role, dirs).read_text(encoding="utf-8")
            data = yaml.load(text, Loader=_SAFE_LOADER) or {}  # noqa: S506 - a safe loader
            specs.append(
                (role, dict(data.get("argument_specs") or {}), entry_point or default_entry)
            )
        return [merged_options(specs)]
