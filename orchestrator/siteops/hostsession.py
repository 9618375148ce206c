"""The part of siteops that runs on a host, as root: its lock, its registry copy, its audit log.

siteops sends this file's source over SSH (``python3 -c SOURCE MODE CONFIG
AUTH``; :mod:`siteops.hostlock` is the controller's side), so it uses the
standard library only and runs on the Python of Debian 12 and 13. Modes:

``session``
    Take the host's lock (an exclusive ``flock`` on ``CONFIG["lock"]``),
    printing one ``wait`` line per holder while another run holds it and
    ``timeout`` after ``CONFIG["timeout"]`` seconds; then ``locked``, with the
    previous holder if that run died without releasing (``taken_over``), the
    host's registry record, the texts of ``CONFIG["release_files"]`` (its
    Debian release, so that the command's runs need not read it again) and the
    TCP ports it listens on.
    Then it answers requests, one JSON line each on stdin: ``record`` (keep
    this sites file as the next revision) and ``finish`` (the command's
    result). The lock is held until stdin ends: siteops closes it when done,
    and if siteops or its SSH connection dies, stdin ends too and the kernel
    drops the lock with this process. On the way out one line is appended to
    the audit log (result ``interrupted`` when no ``finish`` came).
``status``
    Who holds the lock (``held``), or who last held it without releasing it.
``release``
    Clear a lock nobody holds; a held one only with ``CONFIG["force"]``,
    by stopping the process that holds it (logged in the audit log).
``read``
    The registry record, without the lock (``registry pull``).
``audit``
    The audit log's lines.
``backups``, ``offsite``
    A site's local backups; its offsite snapshots (or, without a site, the
    host's public key for the offsite target).

Every answer is one JSON line on stdout with an ``event`` key. Files are
root's only: the lock and the registry directory 0700, their files and the
audit log 0600; the registry is replaced atomically, the audit log appended.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import select
import signal
import string
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HISTORY = 200  # registry revisions remembered (hashes only), to tell "older" from "diverged"


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _say(event: str, **data: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **data}) + "\n")
    sys.stdout.flush()


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)


def _open_lock(path: str) -> int:
    _private_dir(Path(path).parent)
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


def _holder(fd: int) -> Any:
    try:
        text = os.pread(fd, 65536, 0).decode("utf-8")
        return json.loads(text) if text.strip() else None
    except (OSError, ValueError):
        return None


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def key_fingerprint(auth_file: str) -> str | None:
    """SHA256 fingerprint of the public key sshd accepted for this login (``ExposeAuthInfo``)."""
    if not auth_file:
        return None
    try:
        lines = Path(auth_file).read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "publickey":
            try:
                blob = base64.b64decode(parts[2], validate=True)
            except ValueError:
                return None
            digest = base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii")
            return "SHA256:" + digest.rstrip("=")
    return None


def _listening() -> list[int]:
    """The TCP ports the host listens on, any address (as ``listeners()`` of
    playbooks/files/siteops_facts.py reads them): add-site chooses a port block
    none of them is in, so that its run's own check finds the block free."""
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text(encoding="ascii").splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) >= 4 and fields[3] == "0A":  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return sorted(ports)


