"""The ``siteops`` command line: parse, call the library, print.

Exit codes: 0 success; 2 bad input (nothing was changed); 75 the registry is
locked by another siteops run; from a playbook run 1 (Ansible error), 2 (a
task failed), 3 (host unreachable), 130 (cancelled); 1 for sandbox errors.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, NoReturn

import click
import yaml

from siteops import __version__, keyaccess
from siteops import access as access_rules
from siteops import hosts as host_checks
from siteops.errors import SiteModelError, SiteopsError
from siteops.inventory import load_host_sites, load_inventory_sites
from siteops.ports import PortBlocksExhausted
from siteops.progress import ProgressDisplay
from siteops.project import find_project, init_project
from siteops.registry import RegistryLocked
from siteops.release import SourceError
from siteops.remote import RemoteError, host_vars, log_command, ssh_argv
from siteops.resources import ProjectNotFound, find_collection, find_testhosts
from siteops.runner import EXIT_CANCELLED, RunResult
from siteops.runtime import Runtime
from siteops.sandbox import CONTAINER as SANDBOX_CONTAINER
from siteops.sandbox import (
    DEBIAN_RELEASES,
    DEFAULT_DEBIAN,
    DEPLOY_USER,
    Ports,
    Sandbox,
    SandboxError,
)
from siteops.target import DEFAULT_LOCK_TIMEOUT, Target, default_log_dir


def _lazy(name: str) -> ModuleType:
    """Module ``name``, imported when one of its names is first used (``LazyLoader``).

    For the modules that read and change sites (pydantic's model, Jinja, the
    host session): ``siteops apply`` starts its ansible-playbook before it
    needs them (:meth:`siteops.target.Target.apply_run`), and so ~0.1 s
    sooner; every command imports only what it uses.
    """
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(name)
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


if TYPE_CHECKING:
    from siteops import archive as site_archive
    from siteops import backups as site_backups
    from siteops import changes as site_changes
    from siteops import control, coordination
    from siteops import display as show
    from siteops import hostfacts as host_facts
    from siteops import hostlock as host_lock
    from siteops import operations as ops
    from siteops import revision as revisions
    from siteops import schema as site_schema
    from siteops import sites as new_sites
else:
    site_archive = _lazy("siteops.archive")
    site_backups = _lazy("siteops.backups")
    site_changes = _lazy("siteops.changes")
    control = _lazy("siteops.control")
    coordination = _lazy("siteops.coordination")
    site_schema = _lazy("siteops.schema")
    show = _lazy("siteops.display")
    host_facts = _lazy("siteops.hostfacts")
    host_lock = _lazy("siteops.hostlock")
    ops = _lazy("siteops.operations")
    revisions = _lazy("siteops.revision")
    new_sites = _lazy("siteops.sites")

DEFAULT_INVENTORY = Path("inventory/sandbox")
DEFAULT_HOST = "sandbox"
EXIT_BAD_INPUT = 2
EXIT_LOCKED = 75


class Context:
    """What every command needs: where the registry is, and how to reach the host."""

    def __init__(
        self, inventory: Path, host: str, lock_timeout: float, config: Path | None = None
    ) -> None:
        self.inventory = inventory
        self.host = host
        self.lock_timeout = lock_timeout
        self.config = config  # the project folder's ansible.cfg, if siteops runs in one
        self.sandbox_name = SANDBOX_CONTAINER

    @property
    def sites_file(self) -> Path:
        return self.target(project_needed=False).sites_file

    def target(self, *, project_needed: bool = True) -> Target:
        project = find_collection() if project_needed else Path()
        return Target(
            self.inventory, self.host, project, default_log_dir(), self.lock_timeout,
            self.config, tuple(sys.argv[1:]),
        )  # fmt: skip


def _fail(lines: list[str], code: int) -> NoReturn:
    for line in lines:
        click.echo(line, err=True)
    raise SystemExit(code)


@contextmanager
def _errors() -> Iterator[None]:
    """Print the library's errors as a person can act on them, with the right exit code."""
    try:
        yield
    except SiteModelError as exc:
        _fail([f"{exc.source}: refused, nothing was changed"]
              + [f"  - {p}" for p in exc.problems], EXIT_BAD_INPUT)  # fmt: skip
    except PortBlocksExhausted as exc:
        _fail([f"port_block: {exc}"], EXIT_BAD_INPUT)
    except RegistryLocked as exc:
        _fail([str(exc)], EXIT_LOCKED)
    except ops.RunFailed as exc:
        _report_failure(exc)
    except SiteopsError as exc:
        _fail([f"siteops: {exc}"], exc.code)
    except (
        ProjectNotFound,
        SandboxError,
        RemoteError,
        host_facts.FactsMissing,
        SourceError,
    ) as exc:
        _fail([f"siteops: {exc}"], 1)


def _report_failure(exc: ops.RunFailed) -> NoReturn:
    lines = [f"siteops: {exc}"]
    lines += [f"  {line}" for line in exc.result.failure_summary()]
    lines.append(exc.hint + (f" Full log: {exc.result.log_path}." if exc.result.log_path else ""))
    _fail(lines, exc.result.exit_code or 1)


@contextmanager
def _progress() -> Iterator[ProgressDisplay]:
    display = ProgressDisplay(sys.stderr)
    try:
        yield display
    finally:
        display.close()


def _recap(result: RunResult, dry_run: bool) -> str:
    changed = sum(result.stats.get("changed", {}).values())
    ok = sum(result.stats.get("ok", {}).values())
    mode = "dry run (check mode), nothing was changed: " if dry_run else ""
    would = "would change" if dry_run else "changed"
    log = f"; log {result.log_path}" if result.log_path else ""
    return f"{mode}{ok} ok, {changed} {would}{log}"


def _check_run(result: RunResult, what: str) -> None:
    """A dry run that failed is still a failure: report it like any other."""
    if result.exit_code != 0:
        _report_failure(ops.RunFailed(what, result, "Fix the cause shown above and try again."))


