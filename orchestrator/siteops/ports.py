"""The port-block scheme of reference 003.

Every site owns block ``k``: ten frontend ports ``3100+10k .. 3109+10k``, ten
API ports ``4000+10k .. 4009+10k`` and ten ports for extra services
``5000+10k .. 5009+10k``. All are bound to 127.0.0.1 only.
"""

from __future__ import annotations

from enum import StrEnum

BLOCK_SIZE = 10


class PortRange(StrEnum):
    """Which of a block's three ranges a component's port lies in."""

    FRONTEND = "frontend"
    API = "api"
    EXTRA = "extra"


RANGE_BASE: dict[PortRange, int] = {
    PortRange.FRONTEND: 3100,
    PortRange.API: 4000,
    PortRange.EXTRA: 5000,
}

# The frontend range ends where the API range starts (3100 + 10*90 = 4000).
MAX_BLOCKS = (RANGE_BASE[PortRange.API] - RANGE_BASE[PortRange.FRONTEND]) // BLOCK_SIZE
MAX_BLOCK = MAX_BLOCKS - 1


def range_for_component(component: str) -> PortRange:
    """``frontend`` and ``api`` have their own ranges; every other component is extra."""
    if component == "frontend":
        return PortRange.FRONTEND
    if component == "api":
        return PortRange.API
    return PortRange.EXTRA


def ports_of(block: int, port_range: PortRange) -> range:
    """The ten ports of ``port_range`` in block ``block``."""
    if not 0 <= block <= MAX_BLOCK:
        raise ValueError(f"port block {block} is outside 0-{MAX_BLOCK}")
    start = RANGE_BASE[port_range] + BLOCK_SIZE * block
    return range(start, start + BLOCK_SIZE)


def block_ports(block: int) -> list[int]:
    """All thirty ports a block reserves, in ascending order."""
    return [port for r in PortRange for port in ports_of(block, r)]


def spare_port(port: int) -> int:
    """The spare slot's port of a frontend or api on ``port``: the other port of its pair.

    Every range starts at an even port, so its ten ports form five pairs
    (+0/+1, +2/+3, ...). A deploy starts the new release on the spare port and
    switches nginx to it while the component restarts on its own. The roles'
    filter ``siteops.hosting.spare_port`` pairs ports the same way (a test holds
    the two together).
    """
    return port + 1 if port % 2 == 0 else port - 1


def default_port(block: int, component: str) -> int:
    """The first port of the component's range in the block."""
    return ports_of(block, range_for_component(component))[0]


class PortBlocksExhausted(ValueError):  # noqa: N818 (reads as the condition it reports)
    """No port block is free: every block is held by a site or by a live listener."""

    def __init__(self, held_by_sites: int, held_by_listeners: list[int]) -> None:
        self.held_by_sites = held_by_sites
        self.held_by_listeners = held_by_listeners
        detail = f"{held_by_sites} held by sites"
        if held_by_listeners:
            detail += (
                f", {len(held_by_listeners)} skipped because the host already listens on one "
                f"of their ports (blocks {', '.join(map(str, held_by_listeners))})"
            )
        super().__init__(
            f"all {MAX_BLOCKS} port blocks (0-{MAX_BLOCK}) are taken ({detail}); "
            "archive a site you no longer need, or stop the process listening on a "
            "site port, then try again"
        )


def allocate_block(taken_blocks: set[int], listening_ports: set[int]) -> int:
    """The lowest block 0..MAX_BLOCK that no site holds and no live listener touches.

    ``taken_blocks`` are the blocks of the host's sites; ``listening_ports`` are
    the ports the host already listens on (any address), so a new site never
    gets a port some other process has taken. A block freed by a removed site
    is reused. Raises :class:`PortBlocksExhausted` when no block is left.
    """
    skipped: list[int] = []
    for block in range(MAX_BLOCKS):
        if block in taken_blocks:
            continue
        if listening_ports.isdisjoint(block_ports(block)):
            return block
        skipped.append(block)
    held_by_sites = len(taken_blocks & set(range(MAX_BLOCKS)))
    raise PortBlocksExhausted(held_by_sites, skipped)
