"""The checked-in Kind configs and how labkit renders them (no Docker)."""

from pathlib import Path

import pytest
import yaml

from labkit.errors import LabError
from labkit.kind import config, pins

CNIS = ("flannel", "calico", "cilium")


@pytest.mark.parametrize("cni", CNIS)
def test_checked_in_config_shape(cni):
    cfg = config.load(cni)
    assert cfg["kind"] == "Cluster"
    assert cfg["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    net = cfg["networking"]
    assert net["disableDefaultCNI"] is True
    assert net["podSubnet"] == config.POD_SUBNETS[cni]
    assert net["serviceSubnet"] == "10.96.0.0/16"
    assert [n["role"] for n in cfg["nodes"]] == ["control-plane", "worker", "worker"]
    assert all(n["image"] == pins.NODE_IMAGE for n in cfg["nodes"])
    assert "@sha256:" in pins.NODE_IMAGE and pins.NODE_IMAGE.startswith("kindest/node:v1.36.1@")


@pytest.mark.parametrize("cni", CNIS)
def test_node_labels_and_no_host_ports(cni):
    """kind's v1alpha4 Node.extraPortMappings (pkg/apis/config/v1alpha4/types.go) binds host
    ports; none is mapped, so several labs (and rootless Docker) can run side by side."""
    cp, w1, w2 = config.load(cni)["nodes"]
    assert cp["labels"] == {"ingress-ready": "true"}
    assert w1["labels"] == {"labkit.dev/pool": "apps"}
    assert w2["labels"] == {"labkit.dev/pool": "data"}
    assert all("extraPortMappings" not in node for node in (cp, w1, w2))
    assert "apiServerPort" not in config.load(cni)["networking"]  # kind picks a free port


@pytest.mark.parametrize("cni", CNIS)
def test_labels_use_kinds_native_field_not_kubeadm_patches(cni):
    text = config.config_path(cni).read_text()
    assert "kubeadmConfigPatches" not in text
    assert "node-labels" not in text


def test_only_flannel_mounts_cni_plugins_on_every_node():
    flannel = config.load("flannel")
    assert config.mounts_cni_plugins(flannel)
    for node in flannel["nodes"]:
        assert node["extraMounts"] == [
            {"hostPath": "./.labkit/cni-bin", "containerPath": "/opt/cni/bin"}
        ]
    assert not config.mounts_cni_plugins(config.load("calico"))
    assert not config.mounts_cni_plugins(config.load("cilium"))


def test_render_sets_mode_and_absolute_plugin_folder_without_touching_template(tmp_path):
    template = config.load("flannel")
    before = yaml.safe_dump(template)
    rendered = config.render(template, "nftables", tmp_path / "cni-bin")
    assert rendered["networking"]["kubeProxyMode"] == "nftables"
    for node in rendered["nodes"]:
        assert node["extraMounts"][0]["hostPath"] == str(tmp_path / "cni-bin")
        assert Path(node["extraMounts"][0]["hostPath"]).is_absolute()
    assert yaml.safe_dump(template) == before


def test_render_without_plugin_folder_is_a_programming_error():
    with pytest.raises(ValueError):
        config.render(config.load("flannel"), "iptables", None)


@pytest.mark.parametrize("cni", ("calico", "cilium"))
def test_render_other_cnis_need_no_folder(cni):
    rendered = config.render(config.load(cni), "iptables")
    assert rendered["networking"]["kubeProxyMode"] == "iptables"
    assert config.pod_subnet(rendered) == config.POD_SUBNETS[cni]


def test_to_yaml_round_trips_with_header():
    cfg = config.render(config.load("calico"), "ipvs")
    text = config.to_yaml(cfg, header="line one\nline two")
    assert text.startswith("# line one\n# line two\n")
    assert yaml.safe_load(text) == cfg


def test_missing_config_is_a_lab_error(tmp_path):
    with pytest.raises(LabError) as err:
        config.load("calico", clusters_dir=tmp_path)
    assert "calico.yaml" in err.value.what and "clone" in err.value.fix


def test_pod_subnet_default_when_absent():
    assert config.pod_subnet({"networking": {}}) == "10.244.0.0/16"
    assert config.pod_subnet({}) == "10.244.0.0/16"
