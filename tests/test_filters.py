"""The filters of plugins/filter/siteops.py: what the roles' variables compute.

Each filter must give what the Jinja loop it replaced gave, on site records
like the example inventory's and on the edge cases: a site without
components, a static site, TLS off, a component without a port.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.conftest import load_plugin

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "plugins" / "filter" / "siteops.py"
EXAMPLE_SITES = ROOT / "inventory" / "example" / "host_vars" / "vps1" / "sites.yml"
UNIT_FORMAT = "%s-%s.service"


@pytest.fixture(scope="module")
def filters() -> ModuleType:
    return load_plugin(PLUGIN, "siteops_test_filters")


@pytest.fixture
def sites() -> dict[str, Any]:
    """The example inventory's sites (shop: three components; docs-site: static)."""
    records: dict[str, Any] = yaml.safe_load(EXAMPLE_SITES.read_text())["siteops_sites"]
    return records


def test_every_filter_is_registered(filters: ModuleType) -> None:
    registered = filters.FilterModule().filters()
    assert set(registered) == {
        "site_model_errors",
        "site_units",
        "spare_units",
        "spare_port",
        "release_slots",
        "release_settings",
        "shell_settings",
        "settings_files",
        "access_files",
        "site_env_keys",
        "certs_wanted",
        "certs_current",
        "certs_due",
        "cert_names",
        "challenge_check_failures",
        "site_names",
        "env_secrets",
        "site_passwords",
        "site_env_blocks",
        "site_accounts",
        "database_sites",
        "sites_with",
        "sites_without",
        "only_sites",
        "site_files",
        "each_files",
        "formatted",
        "absent_files",
        "slice_names",
        "unit_name_pattern",
        "unit_list",
        "unit_states",
        "site_jobs",
        "timer_states",
        "nginx_html_text",
    }
    for name, function in registered.items():
        assert function is getattr(filters, name)


# site_model_errors (site_model)

SPECS = yaml.safe_load((ROOT / "roles" / "site_model" / "vars" / "main.yml").read_text())
MODEL_LAYOUT_KEYS = ("site_name_pattern", "site_name_min_length", "site_name_max_length")


def model_layout() -> dict[str, Any]:
    """The naming rules as roles/site_model/vars/main.yml hands them to the filter."""
    defaults_file = ROOT / "roles" / "site_layout" / "defaults" / "main.yml"
    defaults = yaml.safe_load(defaults_file.read_text())
    keys = (*MODEL_LAYOUT_KEYS, "component_pattern")
    return {key: defaults[f"site_layout_{key}"] for key in keys}


def model_errors(filters: ModuleType, sites: Any) -> list[str]:
    errors: list[str] = filters.site_model_errors(
        sites, SPECS["__site_model_site_spec"], SPECS["__site_model_component_spec"], model_layout()
    )
    return errors


def test_site_model_errors_accept_the_example_records(
    filters: ModuleType, sites: dict[str, Any]
) -> None:
    assert model_errors(filters, sites) == []
    assert model_errors(filters, {}) == []


def test_site_model_errors_name_every_fault_with_its_field(
    filters: ModuleType, sites: dict[str, Any]
) -> None:
    shop = sites["shop"]
    shop["port_block"] = "seven"
    shop["colour"] = "blue"
    del shop["domains"]["primary"]
    shop["components"]["api"]["runtime"] = "perl"
    shop["components"]["Bad_Name"] = {"runtime": "static"}
    shop["components"]["worker"] = "python"
    sites["-bad"] = {"port_block": 3, "domains": {"primary": "x.test"}, "components": {}}
    sites["ok"] = "not a record"
    errors = model_errors(filters, sites)
    text = "\n".join(errors)
    assert any(e.startswith("siteops_sites.shop: ") and "port_block" in e for e in errors), text
    assert any(e.startswith("siteops_sites.shop: ") and "colour" in e for e in errors), text
    assert any(e.startswith("siteops_sites.shop: ") and "primary" in e for e in errors), text
    assert any(
        e.startswith("siteops_sites.shop.components.api: ") and "perl" in e for e in errors
    ), text
    assert "siteops_sites.shop.components.Bad_Name: component name must be" in text
    assert "siteops_sites.shop.components.worker: must be a mapping" in text
    assert "siteops_sites.-bad: site name must be 3-32 characters" in text
    assert "siteops_sites.ok: site name must be" in text
    assert "siteops_sites.ok: must be a mapping (a site record), got str" in text
    assert not any(e.startswith("siteops_sites.docs-site") for e in errors), text


