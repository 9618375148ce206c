"""`siteops apply` starts its run before it imports what reads the registry (fresh Pythons)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# Run in a fresh interpreter: siteops apply with Target.apply_run replaced by a
# stand-in that reports what was imported when the run would start, then what
# the rest of the command imported. Nothing reaches a host.
DRIVER = """
import contextlib, sys
from siteops import cli, target

HEAVY = ("pydantic", "jinja2", "siteops.model")

def loaded():
    return ",".join(m for m in HEAVY if m in sys.modules) or "none"

@contextlib.contextmanager
def apply_run(self, names, *, dry_run, on_progress):
    print("at the run's start:", loaded())
    try:
        yield None
    finally:
        print("after the command:", loaded())

target.Target.apply_run = apply_run
sys.argv = ["siteops", "-i", sys.argv[1], "--host", "web1", "apply", "--dry-run", "shop"]
try:
    cli.main()
except SystemExit:
    pass
"""


def _apply(tmp_path: Path) -> list[str]:
    (tmp_path / "hosts.yml").write_text("all:\n  hosts:\n    web1:\n", encoding="utf-8")
    done = subprocess.run(  # noqa: S603 - this Python, a fixed script
        [sys.executable, "-c", DRIVER, str(tmp_path)],
        capture_output=True, text=True, check=False, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert "site: 'shop' is not in the registry of web1" in done.stderr, done.stderr
    return [line for line in done.stdout.splitlines() if ": " in line and "the " in line]


def test_apply_starts_its_run_before_importing_pydantic_jinja_or_the_model(
    tmp_path: Path,
) -> None:
    lines = _apply(tmp_path)
    assert lines[0] == "at the run's start: none"
    # The command then reads the registry (and refuses the unknown site) with them.
    assert lines[1] == "after the command: pydantic,siteops.model"


def test_importing_the_command_line_imports_no_pydantic_and_no_jinja() -> None:
    done = subprocess.run(
        [sys.executable, "-c",
         "import sys, siteops.cli; print(sorted({'pydantic', 'jinja2'} & set(sys.modules)))"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert done.stdout.strip() == "[]"
