"""YAML text read and written with libyaml when PyYAML was built with it.

``yaml.safe_load`` parses in pure Python: ~75 ms for a 50-site ``sites.yml``,
which a command reads more than once. libyaml's parser (``CSafeLoader``)
reads the same text into the same data in ~10 ms; its emitter
(``CSafeDumper``) writes the same text as ``yaml.safe_dump`` in a quarter of
the time (~9 ms against ~36 ms for 55 sites; add-site writes it three times).
"""

from __future__ import annotations

from typing import Any

import yaml

# The same safe constructors either way; only the parser differs.
SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
SafeDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def load(text: str) -> Any:
    """The data of one YAML document, as ``yaml.safe_load`` gives it."""
    return yaml.load(text, Loader=SafeLoader)  # noqa: S506 - a safe loader


def dump(data: Any, **options: Any) -> str:
    """``data`` as ``yaml.safe_dump(data, **options)`` writes it."""
    return str(yaml.dump(data, Dumper=SafeDumper, **options))
