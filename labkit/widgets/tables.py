"""The lab panel's HTML: the status's tables, left-aligned under their headers, in the theme's
text colour. A narrow window (1024 px with the file browser open leaves about 600 px) wraps a
long cell inside its column, so the columns stay aligned and nothing is clipped or scrolled."""

from __future__ import annotations

import html
from typing import Any

from labkit.checks.result import TEXT
from labkit.status import StatusView, Table
from labkit.tables import EMPTY

_CELL = "text-align:left;vertical-align:top;padding:1px 10px 1px 0;overflow-wrap:anywhere"


def cell_text(value: Any) -> str:
    """A cell as `labkit kubectl get` prints it (``<none>`` for nothing)."""
    return EMPTY if value is None else str(value)


def table_html(title: str, table: Table) -> str:
    """One table with its title; no rows says so instead of an empty grid."""
    e = html.escape
    if not table.rows:
        return f"<div style='margin:6px 0'><b>{e(title)}</b>: none</div>"
    head = "".join(f"<th style='{_CELL}'>{e(h)}</th>" for h in table.headers)
    rows = "".join(
        "<tr>" + "".join(f"<td style='{_CELL}'>{e(cell_text(v))}</td>" for v in row) + "</tr>"
        for row in table.rows
    )
    return (
        f"<div style='margin:6px 0'><b>{e(title)}</b>"
        "<table style='border-collapse:collapse;font-size:90%'>"
        f"<tr>{head}</tr>{rows}</table></div>"
    )


def capability_words(view: StatusView) -> list[str]:
    """What this lab enforces and offers, in words."""
    caps = view.capabilities
    yes = {True: "yes", False: "no"}
    return [
        f"kube-proxy {caps.kube_proxy_mode}",
        f"NetworkPolicy {'enforced' if caps.network_policy else 'NOT enforced'}",
        f"LoadBalancer {yes[caps.load_balancer]}",
        f"Ingress {yes[caps.ingress]}",
        f"outside addresses {yes[caps.outside_addresses]}",
    ]


def status_html(view: StatusView) -> str:
    """The whole status: the lab line, its capabilities, nodes, pods and Services."""
    e = html.escape
    by_hand = (
        f"<div>network namespaces made by hand: {e('; '.join(view.by_hand))}</div>"
        if view.by_hand
        else ""
    )
    title, *notes = view.header.splitlines()
    return (
        f"<div class='lk-status' style='color:{TEXT};font-family:sans-serif'>"
        f"<div><b>{e(title)}</b></div>"
        + "".join(f"<div>{e(note)}</div>" for note in notes)
        + f"<div>{e(' · '.join(capability_words(view)))}</div>"
        + table_html("Nodes", view.nodes)
        + table_html("Pods", view.pods)
        + table_html("Services", view.services)
        + by_hand
        + "</div>"
    )


def message_html(*lines: str, error: bool = False) -> str:
    """Lines of the panel's own (a lab that is down, a LabError, a cell's reason) in the theme's
    text colour; an error is marked by a red rule, never by red text on a pale box."""
    rule = "#cf222e" if error else "#57606a"
    body = "<br>".join(html.escape(line) for line in lines)
    return f"<div style='color:{TEXT};border-left:4px solid {rule};padding:2px 8px'>{body}</div>"
