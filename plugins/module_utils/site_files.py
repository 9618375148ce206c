"""What siteops.hosting.site_files ensures, shared with siteops.hosting.site_units.

:class:`Ensurer` brings directories, files, blocks, links, assembled files and
absent paths to their wanted state (or, in check mode, only reports what
would change); ``ENTRY`` is the argument spec of one entry.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from typing import Any

ENTRY = dict(
    path=dict(type="path", required=True),
    state=dict(
        type="str",
        default="file",
        choices=[
            "directory",
            "file",
            "block",
            "block_absent",
            "touch",
            "link",
            "assemble",
            "absent",
        ],
    ),
    regexp=dict(type="str"),
    block=dict(type="str"),
    marker=dict(type="str"),
    insert_after=dict(type="str"),
    insert_before=dict(type="str", choices=["BOF"]),
    content=dict(type="str"),
    template=dict(type="str"),
    vars=dict(type="dict"),
    src=dict(type="str"),
    force=dict(type="bool", default=True),
    owner=dict(type="str"),
    group=dict(type="str"),
    mode=dict(type="str"),
    validate=dict(type="str"),
    backup=dict(type="bool", default=False),
    acl=dict(type="list", elements="str"),
    exists=dict(type="dict"),
    variants=dict(
        type="list",
        elements="dict",
        options=dict(
            when=dict(type="dict", required=True), content=dict(type="str", required=True)
        ),
    ),
)


class EntryError(Exception):
    """An entry that cannot be ensured; the message names the path."""


def _uid(name: str | None) -> int | None:
    return _id("user", name, lambda known: pwd.getpwnam(known).pw_uid)


def _gid(name: str | None) -> int | None:
    return _id("group", name, lambda known: grp.getgrnam(known).gr_gid)


def _id(kind: str, name: str | None, find: Callable[[str], int]) -> int | None:
    """The id of user or group ``name`` (None: not given)."""
    if name is None:
        return None
    try:
        return find(name)
    except KeyError:
        raise EntryError(f"{kind} {name!r} does not exist") from None


def _mode(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(str(text), 8)
    except ValueError:
        raise EntryError(f"mode {text!r} is not an octal mode such as '0644'") from None


def _read_acl(path: str) -> set[str]:
    """The path's ACL entries as getfacl prints them (``default:user:www-data:r-x``)."""
    run = subprocess.run(
        ["getfacl", "--absolute-names", "--omit-header", "--", path],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if run.returncode != 0:
        raise EntryError(f"getfacl: {run.stderr.strip()}")
    return {line.split()[0] for line in run.stdout.splitlines() if line.strip()}


def _acl_entry(spec: str, path: str) -> str:
    """An entry in setfacl's form (``default:user:www-data:rX``) as getfacl prints it.

    ``X`` is execute for a directory or for a file some execute bit is set on.
    """
    *head, perms = spec.split(":")
    if len(head) not in (2, 3) or (len(head) == 3 and head[0] not in ("d", "default")):
        raise EntryError(f"acl {spec!r} is not [default:]user|group:NAME:PERMS")
    kinds = {"u": "user", "user": "user", "g": "group", "group": "group"}
    if head[-2] not in kinds or not set(perms) <= set("rwxX-"):
        raise EntryError(f"acl {spec!r} is not [default:]user|group:NAME:PERMS")
    node = os.stat(path).st_mode
    x = "x" in perms or ("X" in perms and (stat.S_ISDIR(node) or node & 0o111 != 0))
    rights = ("r" if "r" in perms else "-") + ("w" if "w" in perms else "-") + ("x" if x else "-")
    prefix = "default:" if len(head) == 3 else ""
    return f"{prefix}{kinds[head[-2]]}:{head[-1]}:{rights}"


class Found:
    """Whether each named path exists, read by a template as ``exists.<name>``; notes each read."""

    def __init__(self, values: Mapping[str, bool]) -> None:
        self._values = dict(values)
        self.read: list[str] = []

    def __getattr__(self, name: str) -> bool:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name: str) -> bool:
        value = self._values[name]
        if name not in self.read:
            self.read.append(name)
        return value