class _Siteops(click.Group):
    """The command group: Ctrl-C ends any command with exit 130, as it ends a playbook run.

    (Click's own answer is "Aborted!" and exit 1, which a script cannot tell
    from a failure. A prompt's Ctrl-C stays Click's: nothing was done.)
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            click.echo("\nsiteops: cancelled (Ctrl-C)", err=True)
            raise SystemExit(EXIT_CANCELLED) from None


@click.group(cls=_Siteops, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="siteops")
@click.option(
    "--inventory",
    "-i",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="SITEOPS_INVENTORY",
    help="Ansible inventory directory holding hosts.yml and host_vars/ [default: the one "
    "the ansible.cfg of the project folder siteops runs in names (siteops init), else "
    f"{DEFAULT_INVENTORY}].",
)
@click.option(
    "--host",
    default=DEFAULT_HOST,
    show_default=True,
    envvar="SITEOPS_HOST",
    help="Inventory host whose sites are managed (each host has its own registry).",
)
@click.option(
    "--lock-timeout",
    type=click.FloatRange(min=0),
    default=DEFAULT_LOCK_TIMEOUT,
    show_default=True,
    envvar="SITEOPS_LOCK_TIMEOUT",
    help="Seconds to wait for another siteops run on the same registry before giving up.",
)
@click.pass_context
def main(ctx: click.Context, inventory: Path | None, host: str, lock_timeout: float) -> None:
    """siteops: many isolated web sites on one Linux VPS.

    Run it in a project folder (siteops init): its ansible.cfg names the
    inventory, and the playbook runs use its settings.
    """
    project = find_project(Path.cwd())
    if inventory is None:
        inventory = project.inventory if project is not None else DEFAULT_INVENTORY
    ctx.obj = Context(inventory, host, lock_timeout, project.config if project else None)


@main.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--force", is_flag=True,
              help="Write into a folder that is not empty (an existing inventory/hosts.yml "
                   "is kept; the other project files are replaced).")  # fmt: skip
def init(folder: Path, force: bool) -> None:
    """Create a project folder (default: here) for your hosts and sites.

    It gets ansible.cfg, inventory/hosts.yml, a .gitignore that keeps keys
    and local state out of git, and a short README. Every siteops command run
    inside it then finds the inventory without --inventory.
    """
    with _errors():
        written = init_project(folder, force=force, collection=find_collection())
    for path in written:
        click.echo(f"wrote {path}")
    here = "" if folder.resolve() == Path.cwd().resolve() else f"cd {folder} && "
    click.echo(f"next: {here}siteops host add NAME --ssh USER@ADDRESS "
               "(or siteops sandbox up for a local test host)")  # fmt: skip


@main.group()
def host() -> None:
    """The hosts of the inventory: add one (checked over SSH first), list them, show one."""


@host.command("add")
@click.argument("name")
@click.option(
    "--ssh",
    "ssh",
    required=True,
    metavar="USER@ADDRESS",
    help="Who to log in as (root, or a user with passwordless sudo) and where.",
)
@click.option("--port", type=int, default=22, show_default=True, help="SSH port.")
@click.option(
    "--key",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Private key to log in with (default: your SSH agent and keys).",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Check the host and print its inventory entry; write nothing, run nothing.",
)
@click.pass_obj
def host_add(obj: Context, name: str, ssh: str, port: int, key: Path | None,
             dry_run: bool) -> None:  # fmt: skip
    """Check host NAME over SSH, add it to the inventory and apply the host baseline.

    The checks come first and change nothing: the SSH login works, the user
    is root or has passwordless sudo, the host runs Debian 12 or 13 with
    systemd and Python 3. Its SSH host key is accepted on this first contact
    and kept in <inventory>/known_hosts.
    """
    obj.host = name
    with _errors():
        login = host_checks.parse_login(ssh, port, key)
        target = obj.target()
    with _errors(), _progress() as progress:
        added = ops.add_host(target, login, dry_run=dry_run, on_progress=progress)
    release = added.facts.get("os_name", "?")
    if dry_run:
        click.echo(f"{name}: {release}, can be managed; would add to {target.hosts_file}:")
        click.echo(yaml.safe_dump({name: added.entry}, sort_keys=False).rstrip())
        return
    assert added.result is not None
    click.echo(f"{name}: {release}, added to {target.hosts_file}; baseline "
               + _recap(added.result, dry_run=False))  # fmt: skip
    click.echo(f"next: siteops --host {name} add-site SITE --domain DOMAIN")


@host.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def host_list(obj: Context, as_json: bool) -> None:
    """The inventory's hosts: login, sites and free port blocks (from the files only)."""
    with _errors():
        rows = ops.host_summaries(obj.inventory)
    if as_json:
        _echo_json({"hosts": rows})
        return
    click.echo(show.table(
        ["HOST", "SSH", "SITES", "FREE BLOCKS"],
        [[r["host"] + (" (sandbox)" if r["sandbox"] else ""), r["ssh"], str(len(r["sites"])),
          str(r["free_blocks"])] for r in rows],
    ))  # fmt: skip


@host.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def host_show(obj: Context, name: str, as_json: bool) -> None:
    """One host: Debian release, CPUs, memory, disk (asked over SSH), sites, free blocks."""
    obj.host = name
    with _errors():
        view = ops.show_host(obj.target(project_needed=False))
    if as_json:
        _echo_json(view)
        return
    for key in ("host", "ssh", "release", "cpus", "memory_gib", "disk_gib", "disk_free_gib",
                "free_blocks"):  # fmt: skip
        click.echo(f"{key + ':':15} {view[key]}")
    click.echo(f"{'sites:':15} {', '.join(view['sites']) or '(none)'}")


@main.command()
@click.pass_obj
def validate(obj: Context) -> None:
    """Check the host's sites.yml against the site model."""
    try:
        sites = load_host_sites(obj.sites_file)
    except SiteModelError as exc:
        click.echo(f"{exc.source}: invalid site model", err=True)
        for problem in exc.problems:
            click.echo(f"  - {problem}", err=True)
        raise SystemExit(EXIT_BAD_INPUT) from None
    click.echo(f"{obj.sites_file}: {len(sites.sites)} site(s), valid")


@main.command()
def schema() -> None:
    """Print the JSON Schema of sites.yml."""
    click.echo(site_schema.render(), nl=False)


@main.command("add-site")
@click.argument("name")
@click.option(
    "--domain",
    "domains",
    multiple=True,
    required=True,
    help="A domain of the site; the first is the primary one. Repeatable.",
)
@click.option("--api", is_flag=True, help="Add an api component (nginx routes /api/ to it).")
@click.option("--no-db", is_flag=True, help="No PostgreSQL database and role.")
@click.option("--cache", is_flag=True, help="A Redis user limited to the site's key prefix.")
@click.option(
    "--runtime",
    type=click.Choice([r.value for r in Runtime]),
    default="node",
    show_default=True,
    help="How the frontend runs (static: nginx serves files).",
)
@click.option("--command", help="Start command of the frontend, run in current/ with PORT set "
                                "(default per runtime, e.g. 'node server.js').")  # fmt: skip