def _text(path: str) -> str | None:
    """A small text file's content (the host's release files); None when it cannot be read."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, ValueError):
        return None


def read_registry(directory: str) -> dict[str, Any]:
    """The registry record: revision, sha256 and text of the last sites file, hash history."""
    try:
        state = json.loads((Path(directory) / "state.json").read_text(encoding="utf-8"))
        state["text"] = (Path(directory) / "sites.yml").read_text(encoding="utf-8")
    except (OSError, ValueError):
        return {"revision": 0, "sha256": None, "text": None, "history": []}
    return dict(state)


def _write_atomically(path: Path, data: bytes, *, keep_owner: bool = False) -> None:
    """Replace ``path`` with ``data`` (a synced temporary file renamed over it), 0600 root's,
    or with the old file's owner, group and mode when ``keep_owner``."""
    temporary = path.with_name(path.name + ".siteops-tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, data)
        if keep_owner:
            info = path.stat()
            os.fchown(fd, info.st_uid, info.st_gid)
            os.fchmod(fd, info.st_mode & 0o7777)
        os.fsync(fd)
    finally:
        os.close(fd)
    temporary.replace(path)


def record_registry(directory: str, text: str, by: str, command: str | None) -> dict[str, Any]:
    """Keep ``text`` as the next revision of the registry; returns the new state (no text)."""
    _private_dir(Path(directory))
    state = read_registry(directory)
    state.pop("text", None)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    if digest == state.get("sha256"):
        return state  # the same file again (a run that changed no site record)
    revision = int(state.get("revision", 0)) + 1
    entry = {"revision": revision, "sha256": digest, "at": _now(), "by": by, "command": command}
    history = [entry, *state.get("history", [])][:HISTORY]
    state = {**entry, "history": history}
    _write_atomically(Path(directory) / "sites.yml", text.encode("utf-8"))
    _write_atomically(Path(directory) / "state.json", json.dumps(state).encode("utf-8"))
    # The directory entry of both renames survives a crash of the host too.
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return state


def append_audit(path: str, entry: dict[str, Any]) -> None:
    """Append one JSON line to the audit log (root only), in one write."""
    _private_dir(Path(path).parent)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, (json.dumps(entry, sort_keys=True) + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def _client_gone(seconds: float) -> bool:
    """Wait up to ``seconds``; True if stdin became readable meanwhile.

    The client sends nothing before it is told ``locked``: input while
    waiting is the end of stdin, its connection closed (a command cancelled
    while it waited).
    """
    readable, _, _ = select.select([sys.stdin], [], [], seconds)
    return bool(readable)


def _acquire(fd: int, timeout: float) -> bool:
    """Wait for the lock, telling who holds it; False after ``timeout`` seconds, or as soon
    as the client has gone (then it never takes the lock, nor leaves a holder behind)."""
    started = time.monotonic()
    told = None
    while not _try_lock(fd):
        holder = _holder(fd)
        if holder != told:
            _say("wait", holder=holder)
            told = holder
        if time.monotonic() - started >= timeout:
            _say("timeout", holder=holder, waited=round(time.monotonic() - started, 1))
            return False
        if _client_gone(0.2):
            return False
    return True


def _entry(holder: dict[str, Any], result: str, at: str) -> dict[str, Any]:
    """An audit line for the command ``holder`` names (revision and duration filled in later)."""
    return {
        "time": at,
        "operator": {"user": holder.get("user"), "machine": holder.get("hostname"),
                     "key": holder.get("key"), "login": holder.get("login")},
        "command": holder.get("purpose"),
        "args": holder.get("args", []),
        "sites": holder.get("sites", []),
        "result": result,
        "revision": None,
        "duration_s": None,
    }  # fmt: skip


def _bury(config: dict[str, Any], left: dict[str, Any], revision: Any) -> None:
    """The audit line of a run whose hold ended without one (killed on the host, or crashed)."""
    entry = _entry(left, "interrupted", str(left.get("since") or _now()))
    entry["revision"] = revision
    entry["note"] = "its hold on the host ended without a result; the next run took the lock over"
    append_audit(config["audit"], entry)


def session(config: dict[str, Any], key: str | None) -> int:
    """Hold the lock until stdin ends, answering requests; see the module's docstring."""
    fd = _open_lock(config["lock"])
    if not _acquire(fd, float(config["timeout"])):
        return 75
    started = time.monotonic()
    left = _holder(fd)  # still there: its run died without releasing the lock
    holder = {**config["holder"], "host_pid": os.getpid(), "key": key,
              "args": config.get("args", []), "sites": config.get("sites", []),
              "login": config.get("login")}  # fmt: skip
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(holder).encode("utf-8"), 0)
    os.fsync(fd)
    by = f"{holder.get('user')}@{holder.get('hostname')}"
    registry = read_registry(config["registry"])
    release = {path: _text(path) for path in config.get("release_files", [])}
    _say("locked", holder=holder, taken_over=left, registry=registry, release=release,
         listening=_listening())  # fmt: skip
    if left:
        _bury(config, left, registry.get("revision"))
    audit = _entry(holder, "interrupted", _now())
    if left:
        audit["took_over"] = left
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `lock release --force`
    signal.signal(signal.SIGHUP, lambda *_: sys.exit(129))  # the SSH session went away
    try:
        for line in sys.stdin:
            request = json.loads(line)
            if request["op"] == "record":
                state = record_registry(
                    config["registry"], request["text"], by, holder.get("purpose")
                )
                audit["revision"] = state.get("revision")
                _say("recorded", revision=state.get("revision"), sha256=state.get("sha256"))
            elif request["op"] == "env":
                _say("env", **change_env(request["path"], request.get("set", {}),
                                         request.get("unset", [])))  # fmt: skip
            elif request["op"] == "rotate_db":
                _say("rotated", **rotate_db_password(request["path"], request["role"]))
            elif request["op"] == "serving":
                _say("serving", units=serving(request["units"], request["timeout"]))
            elif request["op"] == "restart":
                _say("restarted", units=restart_units(request["units"]))
            elif request["op"] == "backup":
                _say("backed-up", **take_backup(request["root"], request["site"],
                                                request.get("keep")))  # fmt: skip
            elif request["op"] == "move_backup":
                _say("backed-up", **move_backup(request["site"]))
            elif request["op"] == "fetch":
                _say("fetched", **fetch_offsite(request["site"], request.get("snapshot")))
            elif request["op"] == "restore":
                done = restore_backup(request["root"], request["site"], request["backup"],
                                      request.get("whole"))  # fmt: skip
                _say("restored", **done,
                     current=current_release(request["sites_root"], request["site"]))  # fmt: skip
            elif request["op"] == "nginx":
                _say("answered", **through_nginx(request["domain"]))
            elif request["op"] == "finish":
                audit["result"] = request["result"]
                audit["sites"] = request.get("sites", audit["sites"])
                _say("finished")
            else:
                _say("error", message=f"unknown request {request['op']!r}")
    finally:
        if audit["revision"] is None:
            audit["revision"] = read_registry(config["registry"]).get("revision")
        audit["duration_s"] = round(time.monotonic() - started, 1)
        append_audit(config["audit"], audit)
        os.ftruncate(fd, 0)  # released: nobody holds it any more
        os.close(fd)
    return 0


# A site's .env: blocks between "# BEGIN siteops …" and "# END siteops …" lines
# belong to the roles (their keys are managed); every other line is the operator's.
_BEGIN, _END = "# BEGIN siteops ", "# END siteops "


def parse_env(text: str) -> list[dict[str, Any]]:
    """The KEY=VALUE lines of a .env, each with ``managed`` (inside a roles' block)."""
    entries: list[dict[str, Any]] = []
    managed = False
    for line in text.splitlines():
        if line.startswith(_BEGIN):
            managed = True
        elif line.startswith(_END):
            managed = False
        elif "=" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            entries.append({"key": key.strip(), "value": _unquote(value.strip()),
                            "managed": managed})  # fmt: skip
    return entries


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1]
    if len(value) >= 2 and value[0] == value[-1] == '"':
        out, chars = [], iter(value[1:-1])
        for char in chars:
            out.append(next(chars, "") if char == "\\" else char)
        return "".join(out)
    return value


