"""A Kind lab on a learner's laptop (issue 14): what `labkit up --backend kind --dry-run` prints,
with no Docker engine needed."""

from __future__ import annotations

import json
import platform

import pytest
import yaml

from labkit import cli
from labkit.errors import LabError
from labkit.kind import backend, cluster, detect, dockerhost, execute, pins
from labkit.kind.actions import Fetch

CNIS = ("flannel", "calico", "cilium")


def _dry_run_config(capsys, cni: str, name: str) -> tuple[str, dict]:
    assert cli.main(["up", "--backend", "kind", "--cni", cni, "--name", name, "--dry-run"]) == 0
    text = capsys.readouterr().out
    rendered = [line[4:] for line in text.splitlines() if line.startswith("  | ")]
    return text, yaml.safe_load("\n".join(rendered))


@pytest.mark.parametrize("cni", CNIS)
def test_dry_run_maps_no_host_port(cni, capsys, monkeypatch, tmp_path):
    """kind's v1alpha4 Node.extraPortMappings (pkg/apis/config/v1alpha4/types.go) is what binds
    host ports: the printed config of every CNI has none, so 80/443 stay free."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    text, config = _dry_run_config(capsys, cni, "netlab")
    assert config["kind"] == "Cluster" and len(config["nodes"]) == 3
    assert all("extraPortMappings" not in node for node in config["nodes"])
    assert "hostPort" not in text and "127.0.0.1:80" not in text
    assert "ports 80 and 443" not in text


# ------------------------------------------------------------------ docker info: the engine's facts

LINUX_INFO = {
    "ServerVersion": "28.2.2",
    "Driver": "overlay2",
    "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"]],
    "CgroupDriver": "systemd",
    "CgroupVersion": "2",
    "KernelVersion": "6.8.0-45-generic",
    "OperatingSystem": "Ubuntu 24.04.1 LTS",
    "OSType": "linux",
    "Architecture": "x86_64",
}


def info(**changes) -> str:
    return json.dumps({**LINUX_INFO, **changes})


def test_parse_reads_the_fields_kinds_docker_provider_reads():
    """kind's pkg/cluster/internal/providers/docker/provider.go `info()` unmarshals
    `docker info --format '{{json .}}'` and takes Cgroup2 = CgroupVersion == "2"."""
    host = dockerhost.parse(info())
    assert host == dockerhost.DockerHost(
        "2", "x86_64", "6.8.0-45-generic", "Ubuntu 24.04.1 LTS", False
    )
    assert host.kernel_version == (6, 8, 0) and not host.wsl2
    assert dockerhost.parse(info(CgroupVersion="1")).cgroup_version == "1"
    assert dockerhost.parse("28.2.2") is None and dockerhost.parse("[]") is None
    assert host.mem_total is None  # LINUX_INFO leaves MemTotal out
    assert dockerhost.parse(info(MemTotal=8323567616)).mem_total == 8323567616  # moby's int64
    assert dockerhost.parse(info(MemTotal="8 GiB")).mem_total is None
    assert dockerhost.parse(info(MemTotal=True)).mem_total is None
    assert dockerhost.parse(info(MemTotal=0)).mem_total is None
    bare = dockerhost.parse("{}")
    assert bare is not None and bare.kernel_version is None and bare.cgroup_version == ""


def test_parse_recognises_wsl2_and_the_containerd_image_store():
    """moby's daemon/containerd/service.go `LayerStoreStatus` reports DriverStatus
    [["driver-type", "io.containerd.snapshotter.v1"]] when images live in containerd's store."""
    host = dockerhost.parse(
        info(
            KernelVersion="5.15.153.1-microsoft-standard-WSL2",
            OperatingSystem="Docker Desktop",
            Driver="overlayfs",
            DriverStatus=[["driver-type", "io.containerd.snapshotter.v1"]],
        )
    )
    assert host.wsl2 and host.containerd_store and host.kernel_version == (5, 15, 153)


@pytest.mark.parametrize(
    "machine,arch",
    [("x86_64", "amd64"), ("AMD64", "amd64"), ("aarch64", "arm64"), ("arm64", "arm64")],
)
def test_platform_arch(machine, arch):
    """Docker's Architecture is the engine host's `uname -m` (moby pkg/platform); release files
    of containernetworking/plugins are named cni-plugins-linux-<amd64|arm64>-<version>.tgz."""
    assert dockerhost.platform_arch(machine) == arch


def test_platform_arch_unknown_names_the_way_out():
    """containernetworking/plugins publishes linux tarballs for amd64 and arm64 among others,
    but labkit pins checksums for those two only (Flannel's kind e2e pins the same two)."""
    with pytest.raises(LabError) as err:
        dockerhost.platform_arch("s390x")
    assert "s390x" in err.value.what and "calico" in err.value.fix


def test_flannel_plugins_follow_dockers_architecture_not_pythons(monkeypatch):
    """An x86_64 Python under Rosetta on an arm64 Mac: `docker info` says aarch64, so the plan
    fetches the arm64 plugins (Flannel's kind e2e mounts the nodes' own architecture's set)."""
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(dockerhost, "read", lambda: dockerhost.parse(info(Architecture="aarch64")))
    fetch = next(a for a in backend.plan("netlab", "flannel").actions() if isinstance(a, Fetch))
    assert "cni-plugins-linux-arm64-" in fetch.url
    assert fetch.sha256 == pins.CNI_PLUGINS_SHA256["arm64"]
    monkeypatch.setattr(dockerhost, "read", lambda: None)  # a dry run without an engine
    fetch = next(a for a in backend.plan("netlab", "flannel").actions() if isinstance(a, Fetch))
    assert "cni-plugins-linux-amd64-" in fetch.url