@click.option("--memory", help="MemoryMax of the site as a whole, e.g. 512M.")
@click.option("--cpu", help="CPUQuota of the site as a whole, e.g. 50%.")
@click.option("--tls-email", help="Turn TLS on: the contact address given to the CA.")
@click.option("--ca-directory", help="ACME directory URL (default: Let's Encrypt production).")
@click.option("--description", default="", help="Free text for the registry.")
@click.option("--dry-run", is_flag=True, help="Check mode with diff: change nothing anywhere.")
@click.pass_obj
def add_site_command(obj: Context, name: str, domains: tuple[str, ...], api: bool, no_db: bool,
                     cache: bool, runtime: str, command: str | None, memory: str | None,
                     cpu: str | None, tls_email: str | None, ca_directory: str | None,
                     description: str, dry_run: bool) -> None:  # fmt: skip
    """Add site NAME to the registry and set it up on the host."""
    answers = new_sites.SiteAnswers(
        domains=list(domains), block=0, runtime=runtime, api=api, database=not no_db,
        cache=cache, memory=memory, cpu=cpu, tls_email=tls_email, ca_directory=ca_directory,
        description=description, command=command,
    )  # fmt: skip
    with _errors(), _progress() as progress:
        added = ops.add(obj.target(), name, answers, dry_run=dry_run, on_progress=progress)
    if dry_run:
        _check_run(added.result, f"the dry run of add-site {name} failed")
        click.echo(f"{name}: would get port block {added.site.port_block}; "
                   + _recap(added.result, dry_run=True))  # fmt: skip
        return
    click.echo(f"{name}: added on {obj.host}, port block {added.site.port_block} "
               f"(frontend {added.site.components['frontend'].port or 'static'}); "
               + _recap(added.result, dry_run=False))  # fmt: skip


@main.command("set")
@click.argument("name")
@click.option("--add-domain", "add_domains", multiple=True, help="Serve this name too. Repeatable.")
@click.option("--remove-domain", "remove_domains", multiple=True,
              help="Stop serving this name (not the primary). Repeatable.")  # fmt: skip
@click.option("--primary", help="Make this domain of the site its primary one.")
@click.option("--memory", help="MemoryMax of the site as a whole, e.g. 1G.")
@click.option("--cpu", help="CPUQuota of the site as a whole, e.g. 150%.")
@click.option("--tasks", type=int, help="TasksMax of the site as a whole.")
@click.option("--tls/--no-tls", default=None, help="Serve HTTPS with a certificate, or not.")
@click.option("--tls-email", help="The CA's contact address (turns TLS on unless --no-tls).")
@click.option("--ca-directory", help="ACME directory URL of the CA.")
@click.option("--add-component", "component", metavar="NAME",
              help="A new component: it gets the next free port of its range (api: "
                   "the API range, others the extra); give --runtime, --command.")  # fmt: skip
@click.option("--runtime", type=click.Choice([r.value for r in Runtime if r != Runtime.STATIC]),
              help="Runtime of the added component.")  # fmt: skip
@click.option("--command", help="Start command of the added component, run in current/ with "
                                "PORT set.")  # fmt: skip
@click.option("--remove-component", "remove_components", multiple=True, metavar="NAME",
              help="Stop and delete this component's unit. Repeatable.")  # fmt: skip
@click.option("--add-job", "job", metavar="NAME",
              help="A scheduled job (a systemd timer) running --command as the site at "
                   "--schedule.")  # fmt: skip
@click.option("--schedule", metavar="CALENDAR",
              help="When the added job runs (OnCalendar: hourly, *-*-* 03:00:00).")  # fmt: skip
@click.option("--remove-job", "remove_jobs", multiple=True, metavar="NAME",
              help="Stop and delete this job's timer and service. Repeatable.")  # fmt: skip
@click.option("--cache/--no-cache", default=None, help="A Redis user for the site, or none.")
@click.option("--database/--no-database", default=None,
              help="A PostgreSQL database for the site, or none (--drop-database).")  # fmt: skip
@click.option(
    "--drop-database",
    is_flag=True,
    help="With --no-database: back the database up, then drop it and its role.",
)
@click.option("--description", help="Free text for the registry.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing anywhere.")
@click.pass_obj
def set_command(obj: Context, name: str, add_domains: tuple[str, ...],
                remove_domains: tuple[str, ...], primary: str | None, memory: str | None,
                cpu: str | None, tasks: int | None, tls: bool | None, tls_email: str | None,
                ca_directory: str | None, component: str | None, runtime: str | None,
                command: str | None, remove_components: tuple[str, ...], job: str | None,
                schedule: str | None, remove_jobs: tuple[str, ...], cache: bool | None,
                database: bool | None, drop_database: bool, description: str | None,
                yes: bool, dry_run: bool) -> None:  # fmt: skip
    """Change site NAME, checked as add-site is; then converge that site alone."""
    with _errors():
        if component and job:
            raise SiteModelError("set", ["--add-component and --add-job: one per command"])
        if runtime and not component:
            raise SiteModelError("set", ["--runtime goes with --add-component NAME"])
        if command and not (component or job):
            raise SiteModelError("set", ["--command goes with --add-component or --add-job"])
        if schedule and not job:
            raise SiteModelError("set", ["--schedule goes with --add-job NAME"])
        if component and not runtime:
            raise SiteModelError("set", [f"components.{component}.runtime: give --runtime"])
        if job and not (schedule and command):
            raise SiteModelError("set", [f"jobs.{job}: give --schedule and --command"])
        added = (site_changes.NewComponent(component, runtime or "", command),) if component else ()
        jobs = (site_changes.NewJob(job, schedule or "", command or ""),) if job else ()
    changes = site_changes.SiteChanges(
        add_domains=add_domains, remove_domains=remove_domains, primary=primary,
        memory=memory, cpu=cpu, tasks=tasks, tls=tls, tls_email=tls_email,
        ca_directory=ca_directory, add_components=added, remove_components=remove_components,
        add_jobs=jobs, remove_jobs=remove_jobs,
        cache=cache, database=database, drop_database=drop_database, description=description,
    )  # fmt: skip
    if drop_database and database is False and not (dry_run or yes):
        click.confirm(f"Drop the database of {name!r}? A backup of it is taken first and kept",
                      abort=True)  # fmt: skip
    _change(obj, name, changes, dry_run=dry_run)


def _change(obj: Context, name: str, changes: site_changes.SiteChanges, *, dry_run: bool = False,
            purpose: str | None = None, unchanged: str = "") -> None:  # fmt: skip
    """Run a record change (set, stop, start, maintenance) and print what it did."""
    with _errors(), _progress() as progress:
        done = ops.change(obj.target(), name, changes, dry_run=dry_run, on_progress=progress,
                          purpose=purpose)  # fmt: skip
    if not done.changes:
        click.echo(f"{name}: {unchanged or 'nothing to change (the record already says so)'}")
        return
    for line in done.changes:
        click.echo(f"  {line}")
    assert done.result is not None
    if dry_run:
        _check_run(done.result, f"the dry run of set {name} failed")
        click.echo(f"{name}: would change; " + _recap(done.result, dry_run=True))
        return
    click.echo(f"{name}: changed on {obj.host}; " + _recap(done.result, dry_run=False))
    if done.units:
        click.echo(control.serving_text(done.units))
    _exit_unless_serving(done.units)


def _exit_unless_serving(units: Mapping[str, Any]) -> None:
    """Exit 1 when a unit is not active or nothing answers on its port."""
    if any(u.get("state") != "active" or u.get("listening") is False for u in units.values()):
        raise SystemExit(1)


