"""cilium-dbg's printers, pure: ``service list``, ``endpoint list`` and ``bpf lb list`` laid out as
cilium/cilium's ``cilium-dbg/cmd`` writes them (Go's tabwriter, minimum width 5, padding 3; the
trailing blanks of its tab-terminated last column are left out)."""

from __future__ import annotations

from collections.abc import Sequence

from labkit.model.ciliumdbg import Endpoint, Frontend
from labkit.tables import align_tabs

PADDING = 3
POLICY = {True: "Enabled", False: "Disabled"}


def _table(lines: Sequence[str]) -> str:
    return "\n".join(align_tabs(lines, PADDING)) + "\n"


def service_list(fronts: Sequence[Frontend]) -> str:
    """``cilium-dbg service list`` (``service_list.go`` ``printServiceList``): the frontend, its
    type and ``N => backend (active)`` per backend, one line each, sorted by frontend."""
    lines = ["Frontend\tService Type\tBackend\t"]
    for front in sorted(fronts, key=lambda f: f.address):
        backends = [f"{i} => {b} (active)" for i, b in enumerate(front.backends, start=1)]
        lines.append(f"{front.address}\t{front.type}\t{backends[0] if backends else ''}\t")
        lines += [f"\t\t{b}\t" for b in backends[1:]]
    return _table(lines)


def endpoint_list(eps: Sequence[Endpoint]) -> str:
    """``cilium-dbg endpoint list`` (``endpoint_list.go`` ``printEndpointList``): two header
    lines, then per endpoint its ID, ingress and egress enforcement, identity, first label,
    IPv6, IPv4 and state, and one line for each further label."""
    lines = [
        "ENDPOINT\tPOLICY (ingress)\tPOLICY (egress)\tIDENTITY\tLABELS (source:key[=value])\t"
        "IPv6\tIPv4\tSTATUS\t",
        "\tENFORCEMENT\tENFORCEMENT\t\t\t\t\t",
    ]
    for ep in sorted(eps, key=lambda e: e.id):
        labels = sorted(ep.labels) or ["no labels"]
        lines.append(
            f"{ep.id}\t{POLICY[ep.ingress]}\t{POLICY[ep.egress]}\t{ep.identity}\t{labels[0]}\t"
            f"\t{ep.ipv4}\t{ep.state}\t"
        )
        lines += [f"\t\t\t\t{label}\t\t\t\t" for label in labels[1:]]
    return _table(lines)


def bpf_lb_list(fronts: Sequence[Frontend]) -> str:
    """``cilium-dbg bpf lb list`` (``bpf_lb_list.go`` ``dumpSVC`` through ``TablePrinter``): one
    row per service map slot, slot 0 the frontend's own entry (``0.0.0.0:0``, its reverse-NAT ID
    and type), slot N its Nth backend; the reverse-NAT ID numbers the frontends in order."""
    lines = ["SERVICE ADDRESS\tBACKEND ADDRESS (REVNAT_ID) (SLOT)\t"]
    for revnat, front in enumerate(sorted(fronts, key=lambda f: f.address), start=1):
        flags = "ClusterIP, non-routable" if front.type == "ClusterIP" else front.type
        rows = {0: f"0.0.0.0:0 ({revnat}) (0) [{flags}]"}
        rows.update({n: f"{b} ({revnat}) ({n})" for n, b in enumerate(front.backends, start=1)})
        lines += [f"{front.address} ({slot})\t{row}\t" for slot, row in sorted(rows.items())]
    return _table(lines)
