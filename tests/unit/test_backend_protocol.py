"""Both backend modules take the calls the seam makes of a `Backend`, and the Kind Lab takes the
calls checks make of a `Lab`: same parameter names, order, kinds and defaults (no Docker, no root).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest

from labkit import lab as seam
from labkit.kind import backend as kind_backend
from labkit.kind.lab import KindLab
from labkit.sandbox import backend as sandbox_backend

BACKEND_MODULES = {"kind": kind_backend, "sandbox": sandbox_backend}
SEAM_CALLS = {
    "up": ("netlab", "calico", None),  # connect_backend: module.up(lab_name, cni, kube_proxy_mode)
    "attach": ("netlab",),
    "down": ("netlab",),
    "names": (),
    "doctor_checks": (None,),
    "summaries": (),
}


def protocol_methods(protocol: type) -> list[str]:
    """The methods a Protocol declares (not the ones every class has)."""
    return [
        name
        for name, value in vars(protocol).items()
        if inspect.isfunction(value) and not name.startswith("_")
    ]


def parameters(function: Callable[..., Any]) -> list[inspect.Parameter]:
    """A function's parameters as a caller sees them (without ``self``)."""
    found = list(inspect.signature(function).parameters.values())
    return found[1:] if found and found[0].name == "self" else found


def assert_takes_the_protocols_calls(
    protocol: type, method: str, implementation: Callable[..., Any], *, same_annotations: bool
) -> None:
    """The implementation starts with the Protocol's parameters (names, order, kinds, defaults
    and, for backends, annotations); anything it adds is optional, so no call the Protocol allows
    can fail or change meaning."""
    wanted = parameters(getattr(protocol, method))
    got = parameters(implementation)

    def shape(params: list[inspect.Parameter]) -> list[tuple[object, ...]]:
        return [
            (p.name, p.kind, p.default, *((p.annotation,) if same_annotations else ()))
            for p in params
        ]

    assert shape(got[: len(wanted)]) == shape(wanted), f"{method} differs from the Protocol"
    assert all(p.default is not p.empty for p in got[len(wanted) :]), (
        f"{method} adds a required parameter"
    )


def test_the_seam_calls_every_backend_method():
    assert sorted(protocol_methods(seam.Backend)) == sorted(SEAM_CALLS)


@pytest.mark.parametrize("backend", sorted(BACKEND_MODULES))
@pytest.mark.parametrize("method", sorted(SEAM_CALLS))
def test_backend_module_matches_the_protocol(backend, method):
    module = BACKEND_MODULES[backend]
    assert_takes_the_protocols_calls(
        seam.Backend, method, getattr(module, method), same_annotations=True
    )
    inspect.signature(getattr(module, method)).bind(*SEAM_CALLS[method])


@pytest.mark.parametrize("backend", sorted(BACKEND_MODULES))
def test_backend_module_is_the_one_the_seam_imports(backend):
    assert seam.backend_module(backend) is BACKEND_MODULES[backend]


@pytest.mark.parametrize("method", protocol_methods(seam.Lab))
def test_kind_lab_matches_the_lab_protocol(method):
    assert_takes_the_protocols_calls(
        seam.Lab, method, getattr(KindLab, method), same_annotations=False
    )