def _quote(value: str) -> str:
    """``value`` as systemd's EnvironmentFile reads it back unchanged (shell-like quoting)."""
    if value and all(c.isalnum() or c in "_-.,:/@%+=~^" for c in value):
        return value
    if "'" not in value:
        return f"'{value}'"  # literal: no escape, no ${} expansion
    return '"' + "".join("\\" + c if c in '\\"$`' else c for c in value) + '"'


def change_env(path: str, assign: dict[str, str], unset: list[str]) -> dict[str, Any]:
    """Set and unset the operator's variables of a .env (managed keys refused); what changed.

    The file keeps its owner, group and mode, and is replaced atomically.
    """
    text = Path(path).read_text(encoding="utf-8")
    entries = parse_env(text)
    managed = sorted({e["key"] for e in entries if e["managed"]} & (set(assign) | set(unset)))
    if managed:
        return {"refused": managed, "changed": []}
    current = {e["key"]: e["value"] for e in entries if not e["managed"]}
    changed = sorted({k for k, v in assign.items() if current.get(k) != v}
                     | {k for k in unset if k in current})  # fmt: skip
    if not changed:
        return {"refused": [], "changed": []}
    lines, managed_block, done = [], False, set()
    for line in text.splitlines():
        key = line.partition("=")[0].strip() if "=" in line else None
        if line.startswith(_BEGIN):
            managed_block = True
        elif line.startswith(_END):
            managed_block = False
        elif key and not managed_block and not line.lstrip().startswith("#"):
            if key in unset:
                continue
            if key in assign:
                if key in done:
                    continue  # one line per key: the last assignment used to win
                line = f"{key}={_quote(assign[key])}"
                done.add(key)
        lines.append(line)
    lines += [f"{k}={_quote(v)}" for k, v in assign.items() if k not in done]
    _write_atomically(Path(path), ("\n".join(lines) + "\n").encode("utf-8"), keep_owner=True)
    return {"refused": [], "changed": changed}


