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


def default_port(block: int, component: str) -> int:
    """The first port of the component's range in the block."""
    return ports_of(block, range_for_component(component))[0]
