"""Turn pydantic validation errors into lines a person can act on."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # a type only: importing pydantic costs every command ~40 ms
    from pydantic import ValidationError


class SiteModelError(ValueError):
    """The site model in a file (or from the command line) is invalid."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


def _location(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if item == "[key]":
            # The error is about a mapping key (a site or component name).
            parts[-1] = f"{parts[-1]} (name)"
        else:
            parts.append(str(item))
    return ".".join(parts) or "(top level)"


def describe(exc: ValidationError) -> list[str]:
    """One ``field: rule`` line per problem, in the order pydantic found them."""
    lines: list[str] = []
    for error in exc.errors(include_url=False):
        where = _location(error["loc"])
        kind = error["type"]
        if kind == "extra_forbidden":
            message = "unknown field (not part of the site model; check its spelling)"
        elif kind == "missing":
            message = "required field is missing"
        else:
            message = error["msg"].removeprefix("Value error, ")
        lines.append(f"{where}: {message}")
    return lines


class SiteopsError(Exception):
    """An error siteops reports in one line; ``code`` is the exit status (2: bad input)."""

    code = 2


class HostRefused(SiteopsError):  # noqa: N818 (reads as the condition it reports)
    """A host cannot be added (or shown): the message names what is missing; nothing changed."""
