"""Load the checked-in Kind cluster configs (``clusters/<cni>.yaml``) and render them for one
lab."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from labkit.errors import LabError
from labkit.values import validate_cni

CLUSTERS_DIR = Path(__file__).resolve().parents[2] / "clusters"
"""``clusters/`` at the repository root (labkit is installed editable from the clone)."""

POD_SUBNETS = {"flannel": "10.244.0.0/16", "calico": "192.168.0.0/16", "cilium": "10.244.0.0/16"}
CNI_BIN_PATH = "/opt/cni/bin"


def config_path(cni: str, clusters_dir: Path = CLUSTERS_DIR) -> Path:
    """Where the checked-in config for ``cni`` lives."""
    return clusters_dir / f"{validate_cni(cni)}.yaml"


def load(cni: str, clusters_dir: Path = CLUSTERS_DIR) -> dict[str, Any]:
    """Read ``clusters/<cni>.yaml`` as a dict."""
    path = config_path(cni, clusters_dir)
    if not path.is_file():
        raise LabError(
            f"The Kind config {path} is missing.",
            "Run labkit from a full clone of the repository (pip install -e .), "
            "which includes the clusters/ folder.",
        )
    config: dict[str, Any] = yaml.safe_load(path.read_text())
    return config


def render(
    template: dict[str, Any], kube_proxy_mode: str, cni_bin_dir: Path | None = None
) -> dict[str, Any]:
    """The config for one lab: the template with kubeProxyMode set and the CNI plugin mount made
    absolute.

    ``cni_bin_dir`` replaces the hostPath of every mount onto /opt/cni/bin (Flannel's plugin fix);
    it must be given when the template has such a mount.
    """
    config = copy.deepcopy(template)
    config.setdefault("networking", {})["kubeProxyMode"] = kube_proxy_mode
    for node in config.get("nodes") or []:
        for mount in node.get("extraMounts") or []:
            if mount.get("containerPath") == CNI_BIN_PATH:
                if cni_bin_dir is None:
                    raise ValueError("this config mounts CNI plugins; pass cni_bin_dir")
                mount["hostPath"] = str(Path(cni_bin_dir).absolute())
    return config


def mounts_cni_plugins(config: dict[str, Any]) -> bool:
    """Whether any node mounts a plugin folder over /opt/cni/bin."""
    return any(
        m.get("containerPath") == CNI_BIN_PATH
        for n in config.get("nodes") or []
        for m in n.get("extraMounts") or []
    )


def pod_subnet(config: dict[str, Any]) -> str:
    """The cluster's podSubnet (kind's default when the config leaves it out)."""
    return (config.get("networking") or {}).get("podSubnet") or "10.244.0.0/16"


def to_yaml(config: dict[str, Any], header: str = "") -> str:
    """YAML text of a config, keys in their written order, with an optional comment header."""
    body = yaml.safe_dump(config, sort_keys=False, default_flow_style=False)
    lines = "".join(f"# {line}\n" for line in header.splitlines()) if header else ""
    return lines + body
