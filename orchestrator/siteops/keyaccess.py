"""What siteops does with a site's access key instead of the operator's login.

A key granted with ``siteops access grant`` logs in as the host's access
account, where sshd forces that site's access command
(roles/site_access: ``siteops-access``). ``deploy``, ``rollback``,
``releases`` and ``logs`` then send one request over one SSH connection: no
Ansible run, no registry (a site's developer has neither the operator's key
nor the sites file), only the host's address and host key from the
inventory. The host decides what the key may do.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from siteops.errors import SiteopsError
from siteops.release import packed
from siteops.remote import connection_argv

# The account every access key logs in as (roles/site_access: site_access_user).
ACCESS_USER = "siteops-access"
# A host variable naming the access key siteops uses for that host (instead of --access-key).
HOST_ACCESS_KEY = "siteops_access_key"


class AccessRefused(SiteopsError):  # noqa: N818 (reads as the condition it reports)
    """The host refused the request, or the key could not log in."""


@dataclass(frozen=True)
class KeyLogin:
    """How to reach one host's access command with one key."""

    variables: dict[str, Any]
    host: str
    key: Path

    def argv(self, words: list[str]) -> list[str]:
        """``ssh`` sending ``words`` as the request (the forced command reads it)."""
        return [*connection_argv(self.variables, self.host, ACCESS_USER, self.key), "--",
                shlex.join(words)]  # fmt: skip


def access_key(option: Path | None, variables: dict[str, Any]) -> Path | None:
    """The key to act with: ``--access-key``, else the host's ``siteops_access_key``, else none."""
    chosen = option or variables.get(HOST_ACCESS_KEY)
    if not chosen:
        return None
    path = Path(str(chosen)).expanduser()
    if not path.is_file():
        raise AccessRefused(f"access key: {path} is not a file (the private key of the grant)")
    return path


def _failed(code: int, said: str, what: str) -> AccessRefused:
    if code == 255:
        return AccessRefused(
            f"{what}: the access key could not log in ({said or 'see ssh above'}); is it "
            "granted (siteops access list) and is this its private key?"
        )
    return AccessRefused(f"{what}: {said or f'the host answered {code}'}")


@dataclass(frozen=True)
class KeyRelease:
    """What a deploy or rollback with a key printed on stdout, and the host's exit code."""

    lines: list[str]
    code: int


def deploy(login: KeyLogin, site: str, source: str, ref: str | None,
           health: tuple[str, int]) -> KeyRelease:  # fmt: skip
    """Pack ``source`` here and deploy it as a new release (the archive on the SSH stdin)."""
    with packed(source, ref) as release:
        words = ["deploy", site, release.release_id, "--source", release.source,
                 "--ref", release.ref, "--health-path", health[0],
                 "--health-timeout", str(health[1])]  # fmt: skip
        with release.archive.open("rb") as archive:
            done = subprocess.run(login.argv(words), stdin=archive, stdout=subprocess.PIPE,
                                  check=False)  # fmt: skip
    return _released(site, "deploy", done)


def rollback(login: KeyLogin, site: str, to: str | None, with_database: bool,
             health: tuple[str, int]) -> KeyRelease:  # fmt: skip
    words = ["rollback", site, "--health-path", health[0], "--health-timeout", str(health[1])]
    words += (["--to", to] if to else []) + (["--with-database"] if with_database else [])
    done = subprocess.run(login.argv(words), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          check=False)  # fmt: skip
    return _released(site, "rollback", done)


def _released(site: str, verb: str, done: subprocess.CompletedProcess[bytes]) -> KeyRelease:
    """The release's lines (stdout); the host's messages went to stderr as they came."""
    if done.returncode == 255:
        raise _failed(255, "", f"{verb} {site}")
    return KeyRelease(done.stdout.decode("utf-8", "replace").splitlines(), done.returncode)


def releases(login: KeyLogin, site: str) -> dict[str, Any]:
    """The site's releases as the host's access command reports them."""
    done = subprocess.run(login.argv(["releases", site]), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode != 0:
        raise _failed(done.returncode, done.stderr.strip(), f"releases {site}")
    data = json.loads(done.stdout)
    return {
        "current": data.get("current"),
        "serving_ports": list(data.get("serving_ports") or []),
        "main_ports": list(data.get("main_ports") or []),
        "log": list(data.get("log") or []),
    }


def logs_argv(
    login: KeyLogin, site: str, component: str | None, lines: int, follow: bool
) -> list[str]:
    words = ["logs", site, "-n", str(lines)] + (["-c", component] if component else [])
    return login.argv(words + (["-f"] if follow else []))
