"""YAML text read with libyaml when PyYAML was built with it.

``yaml.safe_load`` parses in pure Python: ~75 ms for a 50-site ``sites.yml``,
which a command reads more than once. libyaml's parser (``CSafeLoader``)
reads the same text into the same data in ~10 ms.
"""

from __future__ import annotations

from typing import Any

import yaml

# The same safe constructors either way; only the parser differs.
SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load(text: str) -> Any:
    """The data of one YAML document, as ``yaml.safe_load`` gives it."""
    return yaml.load(text, Loader=SafeLoader)  # noqa: S506 - a safe loader
