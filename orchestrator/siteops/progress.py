"""A run's progress as it goes, on the terminal or one line per task.

Apart from :mod:`siteops.display` (tables and views of sites, which need the
site model): a command shows its progress before it imports that.
"""

from __future__ import annotations

import shutil
from typing import TextIO

from siteops.runner import Progress


class ProgressDisplay:
    """Turns :class:`Progress` updates into output.

    On a terminal: one line rewritten in place (counts, current task and host,
    a bar when the number of tasks is known). Elsewhere (CI, a pipe): one line
    per task as it starts, so a log shows how far a run got.
    """

    def __init__(self, stream: TextIO, *, interactive: bool | None = None) -> None:
        self.stream = stream
        self.interactive = stream.isatty() if interactive is None else interactive
        self._last_task: str | None = None
        self._drawn = False

    def __call__(self, progress: Progress | str) -> None:
        if isinstance(progress, str):  # a note: a line of its own
            self.close()
            self.stream.write(progress + "\n")
        elif self.interactive:
            width = shutil.get_terminal_size((100, 20)).columns
            line = progress_line(progress)[: max(width - 1, 20)]
            self.stream.write("\r\x1b[K" + line)
            self._drawn = True
            if progress.finished:
                self.stream.write("\n")
                self._drawn = False
        elif progress.task and progress.task != self._last_task:
            self._last_task = progress.task
            self.stream.write(f"  [{progress.tasks_done + 1}] {progress.task}\n")
        self.stream.flush()

    def close(self) -> None:
        """End a line left open by an interrupted run."""
        if self._drawn:
            self.stream.write("\n")
            self._drawn = False


def _bar(done: int, total: int, width: int = 20) -> str:
    filled = min(width, (done * width) // total) if total else width
    return "[" + "#" * filled + "." * (width - filled) + f"] {done}/{total}"


def progress_line(progress: Progress) -> str:
    """One line: where the run is and what it counted so far."""
    counts = f"ok={progress.ok} changed={progress.changed} failed={progress.failed}"
    if progress.unreachable:
        counts += f" unreachable={progress.unreachable}"
    if progress.finished:
        return f"done: {counts}"
    where = progress.task or progress.play or "starting"
    if progress.host:
        where += f" ({progress.host})"
    if progress.tasks_total:
        return f"{_bar(progress.tasks_done, progress.tasks_total)} {counts} {where}"
    return f"task {progress.tasks_done + 1}: {where}  {counts}"
