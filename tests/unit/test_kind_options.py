"""Which names, CNIs and kube-proxy modes the Kind backend accepts, and the reasons it refuses."""

import pytest

from labkit.errors import LabError
from labkit.kind.options import MAX_NAME_LENGTH, mode_notes, resolve_kube_proxy_mode, validate_name


@pytest.mark.parametrize("cni", ["flannel", "calico", "cilium"])
@pytest.mark.parametrize(
    "mode,expected",
    [
        (None, "iptables"),
        ("", "iptables"),
        ("iptables", "iptables"),
        ("nftables", "nftables"),
        ("ipvs", "ipvs"),
        ("NFTables", "nftables"),
    ],
)
def test_accepted_modes(cni, mode, expected):
    assert resolve_kube_proxy_mode(cni, mode) == expected


def test_none_only_with_cilium():
    assert resolve_kube_proxy_mode("cilium", "none") == "none"


@pytest.mark.parametrize("cni", ["flannel", "calico"])
def test_none_refused_with_reason_and_alternative(cni):
    with pytest.raises(LabError) as err:
        resolve_kube_proxy_mode(cni, "none")
    assert cni in err.value.what and "Services" in err.value.what
    assert "--cni cilium" in err.value.fix and "iptables" in err.value.fix


def test_unknown_mode_lists_choices():
    with pytest.raises(LabError) as err:
        resolve_kube_proxy_mode("calico", "userspace")
    assert "'userspace'" in err.value.what
    for mode in ("iptables", "nftables", "ipvs", "none"):
        assert mode in err.value.fix


def test_unknown_cni_refused():
    with pytest.raises(LabError) as err:
        resolve_kube_proxy_mode("weave", None)
    assert "weave" in err.value.what and "calico" in err.value.fix


@pytest.mark.parametrize("name", ["netlab", "a", "lab-2", "x" * MAX_NAME_LENGTH])
def test_good_names(name):
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "NetLab", "-lab", "lab-", "lab_1", "lab.1", "x" * (MAX_NAME_LENGTH + 1)]
)
def test_bad_names(name):
    with pytest.raises(LabError) as err:
        validate_name(name)
    assert "--name" in err.value.fix


def test_notes_explain_ipvs_nftables_none_and_flannel():
    assert any("IPVS" in n for n in mode_notes("calico", "ipvs"))
    assert any("Nftables" in n for n in mode_notes("calico", "nftables"))
    assert not any("Nftables" in n for n in mode_notes("cilium", "nftables"))
    assert any("replacement" in n for n in mode_notes("cilium", "none"))
    assert any("NetworkPolicy" in n for n in mode_notes("flannel", "iptables"))
    assert mode_notes("calico", "iptables") == []