def test_site_model_errors_refuse_sites_that_are_not_a_mapping(filters: ModuleType) -> None:
    assert model_errors(filters, ["shop"]) == [
        "siteops_sites: must be a mapping of site name to record, got list"
    ]


# site_units (systemd_service, site_release)


def test_site_units_names_each_process_component(
    filters: ModuleType, sites: dict[str, Any]
) -> None:
    units = filters.site_units(sites, UNIT_FORMAT)
    assert [u["unit"] for u in units] == [
        "shop-frontend.service",
        "shop-api.service",
        "shop-worker.service",
    ]
    assert units[1] == {
        "site": "shop",
        "name": "api",
        "unit": "shop-api.service",
        "component": sites["shop"]["components"]["api"],
        "database": True,
        "stopped": False,
    }


def test_site_units_are_stopped_with_their_site_or_by_themselves(filters: ModuleType) -> None:
    node = {"runtime": "node", "port": 3100, "command": "node s.js"}
    sites = {
        "shop": {"stopped": True, "components": {"frontend": node}},
        "blog": {"components": {"frontend": node, "worker": {**node, "stopped": True}}},
    }
    stopped = {u["unit"]: u["stopped"] for u in filters.site_units(sites, UNIT_FORMAT)}
    assert stopped == {
        "shop-frontend.service": True,
        "blog-frontend.service": False,
        "blog-worker.service": True,
    }


def test_site_units_of_a_static_site_or_no_components_are_none(filters: ModuleType) -> None:
    sites = {
        "docs-site": {"components": {"frontend": {"runtime": "static"}}},
        "empty": {"components": {}},
    }
    assert filters.site_units(sites, UNIT_FORMAT) == []


@pytest.mark.parametrize(
    ("record", "database"),
    [
        ({}, True),  # no database section: a site has one unless it says otherwise
        ({"database": None}, True),
        ({"database": {}}, True),
        ({"database": {"enabled": False}}, False),
        ({"database": {"enabled": True}}, True),
    ],
)
def test_site_units_database(filters: ModuleType, record: dict[str, Any], database: bool) -> None:
    sites = {"api-only": {**record, "components": {"api": {"runtime": "python", "port": 4010}}}}
    [unit] = filters.site_units(sites, UNIT_FORMAT)
    assert unit["database"] is database


def test_site_units_follow_the_layout_format(filters: ModuleType) -> None:
    sites = {"my-site": {"components": {"web": {"runtime": "node"}}}}
    [unit] = filters.site_units(sites, "siteops-%s@%s.service")
    assert unit["unit"] == "siteops-my-site@web.service"


# spare_units, spare_port, release_slots (systemd_service, site_release)

SPARE_FORMAT = "%s-%s.spare.service"


@pytest.mark.parametrize(
    ("port", "spare"), [(3100, 3101), (3101, 3100), (4000, 4001), (5008, 5009), (3179, 3178)]
)
def test_spare_port_is_the_other_port_of_its_pair(
    filters: ModuleType, port: int, spare: int
) -> None:
    assert filters.spare_port(port) == spare
    # Never outside the component's own range of ten: a pair never straddles two.
    assert (spare - 3100) // 10 == (port - 3100) // 10 or port >= 4000


def test_spare_units_are_the_frontend_and_api_only(
    filters: ModuleType, sites: dict[str, Any]
) -> None:
    spares = filters.spare_units(filters.site_units(sites, UNIT_FORMAT), SPARE_FORMAT)
    # shop: frontend 3100, api 4000 and a worker (not behind nginx: no spare).
    assert [(u["unit"], u["main_unit"], u["port"], u["main_port"]) for u in spares] == [
        ("shop-frontend.spare.service", "shop-frontend.service", 3101, 3100),
        ("shop-api.spare.service", "shop-api.service", 4001, 4000),
    ]
    assert all(u["spare"] and u["site"] == "shop" for u in spares)
    # The component itself is unchanged: the unit template reads the port from the item.
    assert spares[0]["component"]["port"] == 3100


def test_release_slots_leave_out_a_stopped_component(filters: ModuleType) -> None:
    node = {"runtime": "node", "port": 3110, "command": "node s.js"}
    sites = {"blog": {"components": {"frontend": node,
                                     "api": {**node, "port": 4011, "stopped": True}}}}  # fmt: skip
    spares = filters.spare_units(filters.site_units(sites, UNIT_FORMAT), SPARE_FORMAT)
    assert len(spares) == 2
    assert filters.release_slots(spares) == (
        "blog-frontend.service,blog-frontend.spare.service,3110,3111,frontend"
    )
    assert filters.release_slots([]) == ""


# release_settings, shell_settings, settings_files (site_release)

