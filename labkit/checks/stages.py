"""How a long check reads: named stages run in order, each handing the next its input or ending
the check with a Result, and the Result in the making they all add their steps to.

    return (
        Stages(ask)
        .then(find_source)
        .then(find_destination)
        .then(connect)
        .finish(judge)
    )
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from labkit.checks.result import Result, Step, make_result

T = TypeVar("T")
U = TypeVar("U")


@dataclass
class Report:
    """The Result a check is building: its name, what it is about, the steps so far and how long
    its poll took. Every way the check ends goes through :meth:`result`."""

    check: str
    subject: str
    steps: list[Step] = field(default_factory=list)
    elapsed_s: float | None = None

    def add(
        self, action: str, observed: str, ok: bool | None = None, evidence: tuple[str, ...] = ()
    ) -> Step:
        """Record one step (``ok`` None: context, not graded) and return it."""
        step = Step(action, observed, ok, evidence)
        self.steps.append(step)
        return step

    def result(
        self,
        hint: str = "",
        *,
        verdict: str | None = None,
        failure: str | None = None,
        layer: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> Result:
        """The finished Result: pass when every graded step passed, else fail with ``hint``
        (or the ``verdict`` given, e.g. "partial" where a lab cannot grade)."""
        return make_result(
            self.check,
            self.subject,
            self.steps,
            verdict=verdict,
            hint=hint,
            failure=failure,
            layer=layer,
            data=data,
            elapsed_s=self.elapsed_s,
        )


class Stages(Generic[T]):
    """Stages run in order: each takes what the stage before handed on and returns the next
    input, or a Result that ends the check (the stages after it are skipped)."""

    def __init__(self, value: T | Result) -> None:
        self._value = value

    def then(self, stage: Callable[[T], U | Result]) -> Stages[U]:
        """Run ``stage`` unless an earlier stage already ended the check."""
        if isinstance(self._value, Result):
            return Stages[U](self._value)
        return Stages(stage(self._value))

    def finish(self, stage: Callable[[T], Result]) -> Result:
        """Run the last stage (unless an earlier one ended the check) and return the Result."""
        if isinstance(self._value, Result):
            return self._value
        return stage(self._value)
