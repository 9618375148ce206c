"""plugins/strategy/mitogen_linear.py: an ssh login and a sudo to root become one hop.

The stacks are built by the installed Mitogen's own planners (``_connect_ssh``,
``_connect_sudo``), so a Mitogen release that changes their shape fails here
instead of silently keeping the slower stack.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

import ansible_mitogen.connection as connection  # type: ignore[import-untyped]
import pytest

from tests.conftest import load_plugin

PLUGIN = Path(__file__).resolve().parent.parent / "plugins" / "strategy" / "mitogen_linear.py"
PYTHON = ["/usr/bin/python3"]


@pytest.fixture
def strategy() -> Iterator[ModuleType]:
    yield load_plugin(PLUGIN, "siteops_test_mitogen_linear_sudo")


def _spec(
    *, become_user: str = "root", password: str | None = None, flags: str = "-H -S -n"
) -> Any:
    spec = mock.Mock()
    spec.remote_user.return_value = "deploy"
    spec.remote_addr.return_value = "203.0.113.7"
    spec.port.return_value = 22
    spec.python_path.return_value = list(PYTHON)
    spec.password.return_value = None
    spec.private_key_file.return_value = None
    spec.become_user.return_value = become_user
    spec.become_pass.return_value = password
    spec.become_exe.return_value = None
    spec.sudo_args.return_value = flags.split()
    spec.mitogen_mask_remote_name.return_value = False
    spec.mitogen_ssh_compression.return_value = True
    return spec


def _stack(spec: Any) -> tuple[dict[str, Any], ...]:
    return (connection._connect_ssh(spec), connection._connect_sudo(spec))


def test_a_login_and_a_passwordless_sudo_to_root_are_one_ssh_hop_running_python_through_sudo(
    strategy: ModuleType,
) -> None:
    login, become = _stack(_spec())
    (folded,) = strategy.sudo_folded((login, become))
    assert folded["method"] == "ssh"
    assert folded["kwargs"]["python_path"] == ["sudo", "-n", "-H", "-u", "root", "--", *PYTHON]
    # Everything else of the login stays: user, host, port, ssh options.
    rest = {key: value for key, value in folded["kwargs"].items() if key != "python_path"}
    assert rest == {key: value for key, value in login["kwargs"].items() if key != "python_path"}
    assert login["kwargs"]["python_path"] == PYTHON, "the planner's own stack was changed"


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        (_spec(become_user="postgres"), "sudo to another user than root"),
        (_spec(password="not-a-secret"), "a become password"),  # noqa: S106
        (_spec(flags="-H -S -n -E"), "a sudo flag other than -H, -S, -n"),
    ],
)
def test_any_other_sudo_keeps_its_own_hop(strategy: ModuleType, spec: Any, why: str) -> None:
    stack = _stack(spec)
    assert strategy.sudo_folded(stack) == stack, why


def test_a_login_without_become_is_left_alone(strategy: ModuleType) -> None:
    stack = (connection._connect_ssh(_spec()),)
    assert strategy.sudo_folded(stack) == stack


def test_only_the_last_two_hops_are_folded(strategy: ModuleType) -> None:
    via = connection._connect_ssh(_spec())
    folded = strategy.sudo_folded((via, *_stack(_spec())))
    assert len(folded) == 2
    assert folded[0] == via
    assert folded[1]["kwargs"]["python_path"][:2] == ["sudo", "-n"]
