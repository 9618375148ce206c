"""Action of siteops.hosting.site_files: render the entries' templates here, then one module call.

Each entry with ``template`` is rendered on the controller, as
ansible.builtin.template renders (the role's ``templates/`` first, the task's
variables, ``ansible_managed``), with the entry's own ``vars`` on top (for
example ``item``), and handed to the module as ``content``. An entry with
``exists`` (paths on the host, by name) is rendered once per combination of
them, ``exists.<name>`` true or false, and handed over as the ``variants``
that differ: the module writes the one that matches the host, with no read
before. The module then ensures every entry on the host in one call.
"""

from __future__ import annotations

import functools
import os
import pwd
import time
from typing import Any

from ansible import constants as C
from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.template import trust_as_template
from ansible_collections.siteops.hosting.plugins.module_utils.site_files import variants

MODULE = "siteops.hosting.site_files"


class ActionModule(ActionBase):  # type: ignore[misc]
    TRANSFERS_FILES = False
    _requires_connection = True
    # The module this action renders for (siteops.hosting.site_units reuses it),
    # and whether its files argument may be left out.
    MODULE = MODULE
    FILES_REQUIRED = True

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result: dict[str, Any] = super().run(tmp, task_vars)
        files = self._task.args.get("files")
        if files is None and not self.FILES_REQUIRED:
            files = []
        if not isinstance(files, list):
            raise AnsibleActionFail("files: a list of entries ({path, state, ...}) is required")
        sources: dict[str, tuple[str, Any]] = {}
        entries = []
        for entry in files:
            if not isinstance(entry, dict):
                raise AnsibleActionFail(f"files: each entry must be a mapping, got {entry!r}")
            entry = dict(entry)
            template = entry.pop("template", None)
            extra = entry.pop("vars", None) or {}
            conditions = entry.pop("exists", None)
            if template is not None and conditions:
                # Once per case of what the host has that it reads; the module picks.
                render = functools.partial(
                    self._render, str(template), entry, extra, task_vars, sources
                )
                chosen = variants(conditions, render)
                entry["variants" if isinstance(chosen, list) else "content"] = chosen
                entry.setdefault("state", "file")
            elif template is not None:
                entry["content"] = self._render(str(template), entry, extra, task_vars, sources)
                entry.setdefault("state", "file")
            elif conditions:
                raise AnsibleActionFail(f"{entry.get('path')}: exists needs a template")
            entries.append(entry)
        args = {**self._task.args, "files": entries}
        result.update(
            self._execute_module(module_name=self.MODULE, module_args=args, task_vars=task_vars)
        )
        return result

    def _render(
        self,
        template: str,
        entry: dict[str, Any],
        extra: dict[str, Any],
        task_vars: dict[str, Any],
        sources: dict[str, tuple[str, Any]],
        found: Any = None,
    ) -> str:
        """The entry's template rendered; ``found`` (what the host has) is its ``exists``."""
        if template not in sources:
            try:
                path = self._find_needle("templates", template)
            except Exception as exc:  # AnsibleError: not found in the role's templates/
                raise AnsibleActionFail(f"{entry.get('path')}: template {template}: {exc}") from exc
            sources[template] = (path, trust_as_template(self._loader.get_text_file_contents(path)))
        path, source = sources[template]
        searchpath = [*task_vars.get("ansible_search_path", []), self._loader._basedir]
        searchpath.append(os.path.dirname(path))
        searchpath = [p for base in searchpath for p in (os.path.join(base, "templates"), base)]
        variables = dict(task_vars)
        variables.update(_template_vars(template, path, entry.get("path")))
        if "ansible_managed" not in task_vars:
            variables["ansible_managed"] = _managed(path)
        variables.update(extra)
        if found is not None:
            variables["exists"] = found
        templar = self._templar.copy_with_new_env(
            searchpath=searchpath, available_variables=variables
        )
        rendered = templar.template(source, escape_backslashes=False)
        return "" if rendered is None else str(rendered)


def _template_vars(template: str, path: str, dest: str | None) -> dict[str, Any]:
    """The variables ansible.builtin.template gives a template about itself."""
    info = os.stat(path)
    try:
        uid: int | str = pwd.getpwuid(info.st_uid).pw_name
    except KeyError:
        uid = info.st_uid
    return {
        "template_host": os.uname()[1],
        "template_path": template,
        "template_fullpath": path,
        "template_destpath": dest,
        "template_uid": uid,
    }


def _managed(path: str) -> Any:
    """``ansible_managed`` as ansible.builtin.template makes it (setting DEFAULT_MANAGED_STR)."""
    text = str(C.config.get_config_value("DEFAULT_MANAGED_STR")).format(
        host="{{ template_host }}", uid="{{ template_uid }}", file="{{ template_path }}"
    )
    return trust_as_template(time.strftime(text, time.localtime(os.stat(path).st_mtime)))
