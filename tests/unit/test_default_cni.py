"""Issue 14.12: one default CNI everywhere (connect(), `labkit up`, `make lab`, both backends)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import labkit
from labkit import cliparser
from labkit.kind import backend as kind_backend
from labkit.lab import Backend, connect_backend
from labkit.sandbox import backend as sandbox_backend
from labkit.values import DEFAULT_CNI
from labkit.widgets.panel import LabPanel

ROOT = Path(__file__).resolve().parents[2]


def test_the_default_is_the_cni_that_enforces_policy():
    """flannel-io/flannel README.md ("Flannel is focused on networking. For network policy,
    other projects such as Calico can be used"); Calico's Felix programs NetworkPolicy."""
    assert DEFAULT_CNI == "calico"


@pytest.mark.parametrize(
    "function",
    [
        labkit.connect,
        connect_backend,
        Backend.up,
        kind_backend.up,
        kind_backend.plan,
        sandbox_backend.up,
        LabPanel.__init__,
    ],
    ids=lambda f: f.__qualname__,
)
def test_every_entry_point_defaults_to_it(function):
    """kind's and the sandbox's `up`, connect() and the lab panel take the same default CNI
    (issue 14.12: `connect()` and `labkit up` said flannel while `make lab` said calico)."""
    assert inspect.signature(function).parameters["cni"].default == DEFAULT_CNI


def test_labkit_up_and_make_lab_default_to_it():
    """`labkit up` with no --cni, and the Makefile's `CNI ?=` that `make lab` passes on."""
    args = cliparser.parser().parse_args(["up"])
    assert args.cni == DEFAULT_CNI
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^CNI \?= (\S+)$", makefile, re.M)[1] == DEFAULT_CNI