_DATABASE_URL = re.compile(r"^DATABASE_URL=(postgresql://[^:/@]+:)([A-Za-z0-9]+)(@.*)$")


def rotate_db_password(path: str, role: str) -> dict[str, Any]:
    """A new password for the site's PostgreSQL role and in its .env's managed DATABASE_URL.

    The password (letters and digits, as long as the old one) is set first
    (over psql's stdin, never on a command line), then written into the
    roles' block of .env (owner and mode kept), so a failure of either leaves
    the old one working. The old password stops working at once.
    """
    text = Path(path).read_text(encoding="utf-8")
    lines, managed, where = text.splitlines(), False, None
    for i, line in enumerate(lines):
        if line.startswith(_BEGIN):
            managed = True
        elif line.startswith(_END):
            managed = False
        elif managed and _DATABASE_URL.match(line):
            where = i
    if where is None or not re.fullmatch(r"[a-z][a-z0-9-]*", role):
        return {"error": "no DATABASE_URL written by siteops in " + path}
    found = _DATABASE_URL.match(lines[where])
    assert found is not None
    alphabet = string.ascii_letters + string.digits
    password = "".join(secrets.choice(alphabet) for _ in range(max(len(found.group(2)), 32)))
    done = subprocess.run(
        ["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1",
         "-d", "postgres"],
        input=f"ALTER ROLE \"{role}\" WITH PASSWORD '{password}';\n",
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        return {"error": "psql: " + done.stderr.strip().replace(password, "***")}
    lines[where] = f"DATABASE_URL={found.group(1)}{password}{found.group(3)}"
    _write_atomically(Path(path), ("\n".join(lines) + "\n").encode("utf-8"), keep_owner=True)
    return {"error": None}


def restart_units(units: list[str]) -> dict[str, str]:
    """Restart ``units`` (one systemctl call); each unit's state afterwards."""
    if not units:
        return {}
    # A unit that hit its start limit refuses a restart until its failure is reset.
    subprocess.run(["systemctl", "reset-failed", "--", *units], check=False, capture_output=True)
    subprocess.run(["systemctl", "restart", "--", *units], check=False, capture_output=True)
    done = subprocess.run(["systemctl", "is-active", "--", *units], check=False,
                          capture_output=True, text=True)  # fmt: skip
    states = done.stdout.split()
    return {unit: states[i] if i < len(states) else "unknown" for i, unit in enumerate(units)}


def serving(units: dict[str, int | None], timeout: float) -> dict[str, dict[str, Any]]:
    """Each unit's state and whether its loopback port answers, waiting up to ``timeout``.

    Only a unit that is active (or activating) is waited for; a unit that
    systemd does not start (a site still on its placeholder) is reported as is.
    """
    import socket

    deadline = time.monotonic() + timeout
    report: dict[str, dict[str, Any]] = {}
    while True:
        names = list(units)
        done = subprocess.run(["systemctl", "is-active", "--", *names], check=False,
                              capture_output=True, text=True)  # fmt: skip
        states = done.stdout.split()
        for i, unit in enumerate(names):
            state = states[i] if i < len(states) else "unknown"
            port, up = units[unit], None
            if port is not None and state in ("active", "activating"):
                with socket.socket() as probe:
                    probe.settimeout(1)
                    up = probe.connect_ex(("127.0.0.1", port)) == 0
            report[unit] = {"state": state, "port": port, "listening": up}
            if state == "failed":  # why: exit-code, start-limit-hit, timeout …
                why = subprocess.run(["systemctl", "show", "-p", "Result", "--value", "--", unit],
                                     check=False, capture_output=True, text=True)  # fmt: skip
                report[unit]["state"] = f"failed ({why.stdout.strip() or 'unknown'})"
        waiting = [r for r in report.values() if r["listening"] is False]
        if not waiting or time.monotonic() >= deadline:
            return report
        time.sleep(0.2)


def _json_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def list_backups(root: str, site: str) -> dict[str, Any]:
    """Each backup of ``site``, newest first, with the last backup's and restore test's results.

    A backup: ``id``, ``kind`` (daily, final, before-drop), ``size`` (bytes),
    ``holds`` (database, files), ``restore_tested`` (the weekly restore test
    restored this one, and it passed).
    """
    base = Path(root) / site
    tested = _json_file(base / "status" / "restore-test.json")
    backups: list[dict[str, Any]] = []
    names = sorted((p.name for p in base.glob("2*Z*")), reverse=True) if base.is_dir() else []
    for name in names:
        entry = base / name
        if entry.is_symlink() or not entry.is_dir() or name.endswith(".partial"):
            continue
        files = {p.name: p.stat().st_size for p in entry.iterdir() if p.is_file()}
        kind = name.rpartition("Z-")[2] if "Z-" in name else "daily"
        holds = (["database"] if "db.dump" in files else []) + (
            ["shared/" if kind in ("final", "move") else "uploads, .env"]
            if "files.tar.gz" in files
            else []
        )
        backups.append({
            "id": name, "kind": kind, "size": sum(files.values()), "holds": holds,
            "restore_tested": tested.get("backup") == name and tested.get("result") == "ok",
        })  # fmt: skip
    return {"backups": backups, "last": _json_file(base / "status" / "backup.json"),
            "restore_test": tested}  # fmt: skip


def _keep_file(root: str, site: str) -> Path:
    """Names the backup a restore is about to use: the backups' retention leaves it alone."""
    return Path(root) / site / "status" / "keep"


def take_backup(root: str, site: str, keep: str | None = None) -> dict[str, Any]:
    """A backup of ``site`` now, by its backup unit (its result is what status and doctor read).

    ``keep``: a backup its retention must not remove (the one a restore uses next).
    """
    if keep:
        _keep_file(root, site).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _write_atomically(_keep_file(root, site), keep.encode("utf-8") + b"\n")
    done = subprocess.run(["systemctl", "start", f"siteops-backup@{site}.service"],
                          check=False, capture_output=True, text=True)  # fmt: skip
    last = _json_file(Path(root) / site / "status" / "backup.json")
    error = None
    if done.returncode != 0:
        error = str(last.get("message") or done.stderr.strip() or "the backup unit failed")
    return {"error": error, "last": last, "kept": backup_kept(root, site, last)}


def move_backup(site: str) -> dict[str, Any]:
    """What a final backup holds (database, shared/, release), taken for ``siteops move-site``."""
    done = subprocess.run(["/usr/local/sbin/siteops-backup", site, "--move"],
                          check=False, capture_output=True, text=True)  # fmt: skip
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"error": (done.stderr.strip() or "siteops-backup failed")[-2000:], "path": None}
    return {"error": None, "path": lines[-1]}


