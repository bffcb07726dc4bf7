"""The lessons' nbval pass on a Cilium lab (issue 19): a pytest plugin (``-p tests.nbval_cilium``)
for the run the Makefile's ``nbval-cilium`` target makes against lab LABKIT_LAB brought up with
``--cni cilium`` (kube-proxy replaced). Every cell runs and every marked output is compared with
the outputs stored from the Calico lab, as in the Calico pass, but for the cells listed here,
which teach one CNI's own machinery by design: each is skipped there, with its reason.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CILIUM_EXCEPTIONS: dict[tuple[str, str], str] = {
    ("05-kube-proxy.ipynb", "c05-16"): "exercise 05.1 grades the KUBE-SVC and KUBE-SEP chains "
    "kube-proxy writes for a Service, and Cilium's kube-proxy replacement writes none (its "
    "check says so, partial; section 5 shows what replaces them)",
    ("05-kube-proxy.ipynb", "c05-17"): "the result of exercise 05.1, skipped above",
    ("05-kube-proxy.ipynb", "c05-36"): "exercise 05.3 grades kube-proxy's REJECT rule for a "
    "Service without endpoints, and Cilium's kube-proxy replacement writes no KUBE-* rule",
    ("05-kube-proxy.ipynb", "c05-37"): "the result of exercise 05.3, skipped above",
    ("07-pod-network-namespace.ipynb", "274e56a0"): "section 5 wires a namespace as Calico's CNI "
    "plugin does (an address of the node's blackhole /26 block, 169.254.1.1 by proxy ARP): a "
    "Cilium node has no such block",
    ("07-pod-network-namespace.ipynb", "323db406"): "exercise 07.4 grades that Calico-style "
    "namespace, which reaches no ClusterIP on Cilium, whose Service translation is in each "
    "pod's own namespace (socket LB)",
    ("07-pod-network-namespace.ipynb", "63da22ba"): "the result of exercise 07.4, skipped above",
    ("07-pod-network-namespace.ipynb", "4fc2d075"): "shows the Calico-style namespace of section "
    "5 and the node's cali routes",
    ("07-pod-network-namespace.ipynb", "31ea8660"): "probes through the proxy ARP of section 5's "
    "Calico-style veth",
}
"""The cells the Cilium pass leaves out, by lesson file and cell id, each with its reason."""


def lab_cni(lab_name: str) -> str | None:
    """The CNI of the running lab ``lab_name`` (None: no such lab)."""
    from labkit.lab import list_labs

    return next((lab.cni for lab in list_labs() if lab.name == lab_name), None)


def pytest_configure(config: pytest.Config) -> None:
    """Refuse to run unless LABKIT_LAB names a running Cilium lab: this pass means nothing
    elsewhere."""
    lab_name = os.environ.get("LABKIT_LAB", "")
    cni = lab_cni(lab_name) if lab_name else None
    if cni != "cilium":
        raise pytest.UsageError(
            f"The Cilium pass needs LABKIT_LAB naming a running Cilium lab; lab "
            f"{lab_name or '(unset)'} runs {cni or 'nothing'}. Bring one up first: "
            "labkit up --cni cilium --name NAME."
        )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip each listed cell with its reason; a listed cell missing from a collected lesson fails
    the run (the list went stale)."""
    seen: set[tuple[str, str]] = set()
    lessons = set()
    for item in items:
        lesson = Path(str(item.path)).name
        lessons.add(lesson)
        cell = getattr(item, "cell", None)
        key = (lesson, str(cell.get("id", "")) if cell is not None else "")
        if key in CILIUM_EXCEPTIONS:
            seen.add(key)
            item.add_marker(pytest.mark.skip(reason=f"on cilium: {CILIUM_EXCEPTIONS[key]}"))
    stale = sorted(k for k in CILIUM_EXCEPTIONS if k[0] in lessons and k not in seen)
    if stale:
        raise pytest.UsageError(f"CILIUM_EXCEPTIONS names cells no lesson has: {stale}")