@main.command("stop")
@click.argument("name")
@click.option("--component", "-c", help="Only this component's unit (nginx keeps routing).")
@click.pass_obj
def stop_command(obj: Context, name: str, component: str | None) -> None:
    """Stop a site (its units, and nginx answers 503) or one component, until `start`.

    A stopped site stays stopped across reboots and runs of apply.
    """
    changes = (
        site_changes.SiteChanges(stop_components=(component,))
        if component
        else site_changes.SiteChanges(stopped=True)
    )
    purpose = f"stop {name}" + (f" -c {component}" if component else "")
    _change(obj, name, changes, purpose=purpose, unchanged="already stopped")


@main.command("start")
@click.argument("name")
@click.option("--component", "-c", help="Only this component's unit.")
@click.pass_obj
def start_command(obj: Context, name: str, component: str | None) -> None:
    """Start a stopped site (every component) or one component; exit 1 unless each answers."""
    changes = (site_changes.SiteChanges(start_components=(component,)) if component
               else site_changes.SiteChanges(stopped=False))  # fmt: skip
    purpose = f"start {name}" + (f" -c {component}" if component else "")
    _change(obj, name, changes, purpose=purpose, unchanged="not stopped: nothing to start")


@main.command("maintenance")
@click.argument("name")
@click.argument("state", type=click.Choice(["on", "off"]))
@click.option("--message", help="One line shown on the page (with on).")
@click.pass_obj
def maintenance_command(obj: Context, name: str, state: str, message: str | None) -> None:
    """Answer a site with a 503 maintenance page (on) or serve it again (off).

    Its units keep running; ACME challenges are still answered.
    """
    if message is not None and state == "off":
        with _errors():
            raise SiteModelError("maintenance", ["--message goes with on"])
    changes = site_changes.SiteChanges(maintenance=state == "on", maintenance_message=message)
    _change(obj, name, changes, purpose=f"maintenance {name} {state}",
            unchanged=f"maintenance is already {state}")  # fmt: skip


@main.command("remove-site")
@click.argument("name")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--dry-run", is_flag=True, help="Check mode with diff: change nothing anywhere.")
@click.pass_obj
def remove_site_command(obj: Context, name: str, yes: bool, dry_run: bool) -> None:
    """Remove site NAME after a final backup (database dump and shared/ tarball, kept)."""
    if not (yes or dry_run):
        click.confirm(
            f"Remove site {name!r} from {obj.host}? A final backup is taken first and kept; "
            "its units, nginx config, certificate, database, user and files are removed",
            abort=True,
        )
    with _errors(), _progress() as progress:
        removed = ops.remove(obj.target(), name, dry_run=dry_run, on_progress=progress)
    if dry_run:
        _check_run(removed.result, f"the dry run of remove-site {name} failed")
        click.echo(f"{name}: " + _recap(removed.result, dry_run=True))
        return
    click.echo(f"{name}: removed from {obj.host} and archived; final backup {removed.backup}")


@main.command()
@click.argument("names", nargs=-1)
@click.option("--dry-run", is_flag=True, help="Check mode with diff: change nothing anywhere.")
@click.pass_obj
def apply(obj: Context, names: tuple[str, ...], dry_run: bool) -> None:
    """Converge the registry onto the host: the named sites, or the baseline and every site."""
    with _errors(), _progress() as progress:
        target = obj.target()
        # The run starts first: siteops.operations is imported while ansible-playbook starts.
        with target.apply_run(list(names), dry_run=dry_run, on_progress=progress) as run:
            applied = ops.apply(target, list(names), dry_run=dry_run, on_progress=progress,
                                run=run)  # fmt: skip
    if dry_run:
        _check_run(applied.result, "the dry run failed")
    what = ", ".join(applied.names) or "no sites"
    click.echo(f"{what}: " + _recap(applied.result, dry_run=dry_run))


def _load(obj: Context) -> Any:
    with _errors():
        return load_host_sites(obj.sites_file)


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True))


@main.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--all-hosts", is_flag=True,
              help="The sites of every host hosts.yml lists, with a HOST column (--host is "
                   "ignored); JSON: {hosts: {HOST: {sites, archived}}}.")  # fmt: skip
@click.pass_obj
def list_command(obj: Context, as_json: bool, all_hosts: bool) -> None:
    """List the host's sites (and, with --json, the archived ones), or every host's."""
    if all_hosts:
        with _errors():
            hosts = load_inventory_sites(obj.inventory)
        if as_json:
            _echo_json({"hosts": {host: show.sites_view(sites) for host, sites in hosts.items()}})
        else:
            click.echo(show.hosts_table(hosts))
        return
    sites = _load(obj)
    if as_json:
        _echo_json({"host": obj.host, **show.sites_view(sites)})
        return
    click.echo(show.sites_table(sites))
    if sites.archived:
        click.echo(f"\narchived: {', '.join(sites.archived)}")


@main.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def show_command(obj: Context, name: str, as_json: bool) -> None:
    """Show one site: domains, ports, components, limits, paths."""
    sites = _load(obj)
    if name not in sites.sites:
        _fail([f"site: {name!r} is not in the registry of {obj.host}"], EXIT_BAD_INPUT)
    view = show.site_view(name, sites.sites[name])
    click.echo(json.dumps(view, indent=2, sort_keys=True) if as_json else show.show_text(view))