def backup_kept(root: str, site: str, last: dict[str, Any]) -> bool:
    """The last backup is there locally (when it failed, its offsite copy is what failed)."""
    return bool(last.get("backup")) and (Path(root) / site / str(last["backup"])).is_dir()


def restore_backup(root: str, site: str, backup: str, whole: bool = False) -> dict[str, Any]:
    """The database and shared/uploads of ``site`` from ``backup`` (siteops-restore); ``whole``:
    a removed site's database, shared/ and release from its final backup."""
    try:
        done = subprocess.run(["/usr/local/sbin/siteops-restore", site, backup,
                               *(["--whole"] if whole else [])],
                              check=False, capture_output=True, text=True)  # fmt: skip
    finally:
        _keep_file(root, site).unlink(missing_ok=True)
    said = (done.stdout + done.stderr).strip()
    return {"error": None if done.returncode == 0 else said[-2000:] or "siteops-restore failed",
            "output": said[-2000:]}  # fmt: skip


OFFSITE = "/usr/local/sbin/siteops-offsite"  # roles/site_backup


def _offsite(*args: str) -> tuple[int, str, str]:
    """``siteops-offsite ARGS``: its exit code (3: offsite copies are off), output and reason."""
    try:
        done = subprocess.run([OFFSITE, *args], check=False, capture_output=True, text=True)
    except FileNotFoundError:
        return 3, "", "this host has no siteops-offsite yet (converge it)"
    said = done.stderr.strip().splitlines()
    return done.returncode, done.stdout.strip(), said[-1] if said else ""


def offsite(config: dict[str, Any]) -> dict[str, Any]:
    """The offsite snapshots of ``config["site"]`` (``snapshots``), or this host's key (``key``)."""
    wanted = ["list", config["site"]] if config.get("site") else ["key"]
    code, out, reason = _offsite(*wanted)
    if code != 0:
        return {"off": code == 3, "error": reason or "siteops-offsite failed"}
    if wanted[0] == "key":
        return {"off": False, "key": out}
    return {"off": False, "snapshots": json.loads(out or "[]")}


