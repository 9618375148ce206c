"""Deploy access grants: the rules of a grant, granting and revoking, and acting with a key."""

from __future__ import annotations

import base64
import shlex
from pathlib import Path

import pytest

from siteops.access import check_access_key, grants, key_fingerprint, public_key
from siteops.changes import SiteChanges, change_site, describe_changes
from siteops.errors import SiteModelError
from siteops.keyaccess import AccessRefused, KeyLogin, access_key
from siteops.model import HostSites
from siteops.sites import SiteAnswers, add_site


def ed25519(seed: int) -> str:
    blob = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + bytes([seed]) * 32
    return "ssh-ed25519 " + base64.b64encode(blob).decode()


ALICE, BOB = ed25519(1) + " alice@laptop", ed25519(2)


def two_sites() -> HostSites:
    sites = add_site(HostSites(), "blog", SiteAnswers(domains=["blog.example.net"], block=2))
    return add_site(sites, "docs", SiteAnswers(domains=["docs.example.net"], block=3))


def problems(sites: HostSites, name: str, changes: SiteChanges) -> list[str]:
    with pytest.raises(SiteModelError) as caught:
        change_site(sites, name, changes)
    return caught.value.problems


def test_a_grant_is_recorded_with_its_clean_key_and_described_by_fingerprint() -> None:
    sites = two_sites()
    granted = change_site(sites, "blog", SiteChanges(grant_access=(("alice", f"  {ALICE} "),)))
    assert granted.sites["blog"].access["alice"].key == ALICE
    assert granted.sites["docs"].access == {}
    fingerprint = key_fingerprint(ALICE)
    assert fingerprint.startswith("SHA256:") and "=" not in fingerprint
    assert describe_changes(sites.sites["blog"], granted.sites["blog"]) == [
        f"access.alice: granted ({fingerprint})"
    ]
    revoked = change_site(granted, "blog", SiteChanges(revoke_access=("alice",)))
    assert revoked.sites["blog"].access == {}
    assert describe_changes(granted.sites["blog"], revoked.sites["blog"]) == [
        f"access.alice: revoked ({fingerprint})"
    ]
    # The same key again under the same name changes nothing.
    again = change_site(granted, "blog", SiteChanges(grant_access=(("alice", ALICE),)))
    assert again == granted


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (SiteChanges(grant_access=(("Alice", ALICE),)), "access name 'Alice' must be"),
        (SiteChanges(grant_access=(("alice", "ssh-dss AAAA"),)), "one OpenSSH public key line"),
        (SiteChanges(grant_access=(("alice", 'command="sh" ' + BOB),)), "no options"),
        (SiteChanges(grant_access=(("alice", BOB + "\nssh-ed25519 x"),)), "control characters"),
        (SiteChanges(grant_access=(("alice", "ssh-rsa " + BOB.split()[1]),)), "not a ssh-rsa"),
        (SiteChanges(revoke_access=("carol",)), "site 'blog' has no access named 'carol'"),
    ],
)
def test_a_bad_grant_or_revoke_is_refused_naming_the_field(
    changes: SiteChanges, message: str
) -> None:
    assert any(message in p for p in problems(two_sites(), "blog", changes))


def test_a_key_deploys_one_site_and_a_name_keeps_its_key() -> None:
    sites = change_site(two_sites(), "blog", SiteChanges(grant_access=(("alice", ALICE),)))
    found = problems(sites, "docs", SiteChanges(grant_access=(("ci", ed25519(1)),)))
    assert any("already granted as blog/alice" in p for p in found)
    found = problems(sites, "blog", SiteChanges(grant_access=(("alice", BOB),)))
    assert any("revoke it first (siteops access revoke blog --name alice)" in p for p in found)


def test_public_key_reads_a_pub_file_and_refuses_a_private_key(tmp_path: Path) -> None:
    pub = tmp_path / "id.pub"
    pub.write_text(ALICE + "\n", encoding="utf-8")
    assert public_key(str(pub)) == ALICE
    private = tmp_path / "id"
    private.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nxx\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"is a private key; give its \.pub file"):
        public_key(str(private))
    assert check_access_key(BOB) == BOB


def test_grants_list_each_site_and_name_with_fingerprint_and_comment() -> None:
    sites = change_site(two_sites(), "docs", SiteChanges(grant_access=(("ci", BOB),)))
    sites = change_site(sites, "blog", SiteChanges(grant_access=(("alice", ALICE),)))
    assert grants(sites, []) == [
        {"site": "blog", "name": "alice", "fingerprint": key_fingerprint(ALICE),
         "comment": "alice@laptop"},
        {"site": "docs", "name": "ci", "fingerprint": key_fingerprint(BOB), "comment": ""},
    ]  # fmt: skip
    assert [g["site"] for g in grants(sites, ["docs"])] == ["docs"]


def test_a_key_login_offers_that_key_alone_to_the_access_account(tmp_path: Path) -> None:
    key = tmp_path / "dev"
    key.write_text("private", encoding="utf-8")
    variables = {"ansible_host": "10.0.0.5", "ansible_port": 2222, "ansible_user": "deploy",
                 "ansible_ssh_private_key_file": "/ops/key",
                 "ansible_ssh_common_args": "-o UserKnownHostsFile=/inv/known_hosts"}  # fmt: skip
    assert access_key(None, variables) is None
    assert access_key(None, {**variables, "siteops_access_key": str(key)}) == key
    with pytest.raises(AccessRefused, match="is not a file"):
        access_key(tmp_path / "missing", variables)
    argv = KeyLogin(variables, "vps1", key).argv(
        ["deploy", "blog", "20261128T120000Z", "--ref", "a b"]
    )
    assert argv[:9] == ["ssh", "-o", "BatchMode=yes", "-p", "2222", "-i", str(key), "-o",
                        "IdentitiesOnly=yes"]  # fmt: skip
    assert "/ops/key" not in argv  # never the operator's key
    assert "UserKnownHostsFile=/inv/known_hosts" in argv  # the inventory's pinned host key
    assert argv[-3:] == [
        "siteops-access@10.0.0.5",
        "--",
        "deploy blog 20261128T120000Z --ref 'a b'",
    ]
    assert shlex.split(argv[-1])[-1] == "a b"
