"""The checks' self-tests: known-wrong states each check must reject with its intended hint, and
the fixed states it must accept, as manifests in this folder indexed by ``index.yaml``.

``cases()`` reads the index; ``SelfTestCase.manifests(state)`` loads a state's objects;
``judge(case, state, result)`` says whether a check's Result is what the case expects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from labkit import manifests as manifest_io
from labkit.checks.result import VERDICTS, Result
from labkit.errors import LabError

HERE = Path(__file__).resolve().parent
INDEX = HERE / "index.yaml"
STATES = ("wrong", "fixed")


@dataclass(frozen=True)
class Expectation:
    """What a check must answer in one state."""

    files: tuple[str, ...]
    verdict: str
    hint: str = ""
    layer: str | None = None


@dataclass(frozen=True)
class SelfTestCase:
    """One check run against a known-wrong state and its fix."""

    name: str
    check: str
    args: Mapping[str, Any]
    base: tuple[str, ...]
    wrong: Expectation
    fixed: Expectation
    cnis: tuple[str, ...] = ()
    """The CNIs whose labs the case applies to (every CNI when empty)."""
    backends: tuple[str, ...] = field(default_factory=tuple)

    def expectation(self, state: str) -> Expectation:
        """What the check must answer in ``state`` ("wrong" or "fixed")."""
        if state not in STATES:
            raise ValueError(f"state must be one of {STATES}, not {state!r}")
        return self.wrong if state == "wrong" else self.fixed

    def base_manifests(self) -> list[dict[str, Any]]:
        """The objects both states start from."""
        return load_files(self.base)

    def manifests(self, state: str) -> list[dict[str, Any]]:
        """The overlay objects of a state (applied on top of the base)."""
        return load_files(self.expectation(state).files)

    def runs_on(self, backend: str, cni: str) -> bool:
        """Whether the case applies to a lab of this backend and CNI."""
        return (not self.cnis or cni in self.cnis) and (
            not self.backends or backend in self.backends
        )


def load_files(names: tuple[str, ...] | list[str]) -> list[dict[str, Any]]:
    """The objects of some self-test manifest files (names relative to this folder)."""
    docs: list[dict[str, Any]] = []
    for name in names:
        docs.extend(manifest_io.load(HERE / name))
    return docs


def _expectation(raw: Mapping[str, Any], where: str) -> Expectation:
    verdict = raw.get("verdict")
    if verdict not in VERDICTS:
        raise LabError(
            f"{where}: verdict {verdict!r} is not one of {VERDICTS}.",
            "Fix labkit/checks/selftest/index.yaml.",
        )
    if verdict != "pass" and not raw.get("hint"):
        raise LabError(
            f"{where}: a {verdict} state must name the hint it expects.", "Add hint: to the case."
        )
    return Expectation(
        tuple(raw.get("manifests") or ()), verdict, str(raw.get("hint") or ""), raw.get("layer")
    )


def cases(path: Path = INDEX) -> list[SelfTestCase]:
    """Every self-test case of the index, in file order."""
    data = yaml.safe_load(path.read_text()) or {}
    out = []
    for i, raw in enumerate(data.get("cases") or []):
        where = f"case {i + 1} ({raw.get('name', '?')})"
        out.append(
            SelfTestCase(
                name=str(raw["name"]),
                check=str(raw["check"]),
                args=dict(raw.get("args") or {}),
                base=tuple(raw.get("base") or ()),
                wrong=_expectation(raw.get("wrong") or {}, f"{where} wrong"),
                fixed=_expectation(raw.get("fixed") or {}, f"{where} fixed"),
                cnis=_names(raw.get("cni")),
                backends=tuple(raw.get("backends") or ()),
            )
        )
    return out


def _names(value: Any) -> tuple[str, ...]:
    """A case's ``cni``: one name or a list of them."""
    if value is None:
        return ()
    return (str(value),) if isinstance(value, str) else tuple(str(v) for v in value)


def judge(case: SelfTestCase, state: str, result: Result) -> list[str]:
    """What is wrong with a check's answer for this state (empty when it is as intended)."""
    want = case.expectation(state)
    problems = []
    if result.verdict != want.verdict:
        problems.append(f"verdict {result.verdict}, wanted {want.verdict}")
    if want.hint and want.hint not in result.hint:
        problems.append(f"hint lacks {want.hint!r}")
    if want.layer is not None and result.layer != want.layer:
        problems.append(f"layer {result.layer!r}, wanted {want.layer!r}")
    return problems
