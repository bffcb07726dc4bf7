"""``kubectl api-resources`` served on a Lab: the types the sandbox serves, in kubectl's columns
(NAME SHORTNAMES APIVERSION NAMESPACED KIND), grouped as the API server lists them (core, then
apps, networking.k8s.io, discovery.k8s.io) and by name within a group."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from labkit.kubectl import flags, resources
from labkit.kubectl.flags import KubectlError
from labkit.kubectl.outcome import Outcome
from labkit.kubectl.resources import Resource
from labkit.lab import Lab
from labkit.tables import render_table

TABLE = (
    flags.Flag("--namespaced", value=False),
    flags.Flag("--api-group"),
    flags.Flag("--output", "-o"),
    flags.Flag("--no-headers", value=False),
)
SHAPE = "[--namespaced=true|false] [--api-group=GROUP] [-o name] [--no-headers]"
HEADERS = ("NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND")
GROUP_ORDER = ("", "apps", "networking.k8s.io", "discovery.k8s.io", "cilium.io")
"""The order the API server's discovery lists the groups the sandbox serves in (CRDs last)."""
CRD_GROUPS = {"cilium.io": ("cilium", "v2")}
"""Groups served by a CRD: the CNI that installs it, and its version."""


def served(
    namespaced: bool | None = None, group: str | None = None, cni: str | None = None
) -> list[Resource]:
    """The served types in discovery order, optionally only (non-)namespaced or one group; a
    CRD's types only where ``cni`` installs them."""
    chosen = [
        r
        for r in resources.RESOURCES
        if (namespaced is None or r.namespaced == namespaced)
        and (group is None or r.group == group)
        and (r.group not in CRD_GROUPS or CRD_GROUPS[r.group][0] == cni)
    ]
    return sorted(chosen, key=lambda r: (GROUP_ORDER.index(r.group), r.plural))


def api_version(resource: Resource) -> str:
    """``v1``, ``group/v1``, or a CRD's ``group/<its version>``."""
    if resource.group in CRD_GROUPS:
        return f"{resource.group}/{CRD_GROUPS[resource.group][1]}"
    return f"{resource.group}/v1" if resource.group else "v1"


def api_resources(lab: Lab, argv: Sequence[str], stdin: Callable[[], str]) -> Outcome:
    """What ``kubectl api-resources`` prints for the sandbox."""
    help_text = flags.served_help("api-resources", SHAPE, TABLE)
    parsed = flags.parse("api-resources", argv, TABLE, help_text)
    if parsed.words:
        raise KubectlError(
            f"error: Unexpected args: [{' '.join(parsed.words)}]\n"
            "See 'kubectl api-resources -h' for help and examples"
        )
    output = parsed.last("--output")
    if output not in ("", "name"):
        raise KubectlError(
            f"error: labkit kubectl on the sandbox does not serve -o {output} for "
            "api-resources; nearest: -o name (or the default table)"
        )
    namespaced = parsed.on("--namespaced") if parsed.given("--namespaced") else None
    group = parsed.last("--api-group") if parsed.given("--api-group") else None
    chosen = served(namespaced, group, lab.cni)
    if output == "name":
        text = "".join(f"{r.plural}{'.' + r.group if r.group else ''}\n" for r in chosen)
        return Outcome(text, "", 0)
    rows = [
        (r.plural, ",".join(r.short), api_version(r), str(r.namespaced).lower(), r.kind)
        for r in chosen
    ]
    headers = None if parsed.on("--no-headers") else HEADERS
    return Outcome(render_table(headers, rows) + "\n", "", 0)
