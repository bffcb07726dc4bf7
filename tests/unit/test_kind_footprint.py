"""`labkit ls` on Kind: each cluster's CNI, state, age and memory from Docker's own output,
parsed without Docker (tools.run faked)."""

from __future__ import annotations

import subprocess

import pytest

from labkit.errors import LabError
from labkit.kind import footprint

PS = (
    "netlab\tnetlab-control-plane\trunning\t2026-12-06 18:00:05 +0000 UTC\n"
    "netlab\tnetlab-worker\trunning\t2026-12-06 18:00:03 +0000 UTC\n"
    "old\told-control-plane\texited\t2026-12-01 09:00:00 +0000 UTC\n"
    "\tsome-other-container\trunning\t2026-12-06 18:00:00 +0000 UTC\n"
)
STATS = "netlab-control-plane\t612.4MiB / 23.54GiB\nnetlab-worker\t401.2 MiB/23.54 GiB\n"


def test_docker_sizes_in_binary_and_decimal_units():
    """docker stats prints MemUsage with go-units' BytesSize (KiB, MiB, GiB) and, in older
    releases, HumanSize (kB, MB); docs.docker.com `docker container stats` examples."""
    assert footprint.size_mib("612.4MiB") == pytest.approx(612.4)
    assert footprint.size_mib(" 1.5 GiB ") == pytest.approx(1536)
    assert footprint.size_mib("796 KiB") == pytest.approx(796 / 1024)
    assert footprint.size_mib("3.5MB") == pytest.approx(3.5e6 / 1024**2)
    assert footprint.size_mib("--") is None and footprint.size_mib("12 parsecs") is None


def test_nodes_group_by_the_kind_cluster_label():
    """kind labels every node container io.x-k8s.kind.cluster=<name>
    (kind pkg/cluster/internal/providers/docker/constants.go, clusterLabelKey); the earliest
    node's CreatedAt is the cluster's age; a container without the label is not a lab's."""
    clusters = footprint.parse_ps(PS)
    assert sorted(clusters) == ["netlab", "old"]
    assert clusters["netlab"].nodes == ["netlab-control-plane", "netlab-worker"]
    assert clusters["netlab"].created == footprint.docker_time("2026-12-06 18:00:03 +0000 UTC")
    assert footprint.status_of(clusters["old"].states) == "Stopped"
    assert footprint.docker_time("yesterday") is None


@pytest.mark.parametrize(
    "listing, cni",
    [
        ("10-calico.conflist calico-kubeconfig", "calico"),
        ("10-flannel.conflist", "flannel"),
        ("05-cilium.conflist", "cilium"),
        ("10-kindnet.conflist", "kindnet"),
        ("", None),
    ],
)
def test_the_cni_is_named_by_its_conflist(listing, cni):
    """Each installer writes its conflist into /etc/cni/net.d: calico-node's install-cni
    (CNI_CONF_NAME=10-calico.conflist), kube-flannel.yml's install-cni init container
    (10-flannel.conflist), the Cilium agent's write-cni-conf-when-ready (05-cilium.conflist),
    kindnetd (10-kindnet.conflist)."""
    assert footprint.cni_of(listing) == cni


def test_summaries_put_the_facts_together(monkeypatch):
    """One docker ps, one docker stats of the running nodes, one ls per cluster."""
    calls = []

    def run(argv, **kwargs):
        calls.append(argv[:2])
        out = {"ps": PS, "stats": STATS, "exec": "10-calico.conflist\n"}[argv[1]]
        return subprocess.CompletedProcess(argv, 0, out, "")

    monkeypatch.setattr(footprint.tools, "run", run)
    netlab, old, gone = footprint.summaries(["netlab", "old", "gone"])
    assert (netlab.cni, netlab.status) == ("calico", "Running")
    assert netlab.memory_mb == pytest.approx(612.4 + 401.2)
    assert (old.status, old.memory_mb) == ("Stopped", None)
    assert (gone.cni, gone.status, gone.created) == (None, "Unknown", None)
    assert calls.count(["docker", "stats"]) == 1


def test_no_docker_answer_leaves_every_fact_unknown(monkeypatch):
    """The listing never fails for want of Docker: the names stay, the facts are unknown."""

    def run(argv, **kwargs):
        raise LabError("docker is not installed.", "Install Docker.")

    monkeypatch.setattr(footprint.tools, "run", run)
    (lab,) = footprint.summaries(["netlab"])
    assert (lab.name, lab.backend, lab.status, lab.memory_mb) == ("netlab", "kind", "Unknown", None)
