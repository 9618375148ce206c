"""Action of siteops.hosting.site_accounts: templates rendered here, then one module call.

The same rendering as siteops.hosting.site_files (plugins/action/site_files.py);
``files`` may be left out.
"""

from __future__ import annotations

from ansible_collections.siteops.hosting.plugins.action.site_files import (
    ActionModule as FilesAction,
)


class ActionModule(FilesAction):
    MODULE = "siteops.hosting.site_accounts"
    FILES_REQUIRED = False