RELEASE_LAYOUT = {
    "unit_format": UNIT_FORMAT,
    "spare_unit_format": "%s-%s.spare.service",
    "slice_format": "%s.slice",
    "slice_dash_escape": "\\x2d",
    "nginx_config_format": "/etc/nginx/sites-available/%s.conf",
    "spare_link": "spare",
}


def test_release_settings_are_what_siteops_release_reads_of_each_site(
    filters: ModuleType, sites: dict[str, Any]
) -> None:
    settings = filters.release_settings(sites, RELEASE_LAYOUT, {"KEEP": 5, "HTTP_PROXY": "p"})
    assert settings["shop"] == {
        "KEEP": "5",
        "HTTP_PROXY": "p",
        "RUNTIME": "nextjs",
        "UNITS": "shop-frontend.service shop-api.service shop-worker.service",
        "HEALTH_PORT": "3100",
        "HEALTH_HOST": "shop.example.com",
        "SLOTS": "shop-frontend.service,shop-frontend.spare.service,3100,3101,frontend "
        "shop-api.service,shop-api.spare.service,4000,4001,api",
        "SPARE_LINK": "spare",
        "SLICE": "shop.slice",
        "NGINX_CONF": "/etc/nginx/sites-available/shop.conf",
        "DATABASE": "shop",
    }
    docs = settings["docs-site"]
    # A static site: no units, no slots, checked through nginx; its slice escaped.
    assert (docs["RUNTIME"], docs["UNITS"], docs["HEALTH_PORT"], docs["SLOTS"]) == (
        "static",
        "",
        "",
        "",
    )
    assert docs["SLICE"] == "docs\\x2dsite.slice"
    assert docs["DATABASE"] == (
        "" if sites["docs-site"].get("database", {}).get("enabled") is False else "docs-site"
    )


def test_shell_settings_quote_every_value_and_refuse_bad_names(filters: ModuleType) -> None:
    text = filters.shell_settings({"B": "it's $(rm -rf /)", "A": "a b"})
    assert text == "A='a b'\nB='it'\"'\"'s $(rm -rf /)'\n"
    with pytest.raises(ValueError, match="not a shell variable name"):
        filters.shell_settings({"A;rm": "x"})


def test_settings_files_are_root_only(filters: ModuleType) -> None:
    entries = filters.settings_files({"shop": {"KEEP": "5"}}, "/var/lib/x/{site}.settings")
    assert entries == [
        {
            "path": "/var/lib/x/shop.settings",
            "state": "file",
            "content": "KEEP=5\n",
            "owner": "root",
            "group": "root",
            "mode": "0600",
        }
    ]


# access_files (site_access)

ED25519 = (
    "ssh-ed25519 "
    + base64.b64encode(b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + bytes(range(32))).decode()
)
ACCESS_PATHS = {
    "fragment": "/etc/siteops/access.d/{site}.keys",
    "sudoers": "/etc/sudoers.d/siteops-access-{site}",
}
ACCESS_COMMAND = "/usr/local/sbin/siteops-access"


def test_access_files_force_each_key_to_its_site(filters: ModuleType) -> None:
    sites = {"shop": {"access": {"alice": {"key": ED25519 + " alice@laptop"}}}, "blog": {}}
    keys, sudoers, *rest = filters.access_files(
        sites, ACCESS_PATHS, ACCESS_COMMAND, "siteops-access"
    )
    assert keys["path"] == "/etc/siteops/access.d/shop.keys"
    assert keys["content"].splitlines()[1] == (
        'restrict,command="sudo -n /usr/local/sbin/siteops-access shop alice" '
        + ED25519
        + " siteops:shop:alice"
    )
    assert sudoers["path"] == "/etc/sudoers.d/siteops-access-shop"
    assert sudoers["mode"] == "0440" and "visudo" in sudoers["validate"]
    assert sudoers["content"].splitlines()[1] == (
        "siteops-access ALL=(root) NOPASSWD: /usr/local/sbin/siteops-access shop alice"
    )
    # A site without grants: neither file.
    assert rest == [
        {"path": "/etc/siteops/access.d/blog.keys", "state": "absent"},
        {"path": "/etc/sudoers.d/siteops-access-blog", "state": "absent"},
    ]


