"""The ``siteops`` command line: parse, call the library, print."""

from __future__ import annotations

from pathlib import Path

import click

from siteops import __version__
from siteops.errors import SiteModelError
from siteops.inventory import load_host_sites, sites_path
from siteops.schema import render

DEFAULT_INVENTORY = Path("inventory/sandbox")
DEFAULT_HOST = "sandbox"


class Context:
    """What every command needs: where the registry is."""

    def __init__(self, inventory: Path, host: str) -> None:
        self.inventory = inventory
        self.host = host

    @property
    def sites_file(self) -> Path:
        return sites_path(self.inventory, self.host)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="siteops")
@click.option(
    "--inventory",
    "-i",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_INVENTORY,
    show_default=True,
    envvar="SITEOPS_INVENTORY",
    help="Ansible inventory directory holding hosts.yml and host_vars/.",
)
@click.option(
    "--host",
    default=DEFAULT_HOST,
    show_default=True,
    envvar="SITEOPS_HOST",
    help="Inventory host whose sites are managed.",
)
@click.pass_context
def main(ctx: click.Context, inventory: Path, host: str) -> None:
    """siteops: many isolated web sites on one Linux VPS."""
    ctx.obj = Context(inventory, host)


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
        raise SystemExit(2) from None
    click.echo(f"{obj.sites_file}: {len(sites.sites)} site(s), valid")


@main.command()
def schema() -> None:
    """Print the JSON Schema of sites.yml."""
    click.echo(render(), nl=False)
