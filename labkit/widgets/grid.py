"""The reachability grid of a ``policy_matrix`` Result: per port, rows from and columns to, each
cell the observed mark of the text table (``.`` connected, ``r`` refused, ``X`` blocked, ``!``
differs from the expected, ``-`` port not declared); differing cells stand out, and a click shows
the cell's expected and observed answers and the policy model's reason."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import ipywidgets as w

from labkit.checks.policy import passed_outcome
from labkit.checks.result import Result
from labkit.widgets.tables import message_html

UNDECLARED = "-"


@dataclass(frozen=True)
class GridCell:
    """One cell: ``src -> dst:port`` by display name, what was expected (None: port not
    declared at the destination), what the probe saw, and the model's reason."""

    src: str
    dst: str
    port: str
    expected: bool | None
    observed: str | None
    reason: str

    @property
    def key(self) -> str:
        """The cell as the Result's data names it."""
        return cell_key(self.src, self.dst, self.port)

    @property
    def differs(self) -> bool:
        """Whether the probe got through the policies when it should not, or the other way."""
        if self.expected is None or self.observed is None:
            return False
        return passed_outcome(self.observed) != self.expected

    @property
    def mark(self) -> str:
        """The text table's mark for the cell."""
        if self.expected is None or self.observed is None:
            return UNDECLARED
        base = (
            "." if self.observed == "connected" else "r" if passed_outcome(self.observed) else "X"
        )
        return base + ("!" if self.differs else "")

    def explain(self) -> list[str]:
        """What a click shows: the cell, expected against observed, then the reason's lines."""
        if self.expected is None:
            return [f"{self.key}: the port is not declared by {self.dst}; not probed"]
        want = "allowed" if self.expected else "blocked"
        verdict = "differs from" if self.differs else "matches"
        return [
            f"{self.key}: expected {want}, observed {self.observed} ({verdict} the expected)",
            *self.reason.splitlines(),
        ]


def cell_key(src: str, dst: str, port: str) -> str:
    """``default/a -> default/b:80/TCP``, as policy_matrix's data keys its cells."""
    return f"{src} -> {dst}:{port}"


def grid_cells(data: Mapping[str, Any]) -> dict[str, list[list[GridCell]]]:
    """The cells of a policy_matrix Result's data, per port: a row per source pod, a cell per
    destination pod, in the matrix's order."""
    pods, expected = data["pods"], data["expected"]
    observed, reasons = data["observed"], data.get("reasons", {})
    return {
        port: [
            [
                GridCell(
                    src,
                    dst,
                    port,
                    expected.get(cell_key(src, dst, port)),
                    observed.get(cell_key(src, dst, port)),
                    reasons.get(cell_key(src, dst, port), ""),
                )
                for dst in pods
            ]
            for src in pods
        ]
        for port in data["ports"]
    }


def is_matrix(result: Result) -> bool:
    """Whether a Result carries a reachability matrix to draw."""
    return result.check == "policy_matrix" and {"pods", "ports", "expected"} <= set(result.data)


class ReachabilityGrid(w.VBox):
    """Buttons in a grid per port (rows from, columns to); differing cells in the danger style;
    a click shows the cell's reason below."""

    def __init__(self, result: Result) -> None:
        if not is_matrix(result):
            raise ValueError(f"{result.check} is not a policy_matrix result with a matrix")
        self.cells = grid_cells(result.data)
        self.reason = w.HTML(
            message_html("Click a cell to see why it is allowed or blocked."),
            layout=w.Layout(width="auto"),
        )
        self.reason.add_class("lk-grid-reason")
        self.buttons: dict[str, w.Button] = {}
        tables = [self._port_grid(port, rows) for port, rows in self.cells.items()]
        legend = w.HTML(
            ". connected, r refused, X blocked, ! differs from the expected, - not declared"
        )
        super().__init__([*tables, legend, self.reason], layout=w.Layout(width="auto"))
        self.add_class("lk-grid")

    def _port_grid(self, port: str, rows: list[list[GridCell]]) -> w.Widget:
        pods = [row[0].src for row in rows]
        head = [w.Label(f"{port}: from \\ to")] + [
            w.Label(str(i + 1), tooltip=pod) for i, pod in enumerate(pods)
        ]
        items: list[w.Widget] = list(head)
        for i, row in enumerate(rows):
            items.append(w.Label(f"({i + 1}) {pods[i]}"))
            for cell in row:
                button = w.Button(
                    description=cell.mark,
                    tooltip=cell.key,
                    button_style="danger" if cell.differs else "",
                    layout=w.Layout(width="3.5em"),
                )
                button.on_click(lambda _button, c=cell: self.show(c))
                self.buttons[cell.key] = button
                items.append(button)
        columns = "max-content " + " ".join(["max-content"] * len(pods))
        return w.GridBox(items, layout=w.Layout(grid_template_columns=columns, grid_gap="2px"))

    def show(self, cell: GridCell) -> None:
        """Show a cell's expected and observed answers and its reason."""
        self.reason.value = message_html(*cell.explain(), error=cell.differs)
