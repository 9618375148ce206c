"""Port-block allocation: lowest free block, gaps reused, live listeners avoided."""

from __future__ import annotations

import pytest

from siteops.ports import (
    MAX_BLOCK,
    MAX_BLOCKS,
    PortBlocksExhausted,
    PortRange,
    allocate_block,
    block_ports,
    ports_of,
    spare_port,
)
from tests.conftest import REPO, load_plugin


def test_the_first_site_gets_block_0() -> None:
    assert allocate_block(set(), set()) == 0


def test_the_next_site_gets_the_next_block() -> None:
    assert allocate_block({0, 1, 2}, set()) == 3


def test_a_block_freed_by_a_removed_site_is_reused_first() -> None:
    # Sites held 0-3; the site on block 1 was removed.
    assert allocate_block({0, 2, 3}, set()) == 1


def test_a_block_with_a_port_the_host_already_listens_on_is_skipped() -> None:
    # Something else listens on 4010, the first API port of block 1.
    assert allocate_block({0}, {4010}) == 2


@pytest.mark.parametrize("port", [3110, 3119, 4010, 4019, 5010, 5019])
def test_a_listener_on_any_of_the_three_ranges_skips_the_block(port: int) -> None:
    assert allocate_block({0}, {port}) == 2


def test_listeners_outside_every_block_do_not_matter() -> None:
    assert allocate_block(set(), {22, 80, 443, 5432, 6379, 3099, 4999, 5900}) == 0


def test_all_blocks_taken_raises_with_the_count_and_what_to_do() -> None:
    with pytest.raises(PortBlocksExhausted) as caught:
        allocate_block(set(range(MAX_BLOCKS)), set())
    message = str(caught.value)
    assert f"all {MAX_BLOCKS} port blocks (0-{MAX_BLOCK}) are taken" in message
    assert f"{MAX_BLOCKS} held by sites" in message
    assert "archive a site" in message
    assert isinstance(caught.value, ValueError)


def test_exhaustion_names_the_blocks_skipped_for_listeners() -> None:
    taken = set(range(MAX_BLOCKS)) - {7, 40}
    listening = {block_ports(7)[0], block_ports(40)[-1]}
    with pytest.raises(PortBlocksExhausted) as caught:
        allocate_block(taken, listening)
    assert caught.value.held_by_sites == MAX_BLOCKS - 2
    assert caught.value.held_by_listeners == [7, 40]
    assert "host already listens on one of their ports (blocks 7, 40)" in str(caught.value)


def test_block_ports_are_the_thirty_ports_of_the_three_ranges() -> None:
    ports = block_ports(3)
    assert len(ports) == 30
    assert ports[:10] == list(range(3130, 3140))
    assert ports[10:20] == list(range(4030, 4040))
    assert ports[20:] == list(range(5030, 5040))


def test_every_port_of_a_range_has_its_pair_partner_in_the_same_range() -> None:
    for block in (0, 1, MAX_BLOCK):
        for port_range in PortRange:
            ports = set(ports_of(block, port_range))
            for port in ports:
                assert spare_port(port) in ports
                assert spare_port(spare_port(port)) == port


def test_the_roles_pair_ports_as_siteops_does() -> None:
    filters = load_plugin(REPO / "plugins" / "filter" / "siteops.py", "siteops_test_ports_filters")
    for port in range(3100, 5100):
        assert filters.spare_port(port) == spare_port(port)