def fetch_offsite(site: str, snapshot: str | None) -> dict[str, Any]:
    """An offsite snapshot of ``site`` put back among its local backups: its backup ``id``."""
    code, out, reason = _offsite("fetch", site, *([snapshot] if snapshot else []))
    if code != 0:
        return {"error": reason or "siteops-offsite fetch failed", "off": code == 3}
    return {"error": None, "id": out.splitlines()[-1] if out else None}


def current_release(sites_root: str, site: str) -> str | None:
    """The release ``site`` runs (the name ``current`` points at), None without one."""
    try:
        return (Path(sites_root) / site / "current").readlink().name
    except OSError:
        return None


def through_nginx(domain: str) -> dict[str, Any]:
    """The status code nginx answers ``/`` of ``domain`` with (over HTTPS when it redirects)."""
    codes: list[str] = []
    for scheme, port in (("http", 80), ("https", 443)):
        done = subprocess.run(
            ["curl", "-sk", "-o", "/dev/null", "-m", "10", "-w", "%{http_code}",
             "--resolve", f"{domain}:{port}:127.0.0.1", f"{scheme}://{domain}/"],
            check=False, capture_output=True, text=True,
        )  # fmt: skip
        codes.append(done.stdout.strip() or "000")
        if codes[-1] not in ("301", "302", "307", "308"):
            break
    return {"code": int(codes[-1]) if codes[-1].isdigit() else 0, "scheme": scheme}


def read_env(config: dict[str, Any]) -> int:
    try:
        text = Path(config["path"]).read_text(encoding="utf-8")
    except FileNotFoundError:
        _say("env", entries=None)
        return 0
    _say("env", entries=parse_env(text))
    return 0


def status(config: dict[str, Any]) -> int:
    fd = _open_lock(config["lock"])
    try:
        if _try_lock(fd):
            _say("status", held=False, left=_holder(fd))
        else:
            _say("status", held=True, holder=_holder(fd))
    finally:
        os.close(fd)
    return 0


def release(config: dict[str, Any], key: str | None) -> int:
    fd = _open_lock(config["lock"])
    try:
        if _try_lock(fd):
            left = _holder(fd)
            if left:
                _bury(config, left, read_registry(config["registry"]).get("revision"))
            os.ftruncate(fd, 0)
            _say("released", held=False, holder=left)
            return 0
        holder = _holder(fd) or {}
        if not config.get("force"):
            _say("refused", holder=holder)
            return 1
        pid = holder.get("host_pid")
        if isinstance(pid, int) and pid > 1:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while not _try_lock(fd):
            if time.monotonic() > deadline:
                if isinstance(pid, int) and pid > 1:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                deadline = time.monotonic() + 5
            time.sleep(0.1)
        os.ftruncate(fd, 0)
        append_audit(config["audit"], {
            "time": _now(), "command": "lock release --force", "result": "ok",
            "operator": {**config.get("operator", {}), "key": key, "login": config.get("login")},
            "args": [], "sites": [], "released": holder, "duration_s": 0,
            "revision": read_registry(config["registry"]).get("revision"),
        })  # fmt: skip
        _say("released", held=True, holder=holder)
        return 0
    finally:
        os.close(fd)


def audit_lines(config: dict[str, Any]) -> int:
    try:
        text = Path(config["audit"]).read_text(encoding="utf-8")
        lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    except FileNotFoundError:
        lines = []
    _say("audit", entries=lines)
    return 0


def main(argv: list[str]) -> int:
    mode, config = argv[0], json.loads(argv[1])
    key = key_fingerprint(argv[2] if len(argv) > 2 else "")
    if mode == "session":
        return session(config, key)
    if mode == "status":
        return status(config)
    if mode == "release":
        return release(config, key)
    if mode == "read":
        _say("registry", registry=read_registry(config["registry"]))
        return 0
    if mode == "audit":
        return audit_lines(config)
    if mode == "env":
        return read_env(config)
    if mode == "backups":
        _say("backups", **list_backups(config["root"], config["site"]))
        return 0
    if mode == "offsite":
        _say("offsite", **offsite(config))
        return 0
    _say("error", message=f"unknown mode {mode!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
