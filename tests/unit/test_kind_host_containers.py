"""The containers beside a Kind lab (issue 14.4 and 14.5): the lab's outside client and the
host's one cloud-provider-kind, as plans, dry-run text and docker calls against a fake docker."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Sequence

import pytest

from labkit import cli
from labkit.kind import backend, cluster, hostcontainers, pins
from labkit.kind.actions import StartContainer, Wait
from labkit.kind.plan import Paths, build_plan

CPK = hostcontainers.CLOUD_PROVIDER


@pytest.fixture
def paths(tmp_path):
    return Paths(tmp_path / "state", tmp_path / "kubeconfig", tmp_path / "cache")


class FakeDocker:
    """Stands in for ``tools.run`` of ``docker``: containers by state, ``ps`` answers by label,
    every call recorded."""

    def __init__(self, states: dict[str, str], labelled: dict[str, list[str]] | None = None):
        self.states = states
        self.labelled = labelled or {}
        self.calls: list[list[str]] = []

    def run(self, argv: Sequence[str], **_: object) -> subprocess.CompletedProcess[str]:
        argv = list(argv)
        self.calls.append(argv)
        out, code = "", 0
        if argv[1] == "inspect":
            state = self.states.get(argv[-1], "absent")
            out, code = {"running": ("true\n", 0), "stopped": ("false\n", 0)}.get(state, ("", 1))
        elif argv[1] == "ps":
            label = argv[argv.index("--filter") + 1].removeprefix("label=")
            out = "".join(f"{n}\n" for n in self.labelled.get(label, []))
        elif argv[1] == "run":
            self.states[argv[argv.index("--name") + 1]] = "running"
        elif argv[1] == "rm":
            for name in argv[3:]:
                self.states.pop(name, None)
        return subprocess.CompletedProcess(argv, code, out, "")

    def verbs(self) -> list[str]:
        return [" ".join(c[1:2] + c[-1:]) for c in self.calls]


def test_outside_client_is_agnhost_on_the_kind_network():
    """The sandbox's outside namespace on Kind: a container on the `kind` network (the network
    kind's nodes and cloud-provider-kind's Envoy containers join: pkg/constants FixedNetworkName),
    idling agnhost (`pause`) so probes run the pod probe script there."""
    assert hostcontainers.outside_run_argv("netlab") == (
        "docker", "run", "--detach", "--name", "netlab-outside", "--hostname", "netlab-outside",
        "--network", "kind", "--label", "dev.labkit.kind-lab=netlab",
        "--restart", "unless-stopped", pins.AGNHOST_IMAGE, "pause",
    )  # fmt: skip
    assert hostcontainers.outside_exec_argv("netlab", ["bash", "-c", "true"]) == [
        "docker", "exec", "netlab-outside", "bash", "-c", "true",
    ]  # fmt: skip


def test_cloud_provider_kind_runs_as_its_readme_documents():
    """cloud-provider-kind README "Running via Docker Image": `docker run --network kind -v
    /var/run/docker.sock:/var/run/docker.sock`, the image at registry.k8s.io since v0.4.0."""
    argv = hostcontainers.cloud_provider_run_argv("/var/run/docker.sock")
    assert argv[-1] == pins.CLOUD_PROVIDER_KIND_IMAGE
    assert pins.CLOUD_PROVIDER_KIND_IMAGE == (
        "registry.k8s.io/cloud-provider-kind/cloud-controller-manager:v0.11.1"
    )
    text = shlex.join(argv)
    assert "--network kind" in text and "--volume /var/run/docker.sock:/var/run/docker.sock" in text
    assert f"--name {CPK}" in text and "--detach" in text


@pytest.mark.parametrize(
    "system,docker_host,socket",
    [
        ("Linux", "", "/var/run/docker.sock"),
        ("Linux", "unix:///run/user/1000/docker.sock", "/run/user/1000/docker.sock"),  # rootless
        ("Linux", "tcp://10.0.0.5:2376", "/var/run/docker.sock"),
        ("Darwin", "unix:///Users/me/.docker/run/docker.sock", "/var/run/docker.sock"),
        ("Windows", "", "/var/run/docker.sock"),
    ],
)
def test_the_socket_mounted_is_the_engines(system, docker_host, socket):
    """Docker Desktop maps /var/run/docker.sock into its VM; a rootless Linux engine's socket is
    the one DOCKER_HOST names (Docker docs, "Rootless mode")."""
    env = {"DOCKER_HOST": docker_host} if docker_host else {}
    assert hostcontainers.docker_socket(system, env) == socket


@pytest.mark.parametrize(
    "code,out,state",
    [(0, "true\n", "running"), (0, "false\n", "stopped"), (1, "", "absent")],
)
def test_container_state_from_docker_inspect(code, out, state):
    """`docker inspect --format {{.State.Running}}` prints true/false, and fails for no such
    container."""
    assert hostcontainers.parse_state(code, out) == state


@pytest.mark.parametrize("cni", ["flannel", "calico", "cilium"])
def test_dry_run_shows_the_outside_client_and_cloud_provider_kind(cni, capsys):
    """Issue 14 acceptance: `labkit up --backend kind --dry-run` for each CNI shows
    cloud-provider-kind (and, 14.4, the outside client), waiting for the IngressClass it creates
    (pkg/ingress/controller.go, Controller.Init)."""
    assert cli.main(["up", "--backend", "kind", "--cni", cni, "--name", "dry", "--dry-run"]) == 0
    text = capsys.readouterr().out
    socket = hostcontainers.docker_socket()
    assert shlex.join(hostcontainers.cloud_provider_run_argv(socket)) in text
    assert shlex.join(hostcontainers.outside_run_argv("dry")) in text
    assert f"(skipped while a container {CPK} runs)" in text
    assert "--for=create ingressclass/cloud-provider-kind" in text


def test_two_labs_share_one_cloud_provider_and_keep_their_own_outside(paths, tmp_path):
    """One cloud-provider-kind serves every Kind cluster (its README: it "will monitor all your
    KIND clusters"), so two labs plan the same container; each has its own outside client."""
    other = Paths(tmp_path / "b", tmp_path / "kubeconfig", tmp_path / "cache")
    plans = [build_plan("lab-a", "calico", None, paths=paths)]
    plans.append(build_plan("lab-b", "calico", None, paths=other))
    starts = [[a for a in p.actions() if isinstance(a, StartContainer)] for p in plans]
    (outside_a, cpk_a), (outside_b, cpk_b) = starts
    assert cpk_a == cpk_b and cpk_a.name == CPK
    assert (outside_a.name, outside_b.name) == ("lab-a-outside", "lab-b-outside")


def test_the_plan_waits_for_cloud_provider_kind_after_the_cluster_is_ready(paths):
    """cloud-provider-kind lists Kind clusters every 30 s (pkg/controller/controller.go, Run),
    so the plan starts it once the cluster exists and waits for its IngressClass."""
    plan = build_plan("netlab", "flannel", None, paths=paths)
    titles = [s.title for s in plan.steps]
    assert titles[-3] == "Wait for cluster DNS"
    assert titles[-2] == "Start the outside client netlab-outside on the kind network"
    last = plan.steps[-1].actions
    assert isinstance(last[0], StartContainer) and last[0].name == CPK
    assert isinstance(last[1], Wait) and last[1].what == "ingressclass"
    assert any(c.startswith("docker run --detach --name netlab-outside") for c in plan.commands())


@pytest.mark.parametrize(
    "state,verbs",
    [
        ("running", ["inspect x"]),
        ("stopped", ["inspect x", "rm x", "run pause"]),
        ("absent", ["inspect x", "run pause"]),
    ],
)
def test_start_keeps_a_running_container_and_replaces_a_stopped_one(monkeypatch, state, verbs):
    """A shared cloud-provider-kind (or an outside client) that already runs is kept; a stopped
    one is removed first, since `docker run --name` refuses a name in use."""
    docker = FakeDocker({"x": state})
    monkeypatch.setattr(hostcontainers.tools, "run", docker.run)
    argv = ("docker", "run", "--detach", "--name", "x", "img", "pause")
    assert hostcontainers.start("x", argv) is (state != "running")
    assert docker.verbs() == verbs


def test_down_of_one_lab_keeps_what_other_labs_use(monkeypatch):
    """With another Kind cluster left, only this lab's outside client and the Envoy containers
    labelled for its cluster go (pkg/constants NodeCCMLabelKey); cloud-provider-kind stays."""
    envoy = hostcontainers.ENVOY_LABEL
    docker = FakeDocker(
        {CPK: "running", "a-outside": "running"},
        {
            "dev.labkit.kind-lab=a": ["a-outside"],
            f"{envoy}=a": ["kindccm-aaa"],
            envoy: ["kindccm-aaa", "kindccm-bbb"],
        },
    )
    monkeypatch.setattr(hostcontainers.tools, "run", docker.run)
    assert hostcontainers.remove_for_lab("a", ["b"]) == ["a-outside", "kindccm-aaa"]
    assert docker.calls[-1] == ["docker", "rm", "--force", "a-outside", "kindccm-aaa"]


def test_down_of_the_last_lab_removes_cloud_provider_kind_and_every_envoy(monkeypatch):
    """With no Kind cluster left, every Envoy container goes (as cloud-provider-kind's own
    Controller.cleanup does) and so does cloud-provider-kind."""
    envoy = hostcontainers.ENVOY_LABEL
    docker = FakeDocker(
        {CPK: "running"},
        {"dev.labkit.kind-lab=a": ["a-outside"], envoy: ["kindccm-aaa", "kindccm-old"]},
    )
    monkeypatch.setattr(hostcontainers.tools, "run", docker.run)
    assert hostcontainers.remove_for_lab("a", []) == [
        "a-outside",
        "kindccm-aaa",
        "kindccm-old",
        CPK,
    ]
    assert CPK not in docker.states


def test_nothing_to_remove_runs_no_rm(monkeypatch):
    docker = FakeDocker({})
    monkeypatch.setattr(hostcontainers.tools, "run", docker.run)
    assert hostcontainers.remove_for_lab("a", ["b"]) == []
    assert not any(c[1] == "rm" for c in docker.calls)


def test_labkit_down_removes_the_containers_after_the_cluster(monkeypatch, tmp_path):
    """`labkit down` deletes the cluster, then what stood beside it, judged by the clusters
    left afterwards."""
    left = [["netlab", "other"], ["other"]]
    done: list[tuple[str, object]] = []
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    monkeypatch.setattr(backend.tools, "find", lambda tool: f"/usr/bin/{tool}")
    monkeypatch.setattr(backend, "docker_engine_answers", lambda: (True, "Docker answers"))
    monkeypatch.setattr(cluster, "cluster_names", lambda: left.pop(0))
    monkeypatch.setattr(cluster, "delete", lambda name, **_: done.append(("delete", name)))
    monkeypatch.setattr(
        hostcontainers, "remove_for_lab", lambda name, rest: done.append(("remove", (name, rest)))
    )
    assert backend.down("netlab") is True
    assert done == [("delete", "netlab"), ("remove", ("netlab", ["other"]))]