@pytest.mark.parametrize(
    ("grants", "message"),
    [
        ({"Alice": {"key": ED25519}}, "not a valid grant name"),
        ({"alice": {"key": 'command="sh" ' + ED25519}}, "one OpenSSH public key line"),
        ({"alice": {"key": ED25519 + "\nssh-ed25519 AAAA"}}, "control characters"),
        ({"alice": {"key": "ssh-ed25519 !!!!"}}, "does not decode"),
        ({"alice": {"key": "ssh-rsa " + ED25519.split()[1]}}, "not a ssh-rsa key"),
        (
            {"alice": {"key": ED25519}, "bob": {"key": ED25519 + " bob"}},
            "already granted as shop/alice",
        ),
    ],
)
def test_access_files_refuse_what_could_widen_a_grant(
    filters: ModuleType, grants: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        filters.access_files({"shop": {"access": grants}}, ACCESS_PATHS, ACCESS_COMMAND, "u")


def test_access_rules_are_the_models(filters: ModuleType) -> None:
    from siteops import access

    assert filters.ACCESS_NAME.pattern == access.ACCESS_NAME_PATTERN
    assert filters.ACCESS_KEY_TYPES == access.ACCESS_KEY_TYPES
    assert filters.access_key_blob(ED25519 + " c") == ("ssh-ed25519", ED25519.split()[1])
    assert access.check_access_key(ED25519 + "  c ") == ED25519 + " c"


# site_env_keys (site_user)


def test_site_env_keys(filters: ModuleType, sites: dict[str, Any]) -> None:
    keys = filters.site_env_keys(sites, {"NODE_ENV": "production", "TZ": "UTC"})
    assert keys == {
        # frontend's port is PORT too; the worker has no port
        "shop": [
            "SITE_NAME",
            "HOST",
            "SITE_ROOT",
            "NODE_ENV",
            "TZ",
            "FRONTEND_PORT",
            "PORT",
            "API_PORT",
        ],
        "docs-site": ["SITE_NAME", "HOST", "SITE_ROOT", "NODE_ENV", "TZ"],
    }


def test_site_env_keys_skip_a_null_port_and_keep_component_order(filters: ModuleType) -> None:
    sites = {
        "a-site": {
            "components": {
                "api": {"runtime": "node", "port": None},
                "web": {"runtime": "python", "port": 5030},
                "frontend": {"runtime": "node", "port": 3120},
            }
        },
        "empty": {"components": {}},
    }
    assert filters.site_env_keys(sites, {}) == {
        "a-site": ["SITE_NAME", "HOST", "SITE_ROOT", "WEB_PORT", "FRONTEND_PORT", "PORT"],
        "empty": ["SITE_NAME", "HOST", "SITE_ROOT"],
    }
    assert filters.site_env_keys({}, {}) == {}


# certs_wanted, certs_current, certs_due, cert_names (letsencrypt)

ACME = "https://acme-v02.api.letsencrypt.org/directory"
STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"


def test_certs_wanted(filters: ModuleType, sites: dict[str, Any]) -> None:
    assert filters.certs_wanted(sites, STAGING, "default@example.com") == {
        "shop": {
            "names": ["shop.example.com", "www.shop.example.com"],
            "server": ACME,
            "email": "ops@example.com",
        },
        "docs-site": {"names": ["docs.example.org"], "server": ACME, "email": "ops@example.org"},
    }


def test_certs_wanted_edge_cases(filters: ModuleType) -> None:
    def site(primary: str, **record: Any) -> dict[str, Any]:
        return {"domains": {"primary": primary}, "components": {}, **record}

    sites = {
        "off": site("off.example", tls={"enabled": False}),
        "null": site("null.example", tls={"enabled": None}),  # not true: no certificate
        "no-tls": site("notls.example"),
        "tls-none": site("tlsnone.example", tls=None),
        "empty": site("empty.example", tls={"enabled": True, "email": "", "ca_directory": ""}),
    }
    default = {"server": STAGING, "email": "d@example.com"}
    assert filters.certs_wanted(sites, STAGING, "d@example.com") == {
        "no-tls": {"names": ["notls.example"], **default},
        "tls-none": {"names": ["tlsnone.example"], **default},
        "empty": {"names": ["empty.example"], **default},
    }
    assert filters.certs_wanted({}, STAGING, "") == {}


def test_certs_current(filters: ModuleType) -> None:
    registered = {
        "stdout_lines": [
            "a line before any site is ignored: DNS:stray.example",
            "siteops-cert shop",
            "X509v3 Subject Alternative Name: ",
            "    DNS:www.shop.example.com, DNS:shop.example.com",
            f"server = {ACME}",
            # SAN line with an IP address; only the first server line counts
            "siteops-cert docs",
            "DNS:docs.example.org,IP Address:127.0.0.1",
            "  server = https://indented.example/",
            f"server = {STAGING}",
            f"server = {ACME}",
            "siteops-cert new",
        ]
    }
    assert filters.certs_current(registered) == {
        "shop": {"names": ["www.shop.example.com", "shop.example.com"], "server": ACME},
        "docs": {"names": ["docs.example.org"], "server": STAGING},
        "new": {"names": [], "server": ""},
    }
    assert filters.certs_current({"stdout_lines": []}) == {}
    assert filters.certs_current({"skipped": True}) == {}
    assert filters.certs_current(None) == {}


def test_certs_due(filters: ModuleType) -> None:
    wanted = {
        "same": {"names": ["a.example", "www.a.example"], "server": ACME},
        "other-order": {"names": ["b.example", "www.b.example"], "server": ACME},
        "new": {"names": ["c.example"], "server": ACME},
        "fewer-names": {"names": ["d.example"], "server": ACME},
        "other-ca": {"names": ["e.example"], "server": ACME},
    }
    have = {
        "same": {"names": ["a.example", "www.a.example"], "server": ACME},
        "other-order": {"names": ["www.b.example", "b.example"], "server": ACME},
        "fewer-names": {"names": ["d.example", "old.example"], "server": ACME},
        "other-ca": {"names": ["e.example"], "server": STAGING},
        "tls-off": {"names": ["f.example"], "server": ACME},  # not wanted: not due
    }
    assert filters.certs_due(wanted, have) == ["new", "fewer-names", "other-ca"]
    assert filters.certs_due({}, have) == []


def test_cert_names_in_order(filters: ModuleType) -> None:
    wanted = {
        "shop": {"names": ["shop.example.com", "www.shop.example.com"], "server": ACME},
        "docs-site": {"names": ["docs.example.org"], "server": ACME},
    }
    assert filters.cert_names(["docs-site", "shop"], wanted) == [
        {"site": "docs-site", "name": "docs.example.org"},
        {"site": "shop", "name": "shop.example.com"},
        {"site": "shop", "name": "www.shop.example.com"},
    ]
    assert filters.cert_names([], wanted) == []


# challenge_check_failures (letsencrypt)


def _check(site: str, name: str, **result: Any) -> dict[str, Any]:
    return {"item": {"site": site, "name": name}, **result}


def test_challenge_check_failures(filters: ModuleType) -> None:
    registered = {
        "results": [
            _check("shop", "shop.example.com", status=200, content="siteops challenge check shop "),
            _check("shop", "www.shop.example.com", status=404, content="Not Found"),
            _check("shop", "old.example.com", status=200, content="siteops challenge check docs"),
            _check("docs", "docs.example.org", status=-1, msg="Request failed: timed out"),
            _check("docs", "b.example.org", skipped=True),
        ]
    }
    assert filters.challenge_check_failures(registered) == [
        {"name": "www.shop.example.com", "why": "www.shop.example.com: HTTP 404"},
        {"name": "old.example.com", "why": "old.example.com: HTTP 200"},
        {"name": "docs.example.org", "why": "docs.example.org: Request failed: timed out"},
        {"name": "b.example.org", "why": "b.example.org: HTTP ?"},
    ]


@pytest.mark.parametrize("registered", [None, {}, {"results": []}])
def test_challenge_check_failures_without_checks(filters: ModuleType, registered: Any) -> None:
    assert filters.challenge_check_failures(registered) == []


@pytest.mark.parametrize(
    ("message", "why"),
    [
        # Jinja's truncate(160): kept up to 165 characters (its leeway of 5) ...
        ("x" * 165, "x" * 165),
        # ... else cut at the last space before character 157, and "..." appended,
        ("word " * 40, ("word " * 31).rstrip() + "..."),
        # or at 157 if there is no space.
        ("x" * 166, "x" * 157 + "..."),
    ],
)
def test_challenge_check_failure_message_is_cut_like_jinja(
    filters: ModuleType, message: str, why: str
) -> None:
    registered = {"results": [_check("s", "n.example", status=-1, msg=message)]}
    [failure] = filters.challenge_check_failures(registered)
    assert failure["why"] == "n.example: " + why


def test_truncate_is_jinjas(filters: ModuleType) -> None:
    jinja2 = pytest.importorskip("jinja2")
    environment = jinja2.Environment(autoescape=True)
    template = environment.from_string("{{ text | truncate(160) }}")
    for text in ["short", "x" * 165, "x" * 166, "word " * 40, "a " * 90, " " * 200]:
        assert filters._truncate(text, 160) == template.render(text=text)


LAYOUT = yaml.safe_load((ROOT / "roles" / "site_layout" / "defaults" / "main.yml").read_text())
NAME_RULE = (
    LAYOUT["site_layout_site_name_pattern"],
    LAYOUT["site_layout_site_name_min_length"],
    LAYOUT["site_layout_site_name_max_length"],
)


def test_site_names_keeps_valid_names_once_in_order(filters: ModuleType) -> None:
    assert filters.site_names(["shop", "docs-site", "shop"], *NAME_RULE) == ["shop", "docs-site"]
    assert filters.site_names([], *NAME_RULE) == []


@pytest.mark.parametrize(
    "names",
    [
        [""],
        [".."],
        ["../etc"],
        ["shop/../../etc"],
        ["Shop"],
        ["ab"],
        ["a" * 33],
        ["shop-"],
        [None],
        "shop",
        {"shop": {}},
        None,
    ],
)
def test_site_names_refuses_what_is_not_a_list_of_site_names(
    filters: ModuleType, names: Any
) -> None:
    with pytest.raises(ValueError, match="site names: "):
        filters.site_names(names, *NAME_RULE)


def test_site_files_repeats_the_specs_for_each_site_filled_in(
    filters: ModuleType, sites: dict[str, Any]
) -> None:
    specs: list[dict[str, Any]] = [
        {"path": "{root}/{site}", "state": "directory", "owner": "{site}", "mode": "0750"},
        {"path": "{root}/{site}/current", "state": "link", "src": "releases/{site}"},
        {"path": "/etc/x/{site}", "template": "x.j2", "vars": {"other": 1}, "group": "root"},
    ]
    out = filters.site_files({"shop": sites["shop"], "docs-site": {}}, specs, root="/srv/sites")
    assert [e["path"] for e in out] == [
        "/srv/sites/shop",
        "/srv/sites/shop/current",
        "/etc/x/shop",
        "/srv/sites/docs-site",
        "/srv/sites/docs-site/current",
        "/etc/x/docs-site",
    ]
    assert out[0] == {
        "path": "/srv/sites/shop",
        "state": "directory",
        "owner": "shop",
        "mode": "0750",
    }
    assert out[1]["src"] == "releases/shop"
    assert out[2]["vars"] == {"other": 1, "item": {"key": "shop", "value": sites["shop"]}}
    assert out[2]["template"] == "x.j2" and out[2]["group"] == "root"
    assert specs[2]["vars"] == {"other": 1}, "the specs themselves are left alone"


def test_absent_files_remove_each_path(filters: ModuleType) -> None:
    assert filters.absent_files(["/etc/a.conf", "/etc/b.conf"]) == [
        {"path": "/etc/a.conf", "state": "absent"},
        {"path": "/etc/b.conf", "state": "absent"},
    ]
    assert filters.absent_files([]) == []


def test_each_files_repeats_the_specs_for_each_item_with_its_fields(
    filters: ModuleType, sites: dict[str, Any]
) -> None:
    units = filters.site_units(sites, UNIT_FORMAT)
    specs = [
        {"path": "{root}/{site}/logs/{name}.log", "state": "touch", "owner": "{site}"},
        {"path": "/etc/systemd/system/{unit}", "template": "unit.j2", "mode": "0644"},
    ]
    out = filters.each_files(units, specs, root="/srv/sites")
    assert len(out) == 2 * len(units)
    first = units[0]
    assert out[0] == {
        "path": f"/srv/sites/{first['site']}/logs/{first['name']}.log",
        "state": "touch",
        "owner": first["site"],
    }
    assert out[1]["path"] == f"/etc/systemd/system/{first['unit']}"
    assert out[1]["vars"] == {"item": first}
    assert filters.each_files([], specs) == []


def test_formatted_puts_each_name_in_each_format(filters: ModuleType) -> None:
    assert filters.formatted(["shop", "blog"], ["a@%s.timer", "b@%s.timer"]) == [
        "a@shop.timer",
        "b@shop.timer",
        "a@blog.timer",
        "b@blog.timer",
    ]
    assert filters.formatted([], ["%s.slice"]) == []


def test_unit_list_gives_each_name_the_same_fields(filters: ModuleType) -> None:
    assert filters.unit_list(["a.timer", "b.timer"], enabled=True, state="started") == [
        {"name": "a.timer", "enabled": True, "state": "started"},
        {"name": "b.timer", "enabled": True, "state": "started"},
    ]


def test_unit_states_start_units_restarting_changed_ones_but_not_placeholder_sites(
    filters: ModuleType,
) -> None:
    units = [
        {"site": "shop", "unit": "shop-frontend.service"},
        {"site": "blog", "unit": "blog-frontend.service"},
    ]
    started = {"enabled": True, "state": "started", "restart_on_change": True}
    env, placeholder = "/srv/www/{site}/shared/.env", "/srv/www/{site}/current/.placeholder"
    assert filters.unit_states(units, env, placeholder) == [
        {
            "name": "shop-frontend.service",
            **started,
            "restart_when_newer": ["/srv/www/shop/shared/.env"],
            "unless_exists": "/srv/www/shop/current/.placeholder",
        },
        {
            "name": "blog-frontend.service",
            **started,
            "restart_when_newer": ["/srv/www/blog/shared/.env"],
            "unless_exists": "/srv/www/blog/current/.placeholder",
        },
    ]


def test_unit_states_keep_a_stopped_unit_stopped_and_disabled(filters: ModuleType) -> None:
    units = [{"site": "shop", "unit": "shop-frontend.service", "stopped": True}]
    assert filters.unit_states(units, "/e/{site}", "/p/{site}") == [
        {"name": "shop-frontend.service", "enabled": False, "state": "stopped"}
    ]


def test_slice_names_escape_every_dash(filters: ModuleType) -> None:
    assert filters.slice_names(["shop", "web-app-v2"], "%s.slice", "\\x2d") == {
        "shop": "shop.slice",
        "web-app-v2": "web\\x2dapp\\x2dv2.slice",
    }


def test_site_files_takes_a_per_site_value_from_a_mapping(filters: ModuleType) -> None:
    specs = [{"path": "/etc/systemd/system/{slice}", "template": "s.j2"}]
    out = filters.site_files(
        {"a-b": {}, "cc": {}}, specs, slice={"a-b": "a_b.slice", "cc": "cc.slice"}
    )
    assert [e["path"] for e in out] == [
        "/etc/systemd/system/a_b.slice",
        "/etc/systemd/system/cc.slice",
    ]


def test_unit_name_pattern_matches_the_units_of_the_named_sites_only(filters: ModuleType) -> None:
    pattern = filters.unit_name_pattern(["shop", "web-app"], UNIT_FORMAT, "^[a-z][a-z0-9]{0,15}$")
    for name in ["shop-frontend.service", "web-app-api.service", "shop-a.service"]:
        assert re.fullmatch(pattern, name), name
    for name in [
        "shop2-frontend.service",
        "web-frontend.service",
        "shop-frontend.timer",
        "shop-Frontend.service",
        "shop-frontendxxxxxxxxxxxx.service",
        "xshop-frontend.service",
    ]:
        assert not re.search(pattern, name), name
    assert not re.search(filters.unit_name_pattern([], UNIT_FORMAT, "^x$"), "shop-x.service")


def test_env_secrets_takes_the_password_of_the_named_line(filters: ModuleType) -> None:
    found = {
        "sites": {
            "shop": {
                "env": {
                    "content": "A=1\nDATABASE_URL=postgresql://shop:s3cretXYZ@127.0.0.1:5432/shop\n"
                }
            },
            "blog": {"env": {"content": "REDIS_URL=redis://blog:r3dis@127.0.0.1:6379/0\n"}},
            "odd": {
                "env": {"content": "DATABASE_URL=postgresql://odd:has%20space@127.0.0.1/odd\n"}
            },
            "new": {"env": {"exists": False, "content": None}},
        }
    }
    assert filters.env_secrets(found, "DATABASE_URL") == {"shop": "s3cretXYZ"}
    assert filters.env_secrets(found, "REDIS_URL") == {"blog": "r3dis"}
    assert filters.env_secrets(None, "REDIS_URL") == {}
    assert filters.env_secrets({"skipped": True}, "REDIS_URL") == {}


def test_site_passwords_keep_existing_ones_and_make_new_ones(filters: ModuleType) -> None:
    out = filters.site_passwords(["shop", "blog", "docs"], {"shop": "kept123"}, 32)
    assert out["shop"] == "kept123"
    assert re.fullmatch(r"[A-Za-z0-9]{32}", out["blog"])
    assert re.fullmatch(r"[A-Za-z0-9]{32}", out["docs"])
    assert out["blog"] != out["docs"]
    assert filters.site_passwords([], {}, 32) == {}


def test_database_sites_carry_each_sites_limit_or_the_default(filters: ModuleType) -> None:
    sites = {"shop": {"database": {"connection_limit": 5}}, "blog": {"database": {}}, "wiki": {}}
    assert filters.database_sites(sites, 20) == [
        {"name": "shop", "connection_limit": 5},
        {"name": "blog", "connection_limit": 20},
        {"name": "wiki", "connection_limit": 20},
    ]


def test_sites_with_and_without_a_setting_split_the_records_in_their_order(
    filters: ModuleType,
) -> None:
    sites = {
        "shop": {"cache": {"enabled": True}, "components": {"frontend": {"runtime": "static"}}},
        "blog": {"cache": {"enabled": False}, "components": {"frontend": {"runtime": "node"}}},
        "wiki": {"components": {}},
        "docs": {"cache": {"enabled": True}, "components": {"frontend": {"runtime": "static"}}},
    }
    assert list(filters.sites_with(sites, "cache.enabled")) == ["shop", "docs"]
    assert list(filters.sites_without(sites, "cache.enabled")) == ["blog", "wiki"]
    static = filters.sites_with(sites, "components.frontend.runtime", "static")
    assert static == {"shop": sites["shop"], "docs": sites["docs"]}
    assert list(filters.sites_without(sites, "components.frontend.runtime", "static")) == [
        "blog",
        "wiki",
    ]
    # A path through something that is not a mapping is unset, not an error.
    assert filters.sites_with({"odd": {"cache": "yes"}}, "cache.enabled") == {}


def test_only_sites_selects_the_named_records_or_all(filters: ModuleType) -> None:
    sites = {"shop": {"a": 1}, "blog": {"b": 2}, "docs": {"c": 3}}
    assert filters.only_sites(sites, []) == sites
    assert list(filters.only_sites(sites, ["docs", "shop", "gone"])) == ["shop", "docs"]
    with pytest.raises(ValueError, match="expected a list of site names"):
        filters.only_sites(sites, "shop")


def test_database_sites_leave_out_a_site_whose_database_is_off(filters: ModuleType) -> None:
    sites = {
        "shop": {"database": {"enabled": True, "connection_limit": 5}},
        "docs": {"database": {"enabled": False, "connection_limit": 5}},
        "blog": {"database": {"connection_limit": None}},
    }
    assert filters.database_sites(sites, 20) == [
        {"name": "shop", "connection_limit": 5},
        {"name": "blog", "connection_limit": 20},
    ]


def test_site_accounts_are_a_nologin_user_per_site_at_home_in_its_tree(
    filters: ModuleType,
) -> None:
    assert filters.site_accounts(["shop"], "/srv/sites", "/usr/sbin/nologin") == [
        {
            "name": "shop",
            "home": "/srv/sites/shop",
            "shell": "/usr/sbin/nologin",
            "comment": "siteops site shop",
        }
    ]


def test_site_env_blocks_are_what_the_jinja_block_gave(
    filters: ModuleType, sites: dict[str, Any]
) -> None:
    blocks = filters.site_env_blocks(sites, "/srv/sites", {"APP_ENV": "production"})
    ports = [
        f"{name.upper()}_PORT={c['port']}"
        for name, c in sites["shop"]["components"].items()
        if c.get("port") is not None
    ]
    assert blocks["shop"].splitlines() == [
        "SITE_NAME=shop",
        "SITE_ROOT=/srv/sites/shop",
        "HOST=127.0.0.1",
        f"PORT={sites['shop']['components']['frontend']['port']}",
        *ports,
        "APP_ENV=production",
    ]
    assert blocks["docs-site"].splitlines()[:3] == [
        "SITE_NAME=docs-site",
        "SITE_ROOT=/srv/sites/docs-site",
        "HOST=127.0.0.1",
    ]
    assert not blocks["docs-site"].endswith("\n")


def test_nginx_html_text_escapes_html_and_what_nginx_reads_in_a_string(
    filters: ModuleType,
) -> None:
    text = 'Back at 5 o\'clock <b>&</b> $host \\ "x"\nnext'
    assert filters.nginx_html_text(text) == (
        "Back at 5 o&#39;clock &lt;b&gt;&amp;&lt;/b&gt; &#36;host &#92; &quot;x&quot; next"
    )


def test_site_jobs_name_their_service_and_timer_and_stop_with_their_site(
    filters: ModuleType,
) -> None:
    job = {"schedule": "daily", "command": "php artisan schedule:run"}
    sites = {
        "shop": {"components": {}, "jobs": {"report": job}},
        "blog": {"components": {}, "stopped": True, "jobs": {"clean": job},
                 "database": {"enabled": False}},
        "docs": {"components": {}},
    }  # fmt: skip
    jobs = filters.site_jobs(sites, UNIT_FORMAT)
    assert [(j["unit"], j["timer"], j["stopped"], j["database"]) for j in jobs] == [
        ("shop-report.service", "shop-report.timer", False, True),
        ("blog-clean.service", "blog-clean.timer", True, False),
    ]
    assert filters.timer_states(jobs) == [
        {"name": "shop-report.timer", "enabled": True, "state": "started",
         "restart_on_change": True},
        {"name": "blog-clean.timer", "enabled": False, "state": "stopped"},
    ]  # fmt: skip
