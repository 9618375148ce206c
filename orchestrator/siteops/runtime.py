"""The runtimes a site's component runs on (the site model's ``runtime``).

Apart from :mod:`siteops.model` so that the command line can offer them as
choices without importing pydantic.
"""

from __future__ import annotations

from enum import StrEnum


class Runtime(StrEnum):
    NODE = "node"
    NEXTJS = "nextjs"
    PYTHON = "python"
    STATIC = "static"