# ------------------------------------------------------------------ `make lab` twice: up attaches

WORKERS = [
    {"metadata": {"name": "netlab-control-plane", "labels": {"ingress-ready": "true"}}},
    {"metadata": {"name": "netlab-worker", "labels": {"labkit.dev/pool": "apps"}}},
    {"metadata": {"name": "netlab-worker2", "labels": {"labkit.dev/pool": "data"}}},
]


class RunningLab:
    name, backend, kube_proxy_mode = "netlab", "kind", "iptables"

    def __init__(self, cni, nodes):
        self.cni, self.nodes = cni, nodes
        self.capabilities = detect.capabilities(cni, "iptables", load_balancer=True)

    def get(self, kind, name=None, namespace="default", selector=None):
        assert (kind, namespace) == ("nodes", None)
        return self.nodes


@pytest.fixture
def running(monkeypatch):
    """A Kind cluster `netlab` exists; what KindLab.attach finds in it is set per test."""
    found = {"lab": RunningLab("calico", WORKERS)}
    monkeypatch.setattr(cluster, "cluster_names", lambda: ["netlab"])
    monkeypatch.setattr(backend.KindLab, "attach", classmethod(lambda cls, name: found["lab"]))
    # its outside client and cloud-provider-kind run (test_kind_resume covers them missing)
    monkeypatch.setattr(backend.hostcontainers, "container_state", lambda name: "running")

    def no_create(plan, steps=None):
        raise AssertionError("up must not create a cluster that runs already")

    monkeypatch.setattr(execute, "execute", no_create)
    return found


def test_up_twice_attaches_and_says_so(running, capsys):
    """sandbox/backend.py `up` reuses a lab of the same name and CNI, as lab.Backend.up promises;
    the Kind backend does the same, so `make lab` goes on to JupyterLab the second time."""
    assert cli.main(["up", "--backend", "kind", "--cni", "calico", "--name", "netlab"]) == 0
    out = capsys.readouterr()
    assert "Kind lab 'netlab' is already running with calico; attaching to it" in out.err
    assert "lab 'netlab' is up on kind with calico" in out.out
    assert backend.up("netlab", "calico") is running["lab"]
    assert (
        cli.main(["up", "--backend", "kind", "--cni", "calico", "--kube-proxy-mode", "nftables"])
        == 0
    )
    assert "runs kube-proxy mode iptables, not nftables; using it" in capsys.readouterr().err


def test_up_refuses_a_cluster_of_that_name_labkit_did_not_make(running):
    """kind's v1alpha4 Node.Labels (pkg/apis/config/v1alpha4/types.go) put clusters/*.yaml's
    labkit.dev/pool labels on the workers; a cluster without them, or without the DaemonSet
    of Flannel/Calico/Cilium's own manifests, is someone else's and is left alone."""
    running["lab"] = RunningLab("calico", [{"metadata": {"name": "netlab-control-plane"}}])
    with pytest.raises(LabError) as err:
        backend.up("netlab", "calico")
    assert "labkit did not make it" in err.value.what
    assert "kind delete cluster --name netlab" in err.value.fix and "--name" in err.value.fix
    running["lab"] = None  # no CNI DaemonSet of ours at all
    with pytest.raises(LabError) as err:
        backend.up("netlab", "calico")
    assert "labkit did not make it" in err.value.what


def test_up_refuses_the_same_name_with_another_cni(running):
    """sandbox/backend.py `_refuse_another_cni` refuses a second CNI under one name; the Kind
    backend does too, since kind cannot swap a cluster's CNI in place."""
    running["lab"] = RunningLab("flannel", WORKERS)
    with pytest.raises(LabError) as err:
        backend.up("netlab", "calico")
    assert err.value.what == "Kind lab 'netlab' is already running with flannel, not calico."
    assert "--cni flannel" in err.value.fix and "labkit down --name netlab" in err.value.fix


def test_up_creates_when_no_cluster_has_that_name(running, monkeypatch):
    """`kind get clusters` (kind's cmd/kind/get/clusters) not listing the name: up creates."""
    monkeypatch.setattr(cluster, "cluster_names", lambda: ["other"])
    with pytest.raises(AssertionError, match="must not create"):
        backend.up("netlab", "calico")  # reached execute: it would create the cluster


@pytest.mark.parametrize(
    "labels,ours",
    [
        ([{"labkit.dev/pool": "apps"}, {"labkit.dev/pool": "data"}, {}], True),
        ([{"labkit.dev/pool": "apps"}, {}], False),
        ([{}, {}, {}], False),
        ([], False),
    ],
)
def test_made_by_labkit_reads_the_worker_pools(labels, ours):
    """Node labels as kind's v1alpha4 Node.Labels writes them: both worker pools must be there."""
    nodes = [{"metadata": {"name": f"n{i}", "labels": lab}} for i, lab in enumerate(labels)]
    assert detect.made_by_labkit(nodes) is ours