def variants(conditions: Mapping[str, str], render: Callable[[Found], str]) -> Any:
    """A file's content for each case of what the host has: rendered here, chosen there.

    ``conditions`` names paths on the host (``{"certificate": "/etc/.../fullchain.pem"}``);
    ``render`` makes the content from a :class:`Found` (``found.certificate``:
    whether that path exists). Only the cases the content depends on are
    rendered: a path the template does not read (for this record, on this
    branch) makes no second case. The answer is the content itself when the
    template reads none, else the ``variants`` of a site_files entry, one
    ``{when: {path: exists}, content}`` per case; exactly one matches any host.
    """
    names = sorted(conditions)
    done: dict[tuple[bool, ...], tuple[str, list[str]]] = {}
    leaves: list[dict[str, Any]] = []

    def explore(assigned: dict[str, bool]) -> None:
        key = tuple(assigned.get(name, False) for name in names)
        if key not in done:
            found = Found(dict(zip(names, key, strict=True)))
            done[key] = (render(found), found.read)
        text, read = done[key]
        open_ = [name for name in read if name not in assigned]
        if not open_:
            leaves.append(
                {"when": {conditions[n]: v for n, v in assigned.items()}, "content": text}
            )
            return
        explore({**assigned, open_[0]: False})
        explore({**assigned, open_[0]: True})

    explore({})
    if len(leaves) == 1:
        return leaves[0]["content"]
    return leaves


def chosen_variant(entry: dict[str, Any]) -> str:
    """The content of the first of an entry's ``variants`` whose paths exist (or not) as it says."""
    for variant in entry["variants"]:
        if all(os.path.exists(path) == bool(wanted) for path, wanted in variant["when"].items()):
            return str(variant["content"])
    raise EntryError("none of its variants matches what the host has")


