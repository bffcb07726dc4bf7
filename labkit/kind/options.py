"""Which lab names, CNIs and kube-proxy modes the Kind backend accepts, and why it refuses
others."""

from __future__ import annotations

import re

from labkit.errors import LabError
from labkit.values import CNIS, KUBE_PROXY_MODES, validate_cni

DEFAULT_KUBE_PROXY_MODE = "iptables"
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
MAX_NAME_LENGTH = 49
"""Node names append "-control-plane" (14 characters) and must stay within a 63-character
hostname."""


def validate_name(name: str) -> str:
    """Refuse a lab name that kind or Docker would reject as a node/container name."""
    if not _NAME.match(name or "") or len(name) > MAX_NAME_LENGTH:
        raise LabError(
            f"Lab name {name!r} cannot be used as a Kind cluster name.",
            "Use lower-case letters, digits and dashes, starting and ending with a letter or "
            f"digit, at most {MAX_NAME_LENGTH} characters (e.g. --name netlab).",
        )
    return name


def resolve_kube_proxy_mode(cni: str, mode: str | None) -> str:
    """The kube-proxy mode to use for ``cni``: ``None`` means iptables; bad pairs are refused."""
    validate_cni(cni)
    chosen = DEFAULT_KUBE_PROXY_MODE if mode in (None, "") else str(mode).strip().lower()
    if chosen not in KUBE_PROXY_MODES:
        raise LabError(
            f"Unknown kube-proxy mode {mode!r}.",
            f"Choose one of: {', '.join(KUBE_PROXY_MODES)} (iptables is the default).",
        )
    if chosen == "none" and cni != "cilium":
        raise LabError(
            f"kube-proxy mode 'none' removes kube-proxy, and {cni} has no replacement for it, "
            "so Services would stop working.",
            f"Keep kube-proxy with --kube-proxy-mode iptables (or nftables) for {cni}, "
            "or use --cni cilium, whose eBPF kube-proxy replacement takes over Services.",
        )
    return chosen


def mode_notes(cni: str, mode: str) -> list[str]:
    """Remarks the plan prints about a CNI/mode pair (caveats, what changes)."""
    notes: list[str] = []
    if mode == "ipvs":
        notes.append(
            "ipvs needs the ip_vs kernel modules on the Docker host; the sandbox backend has "
            "no IPVS, so lessons that compare rules expect iptables or nftables."
        )
    if mode == "nftables" and cni == "calico":
        notes.append(
            "Calico runs its nftables data plane (linuxDataplane: Nftables) to match kube-proxy."
        )
    if mode == "none":
        notes.append("No kube-proxy: Cilium's eBPF kube-proxy replacement serves every Service.")
    if cni == "flannel":
        notes.append(
            "Flannel does not enforce NetworkPolicy: policies are stored but never block traffic."
        )
    return notes


__all__ = [
    "CNIS",
    "DEFAULT_KUBE_PROXY_MODE",
    "mode_notes",
    "resolve_kube_proxy_mode",
    "validate_name",
]