@main.command()
@click.argument("names", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def status(obj: Context, names: tuple[str, ...], as_json: bool) -> None:
    """Live state of the sites: units, listeners, HTTP through nginx, certificate, disk, backup."""
    with _errors(), _progress() as progress:
        sites, facts = ops.status(obj.target(), list(names), on_progress=progress)
    if as_json:
        _echo_json({"host": obj.host, "listening": sorted(facts.listening),
                    "sites": show.status_view(sites, facts)})  # fmt: skip
    else:
        click.echo(show.status_text(sites, facts))


@main.command("doctor")
@click.argument("names", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def doctor_command(obj: Context, names: tuple[str, ...], as_json: bool) -> None:
    """Hold the registry against the host; exit 1 when something is wrong.

    Per site: user, tree and .env modes, units, slice limits, nginx config,
    port rule, database, Redis user, certificate, backups. Without SITE also
    the host: what belongs to no site, listeners in free blocks, disks, failed
    units. Each finding says why it matters and what fixes it.
    """
    with _errors(), _progress() as progress:
        found = ops.doctor(obj.target(), list(names), on_progress=progress)
    if as_json:
        _echo_json({"host": obj.host, "findings": [f.as_dict() for f in found]})
    else:
        click.echo(show.doctor_text(obj.host, found))
    if found:
        raise SystemExit(1)


def _access_key(command: Any) -> Any:
    """The --access-key option of the commands a site's access key may run."""
    return click.option(
        "--access-key", type=click.Path(dir_okay=False, path_type=Path),
        envvar="SITEOPS_ACCESS_KEY",
        help="Act with this site's access key (siteops access grant) instead of the "
             "inventory's login; or set siteops_access_key in the host's variables.",
    )(command)  # fmt: skip


def _key_login(obj: Context, option: Path | None) -> keyaccess.KeyLogin | None:
    """The access-key login of this command, if it is to use one."""
    target = obj.target(project_needed=False)
    if option is None and not target.hosts_file.is_file():
        return None
    with _errors():
        target.check_inventory()
        variables = target.variables()
        key = keyaccess.access_key(option, variables)
    return keyaccess.KeyLogin(variables, obj.host, key) if key else None


def _key_released(name: str, done: keyaccess.KeyRelease) -> None:
    """Print what a deploy or rollback with a key said; its exit code is the host's.

    The host's messages (a refusal, a failed build or health check) were
    printed on stderr as they came.
    """
    if done.code != 0:
        for line in done.lines:
            click.echo(f"  {line}")
        _fail([f"siteops: {name}: the host refused or failed the request (exit {done.code}); "
               "its message is above"], done.code)  # fmt: skip
    for line in done.lines[:-1]:
        click.echo(f"  {line}")
    click.echo(f"{name}: {done.lines[-1] if done.lines else 'done'}")


def _echo_revived(done: site_archive.Revived) -> None:
    """The domains a restored or moved site left out, and its units' states."""
    if done.dropped:
        click.echo(f"  left out, served by another site now: {', '.join(done.dropped)}")
    if done.units:
        click.echo(control.serving_text(done.units))


@main.command("restore-site")
@click.argument("name")
@click.pass_obj
def restore_site_command(obj: Context, name: str) -> None:
    """Bring removed site NAME back from its final backup.

    It gets a free port block, those of its domains no other site serves now,
    its database, shared/ (.env, uploads) and the release it ran; then it must
    answer through nginx (exit 1 otherwise). A failed run leaves it archived:
    run the command again.
    """
    with _errors(), _progress() as progress:
        done = site_archive.revive(obj.target(), name, progress)
    _echo_revived(done)
    click.echo(f"{name}: restored on {obj.host} from {done.backup}, port block {done.block}, "
               f"release {done.release or 'none'}; nginx answers {done.code} for "
               f"{done.domains[0]}")  # fmt: skip
    if not 200 <= done.code < 400:
        raise SystemExit(1)
    _exit_unless_serving(done.units)


@main.command("move-site")
@click.argument("name")
@click.option("--to", "to_host", required=True, help="The inventory host to move NAME to.")
@click.pass_obj
def move_site_command(obj: Context, name: str, to_host: str) -> None:
    """Move site NAME to another host of the inventory.

    A backup of its database, shared/ and release is taken here and restored
    on --to (a free port block there, the same domains); once it answers
    there through nginx it is removed here as remove-site does (its final
    backup stays here). Until then a failure leaves it serving from here.
    Then point its domains at the new host (printed).
    """
    with _errors(), _progress() as progress:
        done = site_archive.move(obj.target(), to_host, name, progress)
    revived = done.revived
    _echo_revived(revived)
    click.echo(f"{name}: moved from {done.source} to {done.to} (port block {revived.block}, "
               f"release {revived.release or 'none'}; nginx there answers {revived.code}); "
               f"its final backup stays on {done.source} at {done.final_backup}")  # fmt: skip
    click.echo(f"DNS: point {', '.join(revived.domains)} at {done.address} ({done.to})")


@main.command("forget-site")
@click.argument("name")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def forget_site_command(obj: Context, name: str, yes: bool) -> None:
    """Delete the archived record of removed site NAME, so that the name can be used again.

    Its backups stay on the host (the final one is never pruned).
    """
    if not yes:
        click.confirm(f"Forget archived site {name!r}? Its record goes; its backups stay on the "
                      "host", abort=True)  # fmt: skip
    with _errors(), _progress() as progress:
        gone = ops.forget(obj.target(project_needed=False), name, progress)
    click.echo(f"{name}: forgotten; its final backup stays at {gone.backup} on {obj.host}")


@main.command()
@click.argument("name")
@click.option("--component", "-c", help="Only this component's logs (default: all).")
@click.option("--lines", "-n", type=click.IntRange(min=0), default=50, show_default=True)
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines (Ctrl-C stops).")
@_access_key
@click.pass_obj
def logs(obj: Context, name: str, component: str | None, lines: int, follow: bool,
         access_key: Path | None) -> None:  # fmt: skip
    """Print a site's component logs from the host (shared/logs/)."""
    login = _key_login(obj, access_key)
    if login is not None:
        argv = keyaccess.logs_argv(login, name, component, lines, follow)
        try:
            raise SystemExit(subprocess.call(argv))
        except KeyboardInterrupt:
            raise SystemExit(0) from None
    sites = _load(obj)
    if name not in sites.sites:
        _fail([f"site: {name!r} is not in the registry of {obj.host}"], EXIT_BAD_INPUT)
    if component is not None and component not in sites.sites[name].components:
        _fail([f"component: {name!r} has no component {component!r}"], EXIT_BAD_INPUT)
    target = obj.target(project_needed=False)
    with _errors():
        argv = ssh_argv(host_vars(target.hosts_file, obj.host), obj.host,
                        log_command(name, component, lines, follow))  # fmt: skip
    try:
        code = subprocess.call(argv)
    except KeyboardInterrupt:
        code = 0
    raise SystemExit(code)


def _health(command: Any) -> Any:
    """The health-check options of deploy and rollback."""
    command = click.option(
        "--health-timeout", type=click.IntRange(1, 600), default=30, show_default=True,
        help="Seconds the release may take to answer.",
    )(command)  # fmt: skip
    return click.option(
        "--health-path", default="/", show_default=True, help="Path that must answer."
    )(command)


@main.command()
@click.argument("name")
@click.option("--source", required=True, help="A directory, or a git URL (cloned here).")
@click.option("--ref", help="Branch, tag or commit of a git source.")
@_health
@_access_key
@click.pass_obj
def deploy(obj: Context, name: str, source: str, ref: str | None, health_path: str,
           health_timeout: int, access_key: Path | None) -> None:  # fmt: skip
    """Deploy a new release of NAME; a release that fails its health check is switched back."""
    login = _key_login(obj, access_key)
    if login is not None:
        with _errors():
            keyed = keyaccess.deploy(login, name, source, ref, (health_path, health_timeout))
        _key_released(name, keyed)
        return
    with _errors(), _progress() as progress:
        done = ops.deploy(obj.target(), name, source, ref, health=(health_path, health_timeout),
                          on_progress=progress)  # fmt: skip
    for line in done.steps:
        click.echo(f"  {line}")
    click.echo(f"{name}: {done.message or 'deployed ' + str(done.release_id)}")


@main.command()
@click.argument("name")
@click.option("--to", "to", help="The release to go back to (default: the previous good one).")
@click.option("--with-database", is_flag=True,
              help="Also restore the database snapshot taken before the current release "
                   "(after a backup of the current state).")  # fmt: skip
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@_health
@_access_key
@click.pass_obj
def rollback(obj: Context, name: str, to: str | None, with_database: bool, yes: bool,
             health_path: str, health_timeout: int, access_key: Path | None) -> None:  # fmt: skip
    """Switch NAME back to its previous good release; the current one is marked bad."""
    if with_database and not yes:
        click.confirm(f"Replace the database of {name!r} with its snapshot from before the "
                      "current release? A backup of it is taken first", abort=True)  # fmt: skip
    login = _key_login(obj, access_key)
    if login is not None:
        with _errors():
            keyed = keyaccess.rollback(login, name, to, with_database,
                                       (health_path, health_timeout))  # fmt: skip
        _key_released(name, keyed)
        return
    with _errors(), _progress() as progress:
        done = ops.rollback(obj.target(), name, to, health=(health_path, health_timeout),
                            on_progress=progress, with_database=with_database)  # fmt: skip
    for line in done.steps:
        click.echo(f"  {line}")
    click.echo(f"{name}: {done.message}")


@main.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_access_key
@click.pass_obj
def releases(obj: Context, name: str, as_json: bool, access_key: Path | None) -> None:
    """The releases of NAME: which one is current, and each deploy's outcome."""
    login = _key_login(obj, access_key)
    with _errors(), _progress() as progress:
        if login is not None:
            data = keyaccess.releases(login, name)
        else:
            data = ops.releases(obj.target(), name, on_progress=progress)
    if as_json:
        _echo_json(data)
        return
    rows = [
        [("* " if r.get("id") == data["current"] else "  ") + str(r.get("id")), str(r.get("at")),
         str(r.get("result")), str(r.get("ref") or ""), str(r.get("message") or "")]
        for r in data["log"]
    ]  # fmt: skip
    click.echo(f"current: {data['current']}")
    click.echo("serving: " + show.serving_text(data["current"], data["serving_ports"],
                                               data["main_ports"]))  # fmt: skip
    if rows:
        click.echo(show.table(["RELEASE", "AT", "RESULT", "REF", "MESSAGE"], rows))


@main.group(invoke_without_command=True)
@click.option("--refresh", is_flag=True, help="Gather live facts from the host first.")
@click.pass_context
def registry(ctx: click.Context, refresh: bool) -> None:
    """Regenerate the markdown registry (<inventory>/registry/<host>.md); `pull` (see below)."""
    if ctx.invoked_subcommand is not None:
        return
    obj: Context = ctx.obj
    with _errors(), _progress() as progress:
        path = ops.registry_markdown(obj.target(), refresh=refresh, on_progress=progress)
    click.echo(f"wrote {path}")


@registry.command("pull")
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
@click.pass_obj
def registry_pull(obj: Context, dry_run: bool) -> None:
    """Take the host's copy of its sites file into this inventory, showing what changes.

    Every changing run records on the host the sites file it converged; a run
    from an older or diverged copy is refused until this command has taken the
    host's copy.
    """
    with _errors():
        pulled = coordination.registry_pull(obj.target(), dry_run=dry_run)
    where = f"host {obj.host} is at {pulled.record.describe()}"
    if pulled.standing == revisions.Standing.CURRENT:
        click.echo(f"{where}; this inventory already has that file: nothing to pull")
        return
    for line in pulled.changes or ["no site record differs (only the file's text)"]:
        click.echo(f"  {line}")
    verb = "wrote" if pulled.written else "would write (dry run, nothing written)"
    click.echo(f"{where}; {verb} {obj.sites_file}")


class _ShowByDefault(click.Group):
    """A group whose first argument, when it names no subcommand, goes to ``show``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["show", *args]
        return super().parse_args(ctx, args)


@main.group(cls=_ShowByDefault)
def env() -> None:
    """A site's environment (.env): `env SITE`, `env set SITE K=V…`, `env unset SITE K…`."""


@env.command("show")
@click.argument("name")
@click.option("--reveal", is_flag=True, help="Print the values (masked otherwise).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def env_show(obj: Context, name: str, reveal: bool, as_json: bool) -> None:
    """List a site's variables: the roles' (managed) and the operator's, values masked."""
    with _errors():
        entries = control.env_entries(obj.target(project_needed=False), name, reveal=reveal)
    if as_json:
        _echo_json({"site": name, "variables": entries})
        return
    rows = [[e["key"], e["value"], "managed" if e["managed"] else "yours"] for e in entries]
    click.echo(show.table(["KEY", "VALUE", "SET BY"], rows))


@env.command("set")
@click.argument("name")
@click.argument("assignments", nargs=-1, required=True)
@click.pass_obj
def env_set(obj: Context, name: str, assignments: tuple[str, ...]) -> None:
    """Set variables below the managed block (KEY=VALUE…), then restart the site's units."""
    with _errors(), _progress() as progress:
        assign = control.parse_assignments(assignments)
        done = control.change_env(obj.target(), name, assign, [], progress)
    _env_done(name, done)


@env.command("unset")
@click.argument("name")
@click.argument("keys", nargs=-1, required=True)
@click.pass_obj
def env_unset(obj: Context, name: str, keys: tuple[str, ...]) -> None:
    """Remove variables you set (KEY…), then restart the site's units."""
    with _errors(), _progress() as progress:
        done = control.change_env(obj.target(), name, {}, list(keys), progress)
    _env_done(name, done)


def _env_done(name: str, done: control.Changed) -> None:
    if not done.changed:
        click.echo(f"{name}: nothing changed")
        return
    _changed(name, f"changed {', '.join(done.changed)}", done)


def _changed(name: str, what: str, done: control.Changed) -> None:
    converged = _recap(done.result, dry_run=False) if done.result else "not converged"
    click.echo(f"{name}: {what}; converged ({converged}); {control.serving_text(done.units)}")
    _exit_unless_serving(done.units)


@main.command("restart")
@click.argument("name")
@click.option("--component", "-c", help="Only this component's unit.")
@click.pass_obj
def restart_command(obj: Context, name: str, component: str | None) -> None:
    """Restart a site's units (or one component's); exit 1 unless each then answers."""
    with _errors(), _progress() as progress:
        units = control.restart(obj.target(project_needed=False), name, component, progress)
    click.echo(control.serving_text(units))
    _exit_unless_serving(units)


@main.group()
def db() -> None:
    """A site's PostgreSQL database and role."""


@db.command("rotate-password")
@click.argument("name")
@click.pass_obj
def db_rotate_password(obj: Context, name: str) -> None:
    """A new password for the site's role and in its .env; the old one stops working."""
    with _errors(), _progress() as progress:
        done = control.rotate_db_password(obj.target(), name, progress)
    _changed(name, "new database password set and in .env", done)


@main.group()
def lock() -> None:
    """The host's lock, held by every changing command for its whole run."""


def _holder_line(host: str, state: dict[str, Any]) -> str:
    if state.get("held"):
        return f"host {host}: locked by {host_lock.holder_text(state.get('holder'))}"
    left = state.get("left")
    if left:
        return (f"host {host}: free; {host_lock.holder_text(left)} ended without releasing it "
                "(the next run takes it over)")  # fmt: skip
    return f"host {host}: free"


@lock.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def lock_status(obj: Context, as_json: bool) -> None:
    """Who holds the host's lock (operator, machine, command, pid, since)."""
    with _errors():
        state = coordination.lock_state(obj.target(project_needed=False))
    state.pop("event", None)
    if as_json:
        _echo_json({"host": obj.host, **state})
    else:
        click.echo(_holder_line(obj.host, state))


@lock.command("release")
@click.option("--force", is_flag=True, help="Also a lock whose holder runs: its hold is stopped.")
@click.pass_obj
def lock_release(obj: Context, force: bool) -> None:
    """Release the host's lock; refused while its holder runs, unless --force."""
    with _errors():
        done = coordination.release_lock(obj.target(project_needed=False), force=force)
    holder = done.get("holder")
    if done.get("held"):
        click.echo(f"host {obj.host}: released the lock of {host_lock.holder_text(holder)}")
    elif holder:
        click.echo(
            f"host {obj.host}: the lock was free; cleared what {host_lock.holder_text(holder)} left"
        )
    else:
        click.echo(f"host {obj.host}: the lock was free")


def _size(size: float) -> str:
    """Bytes as people read them: 512 B, 3.4 MiB."""
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


@main.command("backup")
@click.argument("name")
@click.pass_obj
def backup_command(obj: Context, name: str) -> None:
    """Back NAME up now (its database, shared/uploads and .env), as the daily backup does."""
    with _errors(), _progress() as progress:
        last = site_backups.backup(obj.target(project_needed=False), name, progress)
    click.echo(f"{name}: backup {last.get('backup')} taken ({last.get('message')})")


@main.command("backups")
@click.argument("name")
@click.option(
    "--offsite",
    is_flag=True,
    help="The copies in the host's offsite repository instead of the local backups.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def backups_command(obj: Context, name: str, offsite: bool, as_json: bool) -> None:
    """The backups of NAME on its host, newest first: size, what each holds, restore test."""
    if offsite:
        with _errors():
            snapshots = site_backups.offsite_backups(obj.target(project_needed=False), name)
        if as_json:
            _echo_json({"site": name, "offsite": snapshots})
        elif snapshots:
            click.echo(show.table(["SNAPSHOT", "TIME", "BACKUP", "KIND"],
                                  [[s["snapshot"], str(s["time"])[:19], s["backup"], s["kind"]]
                                   for s in snapshots]))  # fmt: skip
        else:
            click.echo(f"{name}: no offsite copies yet")
        return
    with _errors():
        data = site_backups.backups(obj.target(project_needed=False), name)
    if as_json:
        _echo_json({"site": name, **data})
        return
    rows = [[b["id"], b["kind"], _size(int(b["size"])), " + ".join(b["holds"]),
             "passed" if b["restore_tested"] else ""] for b in data.get("backups", [])]  # fmt: skip
    if rows:
        click.echo(show.table(["BACKUP", "KIND", "SIZE", "HOLDS", "RESTORE TEST"], rows))
    else:
        click.echo(f"{name}: no backups yet")
    for label, key in (("last backup", "last"), ("last restore test", "restore_test")):
        status = data.get(key) or {}
        if status:
            click.echo(f"{label}: {status.get('result')} at {status.get('at')} "
                       f"({status.get('backup')}: {status.get('message')})")  # fmt: skip


@main.command("restore")
@click.argument("name")
@click.option("--backup", "backup_id", help="The backup to restore (default: the newest).")
@click.option(
    "--from-offsite",
    is_flag=True,
    help="From the host's offsite repository (works without local backups).",
)
@click.option(
    "--snapshot", help="With --from-offsite: the snapshot to restore (default: the newest)."
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def restore_command(obj: Context, name: str, backup_id: str | None, from_offsite: bool,
                    snapshot: str | None, yes: bool) -> None:  # fmt: skip
    """Restore NAME's database and shared/uploads from a backup.

    A backup of the current state is taken first; afterwards the site's units
    restart and the site must answer through nginx (exit 1 otherwise).
    """
    if snapshot and not from_offsite:
        raise click.UsageError("--snapshot names an offsite snapshot: add --from-offsite")
    if from_offsite and backup_id:
        raise click.UsageError("--backup names a local backup; with --from-offsite use --snapshot")
    wanted = (f"offsite snapshot {snapshot or '(the newest)'}" if from_offsite
              else f"backup {backup_id or '(the newest)'}")  # fmt: skip
    if not yes:
        click.confirm(f"Replace the database and uploads of {name!r} with {wanted}? A backup "
                      "of the current state is taken first", abort=True)  # fmt: skip
    with _errors(), _progress() as progress:
        done = site_backups.restore(obj.target(project_needed=False), name,
                                    snapshot if from_offsite else backup_id, progress,
                                    from_offsite=from_offsite)  # fmt: skip
    click.echo(f"  backup of the state before: {done.safety}")
    if done.units:
        click.echo(control.serving_text(done.units))
    click.echo(f"{name}: restored from {done.backup}; nginx answers {done.code}")
    if not 200 <= done.code < 400:
        raise SystemExit(1)
    _exit_unless_serving(done.units)


@main.command("offsite-key")
@click.pass_obj
def offsite_key_command(obj: Context) -> None:
    """The host's public key for its offsite repository.

    Authorize it for site_backup_offsite_user on site_backup_offsite_host
    (its ~/.ssh/authorized_keys) once; the host made it when offsite copies
    were turned on, and only the host has its private half.
    """
    with _errors():
        click.echo(site_backups.offsite_key(obj.target(project_needed=False)))


@main.group("access")
def access_group() -> None:
    """Deploy access per site: SSH keys that may deploy, roll back and read one site only.

    A granted key logs in as siteops-access@<host>, where sshd forces the
    site's access command (no shell, no terminal, no forwarding) and sudo lets
    it run as root for that site alone: deploy, rollback, releases, status and
    logs. `siteops deploy|rollback|releases|logs SITE --access-key KEY` acts
    with it (no operator key, no sites file needed).
    """


@access_group.command("grant")
@click.argument("name")
@click.option("--name", "grant", required=True,
              help="Who holds the key: 1-32 of a-z, digits and hyphens.")  # fmt: skip
@click.option("--key", required=True, help="The public key: a .pub file, or its line.")
@click.pass_obj
def access_grant(obj: Context, name: str, grant: str, key: str) -> None:
    """Let a key deploy NAME, roll it back and read its releases, status and logs."""
    with _errors():
        try:
            line = access_rules.public_key(key)
        except ValueError as exc:
            raise SiteModelError(f"access grant {name}", [f"key: {exc}"]) from None
    changes = site_changes.SiteChanges(grant_access=((grant, line),))
    _change(obj, name, changes, purpose=f"access grant {name} --name {grant}",
            unchanged=f"{grant} already has access with this key")  # fmt: skip
    click.echo(f"{grant} acts with: siteops --host {obj.host} deploy {name} --source DIR "
               "--access-key PRIVATE_KEY (also rollback, releases, logs; or "
               f"ssh siteops-access@HOST status {name})")  # fmt: skip


@access_group.command("revoke")
@click.argument("name")
@click.option("--name", "grant", required=True, help="The grant to revoke.")
@click.pass_obj
def access_revoke(obj: Context, name: str, grant: str) -> None:
    """Take a key's access to NAME away (its login stops working at once)."""
    _change(obj, name, site_changes.SiteChanges(revoke_access=(grant,)),
            purpose=f"access revoke {name} --name {grant}")  # fmt: skip


@access_group.command("list")
@click.argument("names", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def access_list(obj: Context, names: tuple[str, ...], as_json: bool) -> None:
    """The keys granted for each site (or the named ones), from the registry."""
    sites = _load(obj)
    unknown = [n for n in names if n not in sites.sites]
    if unknown:
        _fail([f"site: {n!r} is not in the registry of {obj.host}" for n in unknown],
              EXIT_BAD_INPUT)  # fmt: skip
    grants = access_rules.grants(sites, list(names))
    if as_json:
        _echo_json({"host": obj.host, "access": grants})
        return
    if not grants:
        click.echo("no access granted")
        return
    rows = [[g["site"], g["name"], g["fingerprint"], g["comment"]] for g in grants]
    click.echo(show.table(["SITE", "NAME", "KEY", "COMMENT"], rows))


@main.command("audit")
@click.option("--site", help="Only the commands that concerned this site.")
@click.option("--since", help="Only from then: 30m, 2h, 3d, 1w, or a UTC date or time.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def audit_command(obj: Context, site: str | None, since: str | None, as_json: bool) -> None:
    """The host's audit log: every changing command, who ran it, and how it ended."""
    with _errors():
        when = coordination.parse_since(since) if since else None
        entries = coordination.audit(obj.target(project_needed=False), site=site, since=when)
    if as_json:
        _echo_json({"host": obj.host, "entries": entries})
        return
    click.echo(show.audit_table(entries))


def sandbox_container(host: str) -> str:
    """The default container of sandbox host ``host``: one container per host."""
    return SANDBOX_CONTAINER if host == DEFAULT_HOST else f"{SANDBOX_CONTAINER}-{host}"


@main.group()
@click.option("--name", envvar="SITEOPS_SANDBOX",
              help=f"Container name of the sandbox [default: {SANDBOX_CONTAINER} for host "
                   f"{DEFAULT_HOST}, {SANDBOX_CONTAINER}-HOST for another --host].")  # fmt: skip
@click.pass_obj
def sandbox(obj: Context, name: str | None) -> None:
    """A local disposable host reached over SSH, like a real VPS.

    Several sandboxes may share an inventory: each is the host given by
    --host (default sandbox) and has its own container and ports.
    """
    obj.sandbox_name = name or sandbox_container(obj.host)


def _sandbox(obj: Context) -> Sandbox:
    with _errors():
        collection = find_collection()
        return Sandbox(find_testhosts(collection), obj.inventory, obj.sandbox_name, obj.host)


def _say(message: str) -> None:
    click.echo(f"sandbox: {message}", err=True)


@sandbox.command("up")
@click.option("--ssh-port", type=click.IntRange(1024, 65535), default=Ports.ssh, show_default=True)
@click.option("--http-port", type=click.IntRange(1024, 65535), default=Ports.http,
              show_default=True)  # fmt: skip
@click.option("--https-port", type=click.IntRange(1024, 65535), default=Ports.https,
              show_default=True)  # fmt: skip
@click.option("--debian", type=click.Choice(list(DEBIAN_RELEASES)), default=DEFAULT_DEBIAN,
              show_default=True, help="Debian release of a new sandbox.")  # fmt: skip
@click.option("--baked", is_flag=True,
              help="Start from the image with siteops' packages already installed (faster; "
                   "by default the host starts bare, as a new VPS does).")  # fmt: skip
@click.option("--no-baseline", is_flag=True, help="Do not apply the host baseline.")
@click.option("--container-only", is_flag=True,
              help="Only start the container, reachable over SSH as a new VPS is; the "
                   "inventory is not written (add it with `siteops host add`).")  # fmt: skip
@click.pass_obj
def sandbox_up(obj: Context, ssh_port: int, http_port: int, https_port: int, debian: str,
               baked: bool, no_baseline: bool, container_only: bool) -> None:  # fmt: skip
    """Start the sandbox, add its host to the inventory and apply the host baseline.

    The inventory's other hosts stay; give another sandbox of the same
    inventory its own --host and ports.
    """
    box = _sandbox(obj)
    with _errors():
        box.up(Ports(ssh_port, http_port, https_port), _say, debian=debian, baked=baked,
               write_inventory=not container_only)  # fmt: skip
    if container_only:
        ports = box.published()
        click.echo(f"sandbox container is up: siteops host add {obj.host} --ssh "
                   f"{DEPLOY_USER}@127.0.0.1 --port {ports.ssh if ports else ssh_port} "
                   f"--key {box.key}")  # fmt: skip
        return
    if no_baseline:
        return
    _say("applying the host baseline (playbooks/host.yml)")
    target = obj.target()
    with _errors(), _progress() as progress:
        result = ops.baseline(target, "sandbox up", on_progress=progress)
    _check_run(result, "applying the host baseline to the sandbox failed")
    ports = box.published()
    click.echo(f"sandbox is up: ssh deploy@127.0.0.1 -p {ports.ssh if ports else ssh_port}; "
               f"http://127.0.0.1:{ports.http if ports else http_port}/ "
               f"(inventory {box.hosts_file})")  # fmt: skip


@sandbox.command("down")
@click.pass_obj
def sandbox_down(obj: Context) -> None:
    """Remove the sandbox container and its host (registry included) from the inventory.

    The inventory's other hosts stay; with the last one the inventory goes.
    """
    with _errors():
        _sandbox(obj).down(_say)


@sandbox.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def sandbox_status(obj: Context, as_json: bool) -> None:
    """Say whether the sandbox runs and where it is published."""
    box = _sandbox(obj)
    with _errors():
        state = box.state() if box.engine_answers() else None
        ports = box.published()
    data: dict[str, Any] = {"container": state or "absent", "inventory": str(box.hosts_file)}
    if ports is not None:
        data.update(ssh=ports.ssh, http=ports.http, https=ports.https)
    if box.ca_file.is_file():
        data["ca"] = str(box.ca_file.resolve())
    if as_json:
        _echo_json(data)
    else:
        click.echo(" ".join(f"{key}={value}" for key, value in data.items()))
    if state != "running":
        raise SystemExit(1)
