"""End to end: real apps on a bare Debian 13 and a bare Debian 12 host.

Each release gets its own sandbox, started from the bare image (what a
provider's minimal VPS image holds): the roles install everything the sites
use. On each: a Node site with an api and a cache, a Python site with a
database and a static site; the Node app (express, locked dependencies, a
build step) and the Python app (Flask on gunicorn, psycopg) are deployed with
their real dependencies, fetched from npm and PyPI through the test proxy.
The tests build on each other in file order, once per release.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Host, sandbox_host

APPS = Path(__file__).parent / "apps"
# Debian major version -> (container, ssh, http, https ports).
RELEASES = {
    "13": ("siteops-e2e-deb13", 2292, 8150, 8513),
    "12": ("siteops-e2e-deb12", 2302, 8160, 8523),
}
UNITS = ["shop-frontend.service", "shop-api.service", "blog-frontend.service"]


@pytest.fixture(scope="module", params=list(RELEASES), ids=lambda v: f"debian{v}")
def host(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Host]:
    debian = request.param
    name, ssh, http, https = RELEASES[debian]
    root = tmp_path_factory.mktemp(f"deb{debian}")
    yield from sandbox_host(root, name, ssh, http, https, "--debian", debian)


def installed(host: Host, package: str) -> bool:
    done = host.ssh(f"dpkg-query -W -f='${{Status}}' {package}")
    return done.returncode == 0 and "install ok installed" in done.stdout


def test_the_host_runs_its_release_and_the_baseline_installed_it(host: Host) -> None:
    release = host.ssh(". /etc/os-release && echo $VERSION_ID").stdout.strip()
    assert release in RELEASES
    clusters = host.ssh("ls /etc/postgresql").stdout.split()
    assert clusters == [{"13": "17", "12": "15"}[release]]
    for package in ["nginx", "postgresql", "redis-server", "certbot", "nftables", "ufw", "git"]:
        assert installed(host, package), package
    # No site needs a runtime yet: none is installed.
    for package in ["nodejs", "npm", "python3-venv"]:
        assert not installed(host, package), f"{package} is installed before any site needs it"


def test_each_kind_of_site_is_added_and_answers_with_its_placeholder(host: Host) -> None:
    host.siteops("add-site", "shop", "--domain", "shop.test", "--runtime", "node", "--api",
                 "--cache", "--no-db")  # fmt: skip
    host.siteops("add-site", "blog", "--domain", "blog.test", "--runtime", "python",
                 "--command", ".venv/bin/gunicorn app:app")  # fmt: skip
    host.siteops("add-site", "docs", "--domain", "docs.test", "--runtime", "static")
    for package in ["nodejs", "npm", "python3-venv"]:
        assert installed(host, package), f"{package} was not installed for the sites using it"
    # Sites with processes answer like a static one before their first deploy, not 502.
    for site in ["shop", "blog", "docs"]:
        code, body = host.get(f"{site}.test")
        assert (code, f"Site {site} has not been deployed yet" in body) == (200, True), body


def test_the_real_apps_deploy_with_their_dependencies_and_answer_through_nginx(
    host: Host, tmp_path: Path
) -> None:
    static = tmp_path / "docs"
    static.mkdir()
    (static / "index.html").write_text("<h1>docs v1</h1>\n", encoding="utf-8")
    for site, source in [("shop", APPS / "node-express"), ("blog", APPS / "python-flask"),
                         ("docs", static)]:  # fmt: skip
        started = time.monotonic()
        host.siteops("deploy", site, "--source", str(source))
        print(f"deploy of {site}: {time.monotonic() - started:.1f}s")
    assert host.get("shop.test") == (200, "node shop: express build ok\n")
    code, body = host.get("shop.test", "/api/")
    assert (code, json.loads(body)) == (200, {"site": "shop", "cache": True})
    assert host.get("blog.test") == (200, "python blog: flask on gunicorn, database blog as blog\n")
    assert host.get("docs.test") == (200, "<h1>docs v1</h1>\n")


def test_every_unit_is_hardened_to_an_exposure_of_at_most_2(host: Host) -> None:
    for unit in UNITS:
        out = host.ssh(f"sudo -n systemd-analyze security --no-pager {unit}").stdout
        found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", out)
        assert found, out[-500:]
        print(f"{unit}: {found.group(1)}")
        assert float(found.group(1)) <= 2.0


def test_a_failing_install_is_refused_with_npms_message_and_the_site_keeps_serving(
    host: Host, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "package.json").write_text(
        json.dumps({"name": "broken", "version": "1.0.0", "private": True,
                    "dependencies": {"siteops-no-such-package-xyz": "1.0.0"}}),
        encoding="utf-8",
    )  # fmt: skip
    (broken / "server.js").write_text("process.exit(1);\n", encoding="utf-8")
    done = host.siteops("deploy", "shop", "--source", str(broken), check=False)
    assert done.returncode == 2
    assert "install or build of release" in done.stderr
    assert "siteops-no-such-package-xyz" in done.stderr and "404" in done.stderr
    assert host.get("shop.test") == (200, "node shop: express build ok\n")


def test_a_second_apply_changes_nothing(host: Host) -> None:
    done = host.siteops("apply")
    assert re.search(r"\b0 changed\b", done.stdout), done.stdout


def test_a_rotated_database_password_keeps_the_app_working_and_ends_the_old_one(
    host: Host,
) -> None:
    def password() -> str:
        env = host.ssh("sudo -n grep ^DATABASE_URL= /srv/sites/blog/shared/.env").stdout
        found: str = re.findall(r"://blog:([^@]+)@", env)[0]
        return found

    def login(secret: str) -> subprocess.CompletedProcess[str]:
        # The password goes to psql through its environment on the host, not its arguments.
        return host.ssh(f"PGPASSWORD={secret} psql -h 127.0.0.1 -U blog -d blog -tAc 'SELECT 1'")

    old = password()
    assert login(old).stdout.strip() == "1"
    done = host.siteops("db", "rotate-password", "blog")
    assert re.search(r"blog-frontend\.service active on 31\d\d$", done.stdout.strip())
    new = password()
    assert new != old and len(new) == len(old)
    assert login(new).stdout.strip() == "1"
    refused = login(old)
    assert refused.returncode != 0 and "password authentication failed" in refused.stderr
    assert host.get("blog.test") == (200, "python blog: flask on gunicorn, database blog as blog\n")
    # Neither password left the host, and the roles accept the new one as it is.
    for path in [*host.state.rglob("*.log"), *host.inventory.rglob("*.yml")]:
        text = path.read_text(encoding="utf-8")
        assert old not in text and new not in text, path
    assert re.search(r"\b0 changed\b", host.siteops("apply", "blog").stdout)