class Ensurer:
    """Brings paths to their wanted state; ``check`` only reports what would change."""

    def __init__(self, check: bool) -> None:
        self.check = check
        self.changed: list[str] = []
        self.diffs: list[dict[str, str]] = []
        self.backups: dict[str, str] = {}
        # Files, links and directories that did not exist before (in check mode, would not).
        self.created: list[str] = []
        # Directories that would be created in check mode: what they hold is new too.
        self._would_create: set[str] = set()
        # In check mode, what the entries so far would have written (None: removed).
        self._would_hold: dict[str, bytes | None] = {}

    def _new_in_check(self, path: str) -> bool:
        return self.check and os.path.dirname(path) in self._would_create

    def ensure(self, entry: dict[str, Any]) -> None:
        path = os.path.normpath(entry["path"])
        if not os.path.isabs(path):
            raise EntryError("path must be absolute")
        if entry.get("variants"):
            entry = {**entry, "content": chosen_variant(entry), "variants": None}
        state = entry["state"]
        if state == "absent":
            self._absent(path)
        elif state == "block_absent":
            self._unblock(path, entry)
        elif state == "link":
            self._link(path, entry)
        else:
            self._node(path, state, entry)

    def _mark(self, path: str) -> None:
        if not self.changed or self.changed[-1] != path:
            self.changed.append(path)

    def _absent(self, path: str) -> None:
        if not os.path.lexists(path):
            return
        self._mark(path)
        if self.check:
            self._would_hold[path] = None
            return
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)

    def _block_lines(
        self, path: str, entry: dict[str, Any]
    ) -> tuple[str, str, bytes | None, list[str]]:
        """A block entry's BEGIN and END lines, and the file's bytes and lines (none: missing)."""
        marker = entry.get("marker") or ""
        if "{mark}" not in marker:
            raise EntryError("a block needs a marker with {mark}")
        raw = self._read(path)
        lines = [] if raw is None else raw.decode("utf-8").splitlines()
        return marker.replace("{mark}", "BEGIN"), marker.replace("{mark}", "END"), raw, lines

    def _unblock(self, path: str, entry: dict[str, Any]) -> None:
        """The block between the marker lines removed with them; the rest of the file kept."""
        begin, end, _, lines = self._block_lines(path, entry)
        if begin not in lines or end not in lines[lines.index(begin) :]:
            return
        start = lines.index(begin)
        stop = lines.index(end, start)
        content = "".join(line + "\n" for line in lines[:start] + lines[stop + 1 :])
        diff = ("\n".join(lines[start : stop + 1]) + "\n", "")
        stat = os.stat(path)
        self._write(path, content, diff, entry, stat.st_mode & 0o7777, stat.st_uid, stat.st_gid)

    def _link(self, path: str, entry: dict[str, Any]) -> None:
        src = entry.get("src")
        if not src:
            raise EntryError("a link needs src")
        if os.path.islink(path):
            if os.readlink(path) == src or not entry["force"]:
                return
        elif os.path.lexists(path):
            if not entry["force"] or os.path.isdir(path):
                raise EntryError("exists and is not a link")
        if not os.path.lexists(path):
            self.created.append(path)
        self._mark(path)
        if self.check:
            return
        tmp = f"{path}.siteops-link"
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(src, tmp)
        os.replace(tmp, path)

    def _node(self, path: str, state: str, entry: dict[str, Any]) -> None:
        mode = _mode(entry.get("mode"))
        try:
            uid, gid = _uid(entry.get("owner")), _gid(entry.get("group"))
        except EntryError:
            # In check mode the user may be one this run would create first.
            if self.check:
                self._mark(path)
                if state == "directory":
                    self._would_create.add(path)
                return
            raise
        if self._new_in_check(path) or (
            self.check and not os.path.lexists(path) and state != "assemble"
        ):
            self.created.append(path)
            self._mark(path)
            if state == "file" and entry.get("content") is not None:
                self._would_hold[path] = entry["content"].encode("utf-8")
            if state == "directory":
                self._would_create.add(path)
            return
        if state == "directory":
            self._directory(path, mode)
        elif state == "touch":
            self._touch(path, mode)
        elif state == "block":
            self._block(path, entry, mode, uid, gid)
        elif state == "assemble":
            self._assemble(path, entry, mode, uid, gid)
        else:
            self._file(path, entry, mode, uid, gid)
        self._attributes(path, mode, uid, gid)
        if entry.get("acl"):
            self._acl(path, entry["acl"])

    def _directory(self, path: str, mode: int | None) -> None:
        if os.path.isdir(path) and not os.path.islink(path):
            return
        if os.path.lexists(path):
            raise EntryError("exists and is not a directory")
        self._mark(path)
        self.created.append(path)
        os.mkdir(path, 0o700 if mode is None else mode & 0o700)

    def _touch(self, path: str, mode: int | None) -> None:
        if os.path.lexists(path):
            if not stat.S_ISREG(os.lstat(path).st_mode):
                raise EntryError("exists and is not a regular file")
            return
        self._mark(path)
        self.created.append(path)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)

    def _file(
        self, path: str, entry: dict[str, Any], mode: int | None, uid: int | None, gid: int | None
    ) -> None:
        content = entry.get("content")
        if content is None:
            raise EntryError("a file needs content (or a template)")
        old = self._read(path)
        if old is not None and old == content.encode("utf-8"):
            return
        before = "" if old is None else old.decode("utf-8", "replace")
        self._write(path, content, (before, content), entry, mode, uid, gid)

    def _block(
        self, path: str, entry: dict[str, Any], mode: int | None, uid: int | None, gid: int | None
    ) -> None:
        begin, end, raw, lines = self._block_lines(path, entry)
        wanted = [begin, *(entry.get("block") or "").splitlines(), end]
        if begin in lines and end in lines[lines.index(begin) :]:
            start = lines.index(begin)
            stop = lines.index(end, start)
            before_block = lines[start : stop + 1]
            new = lines[:start] + wanted + lines[stop + 1 :]
        else:
            before_block = []
            at = len(lines)
            if entry.get("insert_before") == "BOF":
                at = 0
            elif entry.get("insert_after"):
                after = re.compile(entry["insert_after"])
                found = [i for i, line in enumerate(lines) if after.search(line)]
                at = found[-1] + 1 if found else len(lines)
            new = lines[:at] + wanted + lines[at:]
        content = "".join(line + "\n" for line in new)
        if raw is not None and raw == content.encode("utf-8"):
            return
        # Only the block is shown: the rest of the file (a .env) may hold secrets.
        diff = ("\n".join(before_block) + ("\n" if before_block else ""), "\n".join(wanted) + "\n")
        self._write(path, content, diff, entry, mode, uid, gid)

    def _assemble(
        self, path: str, entry: dict[str, Any], mode: int | None, uid: int | None, gid: int | None
    ) -> None:
        src = entry.get("src")
        if not src or not os.path.isdir(src):
            raise EntryError(f"src {src!r} is not a directory of fragments")
        pattern = re.compile(entry["regexp"]) if entry.get("regexp") else None
        names = set(os.listdir(src))
        if self.check:
            for held in self._would_hold:
                if os.path.dirname(held) == os.path.normpath(src):
                    names.add(os.path.basename(held))
        parts: list[bytes] = []
        for name in sorted(names):
            fragment = os.path.join(src, name)
            if pattern is not None and not pattern.search(name):
                continue
            if fragment in self._would_hold:
                held = self._would_hold[fragment]
                if held is not None:
                    parts.append(held)
                continue
            if not os.path.isfile(fragment):
                continue
            with open(fragment, "rb") as handle:
                parts.append(handle.read())
        # As ansible.builtin.assemble: a newline between fragments when one lacks it.
        content = b"".join(
            part + (b"\n" if i < len(parts) - 1 and not part.endswith(b"\n") else b"")
            for i, part in enumerate(parts)
        )
        if self.check and not os.path.lexists(path):
            self._mark(path)
            return
        old = self._read(path)
        if old == content:
            return
        before = "" if old is None else old.decode("utf-8", "replace")
        self._write(
            path, content.decode("utf-8", "replace"), (before, content.decode("utf-8", "replace")),
            entry, mode, uid, gid, raw=content,
        )  # fmt: skip

    @staticmethod
    def _read(path: str) -> bytes | None:
        if not os.path.lexists(path):
            return None
        if not stat.S_ISREG(os.lstat(path).st_mode):
            raise EntryError("exists and is not a regular file")
        with open(path, "rb") as handle:
            return handle.read()

    def _write(
        self,
        path: str,
        content: str,
        diff: tuple[str, str],
        entry: dict[str, Any],
        mode: int | None,
        uid: int | None,
        gid: int | None,
        raw: bytes | None = None,
    ) -> None:
        data = content.encode("utf-8") if raw is None else raw
        self._mark(path)
        if not os.path.lexists(path):
            self.created.append(path)
        self.diffs.append(
            {"before_header": path, "after_header": path, "before": diff[0], "after": diff[1]}
        )
        if self.check:
            self._would_hold[path] = data
            return
        directory, name = os.path.split(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.chmod(tmp, 0o600 if mode is None else mode)
            if uid is not None or gid is not None:
                os.chown(tmp, -1 if uid is None else uid, -1 if gid is None else gid)
            if entry.get("validate"):
                self._validate(entry["validate"], tmp)
            if entry.get("backup") and os.path.lexists(path):
                kept = f"{path}.{time.strftime('%Y-%m-%d@%H:%M:%S')}~"
                shutil.copy2(path, kept)
                self.backups[path] = kept
            os.replace(tmp, path)
        except BaseException:
            if os.path.lexists(tmp):
                os.unlink(tmp)
            raise

    @staticmethod
    def _validate(command: str, tmp: str) -> None:
        if "%s" not in command:
            raise EntryError(f"validate must contain %s: {command!r}")
        run = subprocess.run(
            command.replace("%s", tmp), shell=True, capture_output=True, text=True, check=False
        )
        if run.returncode != 0:
            raise EntryError(
                f"validation failed ({command}): {(run.stderr or run.stdout).strip()[-2000:]}"
            )

    def _acl(self, path: str, wanted: list[str]) -> None:
        if self.check and not os.path.lexists(path):
            return
        have = _read_acl(path)
        missing = [spec for spec in wanted if _acl_entry(spec, path) not in have]
        if not missing:
            return
        self._mark(path)
        if self.check:
            return
        run = subprocess.run(
            ["setfacl", "-m", ",".join(missing), "--", path],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if run.returncode != 0:
            raise EntryError(f"setfacl -m {','.join(missing)}: {run.stderr.strip()}")

    def _attributes(self, path: str, mode: int | None, uid: int | None, gid: int | None) -> None:
        if self.check and not os.path.lexists(path):
            return
        now = os.lstat(path)
        if (uid is not None and now.st_uid != uid) or (gid is not None and now.st_gid != gid):
            self._mark(path)
            if not self.check:
                os.chown(path, -1 if uid is None else uid, -1 if gid is None else gid)
        if mode is not None and stat.S_IMODE(now.st_mode) != mode:
            self._mark(path)
            if not self.check:
                os.chmod(path, mode)


def ensure_entries(ensurer: Ensurer, entries: list[dict[str, Any]]) -> str | None:
    """Ensure each entry in order: None, or the first failure's message naming its path."""
    for entry in entries:
        if entry.get("template") is not None or entry.get("exists") is not None:
            return (
                f"{entry['path']}: template is rendered by the action plugin; call the "
                "siteops.hosting action, not the module alone"
            )
        try:
            ensurer.ensure(entry)
        except (EntryError, OSError) as exc:
            return f"{entry['path']}: {exc}"
    return None


def ensure_files(
    module: Any, entries: list[dict[str, Any]], result: dict[str, Any], *, diff: bool = True
) -> list[str]:
    """Ensure ``entries`` for a module (in its check mode): the paths that changed.

    ``result`` (what the module answers) gets ``changed_paths`` and, in diff
    mode, ``diff`` (``diff=False``: never, for files that hold secrets). A
    failure fails the module with ``result``, naming the path.
    """
    ensurer = Ensurer(check=module.check_mode)
    failure = ensure_entries(ensurer, entries)
    result["changed_paths"] = ensurer.changed
    if failure is not None:
        module.fail_json(msg=failure, **result)
    if diff and module._diff:
        result["diff"] = ensurer.diffs
    return ensurer.changed
