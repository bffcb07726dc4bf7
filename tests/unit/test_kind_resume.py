"""Attaching to a Kind lab that already runs (issue 14 follow-up): `labkit up` a second time,
`make lab` a second time and `connect()` start the lab's outside client and the host's
cloud-provider-kind when they are missing, with a fresh up's waits; reads (`labkit status`,
`labkit kubectl`, the widget panel, hubble) start nothing and say what is missing; against fakes
of `docker`, `kind` and `kubectl`."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence

import pytest

from labkit import cli
from labkit.console import StepList
from labkit.kind import backend, cluster, detect, execute, hostcontainers, pins, tools
from labkit.kind.actions import CreateCluster, PlanStep, Run, StartContainer, Wait
from labkit.kind.plan import Paths, build_plan, resume_steps
from labkit.lab import connect_backend

CPK = hostcontainers.CLOUD_PROVIDER
WORKERS = [
    {"metadata": {"name": "netlab-worker", "labels": {"labkit.dev/pool": "apps"}}},
    {"metadata": {"name": "netlab-worker2", "labels": {"labkit.dev/pool": "data"}}},
]


@pytest.fixture
def paths(tmp_path):
    return Paths(tmp_path / "state", tmp_path / "kubeconfig", tmp_path / "cache")


class FakeHost:
    """``tools.run`` for docker, kind and kubectl: containers by state, an IngressClass that
    appears once cloud-provider-kind runs, every command recorded."""

    def __init__(self, states: dict[str, str]) -> None:
        self.states = states
        self.commands: list[str] = []

    def run(self, argv: Sequence[str], **_: object) -> subprocess.CompletedProcess[str]:
        argv = list(argv)
        self.commands.append(" ".join(argv[:2]))
        out, code = "", 0
        if argv[:2] == ["docker", "inspect"]:
            state = self.states.get(argv[-1], "absent")
            out, code = {"running": ("true\n", 0), "stopped": ("false\n", 0)}.get(state, ("", 1))
        elif argv[:2] == ["docker", "run"]:
            self.states[argv[argv.index("--name") + 1]] = "running"
        elif argv[:2] == ["docker", "rm"]:
            for name in argv[3:]:
                self.states.pop(name, None)
        elif argv[:3] == ["kind", "get", "kubeconfig"]:
            out = "apiVersion: v1\nkind: Config\n"
        elif argv[0] == "kubectl":
            served = self.states.get(CPK) == "running"
            items = [{"metadata": {"name": pins.CLOUD_PROVIDER_KIND_INGRESS_CLASS}}]
            out = json.dumps({"items": items if served else []})
        return subprocess.CompletedProcess(argv, code, out, "")

    def started(self) -> list[str]:
        return [c for c in self.commands if c == "docker run"]


class RunningLab:
    """What KindLab.attach finds: a labkit lab whose capabilities follow cloud-provider-kind."""

    backend, cni, kube_proxy_mode = "kind", "calico", "iptables"

    def __init__(self, host: FakeHost, name: str = "netlab") -> None:
        self.name = name
        self.capabilities = detect.capabilities(
            "calico", "iptables", load_balancer=host.states.get(CPK) == "running"
        )

    def get(self, kind, name=None, namespace="default", selector=None):
        return WORKERS


@pytest.fixture
def host(monkeypatch, tmp_path):
    """A host where Kind cluster `netlab` runs; containers beside it are set per test."""
    fake = FakeHost({})
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setattr(tools, "run", fake.run)
    monkeypatch.setattr(tools, "find", lambda tool: f"/usr/bin/{tool}")
    monkeypatch.setattr(cluster, "cluster_names", lambda: ["netlab"])
    monkeypatch.setattr(
        backend.KindLab, "attach", classmethod(lambda cls, name: RunningLab(fake, name))
    )
    monkeypatch.setattr(execute, "POLL_INTERVAL_S", 0.0)
    return fake


def test_the_plan_names_the_steps_a_running_lab_gets(paths):
    """`up` on a running lab runs only the plan's kubeconfig step and the containers beside the
    cluster (cloud-provider-kind's README runs it as `docker run --network kind -v
    /var/run/docker.sock:...`), the same step objects a fresh up runs, and the dry run says
    which."""
    plan = build_plan("netlab", "calico", None, paths=paths)
    assert all(step in plan.steps for step in plan.on_attach)
    assert [s.title for s in plan.on_attach] == [
        "Save the lab's own kubeconfig",
        "Start the outside client netlab-outside on the kind network",
        f"Run cloud-provider-kind {pins.CLOUD_PROVIDER_KIND_VERSION} for LoadBalancer and Ingress",
    ]
    assert plan.on_attach == tuple(resume_steps("netlab", paths, hostcontainers.DOCKER_SOCKET))
    numbers = [plan.steps.index(s) + 1 for s in plan.on_attach]
    assert f"only steps {numbers[0]}, {numbers[1]}, {numbers[2]} run" in plan.render()
    assert numbers[1:] == [len(plan.steps) - 1, len(plan.steps)]


def test_both_containers_keep_a_restart_policy():
    """kind's own nodes use `--restart=on-failure:1` so Docker restarts them after a reboot
    (pkg/cluster/internal/providers/docker/provision.go, commonArgs); ours use unless-stopped,
    which also survives a reboot and brings a crashed controller back, but not a `docker stop`:
    that case is what attaching resumes."""
    for argv in (
        hostcontainers.outside_run_argv("netlab"),
        hostcontainers.cloud_provider_run_argv(hostcontainers.DOCKER_SOCKET),
    ):
        assert argv[argv.index("--restart") + 1] == "unless-stopped"


STATES = [
    ({"netlab-outside": "running", CPK: "running"}, 0),
    ({"netlab-outside": "stopped", CPK: "running"}, 1),
    ({CPK: "running"}, 1),
    ({"netlab-outside": "running"}, 1),
    ({}, 2),
]


@pytest.mark.parametrize("states,started", STATES)
def test_connect_starts_what_is_missing_beside_a_running_lab(host, states, started):
    """connect() on a running Kind lab goes through `up`, which (like sandbox/backend.py `attach`
    restarting a dead agent) starts a missing or stopped outside client or cloud-provider-kind
    and waits for cloud-provider-kind's IngressClass (pkg/ingress/controller.go, Init); a lab
    with both running starts nothing."""
    host.states.update(states)
    lab = connect_backend("kind", "calico", "netlab", quiet=True)
    assert len(host.started()) == started
    assert host.states == {"netlab-outside": "running", CPK: "running"}
    assert lab.capabilities.load_balancer
    if not started:
        assert "docker run" not in host.commands and "kind get" not in host.commands


@pytest.mark.parametrize("states,missing", STATES)
def test_a_read_starts_nothing_and_names_what_is_missing(host, states, missing, caplog):
    """`labkit status`, `labkit kubectl`, the widget panel and hubble attach through the
    backend's attach: a read (kubectl get never changes what it reads) that starts no container
    and waits for nothing, so it costs one `docker inspect` (the outside client's; KindLab.attach
    already asks for cloud-provider-kind's); what is missing is named in one line with the fix."""
    host.states.update(states)
    before = dict(host.states)
    lab = backend.attach("netlab")
    assert lab is not None and host.states == before
    assert host.commands == ["docker inspect"]
    lines = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    if not missing:
        assert lines == []
        return
    [line] = lines
    assert line.endswith(f"`labkit up --name netlab` starts {'them' if missing > 1 else 'it'}.")
    if states.get("netlab-outside") != "running":
        assert "its outside client netlab-outside is not running" in line
    if states.get(CPK) != "running":
        assert (
            "cloud-provider-kind (container labkit-cloud-provider-kind) does not serve it" in line
        )


def test_up_twice_resumes_with_the_plans_steps_and_waits(host, capsys):
    """`make lab` a second time after a `docker stop` of both containers: `labkit up` attaches,
    and shows the resumed steps as a fresh up does, the wait for cloud-provider-kind included."""
    host.states.update({"netlab-outside": "stopped", CPK: "stopped"})
    assert cli.main(["up", "--backend", "kind", "--cni", "calico", "--name", "netlab"]) == 0
    err = capsys.readouterr().err
    assert "already running with calico; attaching to it" in err
    assert "Start the outside client netlab-outside" in err
    assert "Run cloud-provider-kind" in err
    assert host.commands.count("docker rm") == 2 and len(host.started()) == 2
    assert host.commands.count("kind get") == 1  # the lab's kubeconfig, saved afresh


def test_a_resume_that_times_out_names_what_is_not_ready(host, paths, monkeypatch):
    """The resumed wait is the fresh up's: it times out with the list of what is still pending
    (execute.wait_until_ready), and nothing is removed: the lab was there before."""
    monkeypatch.setattr(hostcontainers, "start", lambda name, argv: True)  # never serves
    steps = resume_steps("netlab", paths, hostcontainers.DOCKER_SOCKET, timeout_s=0.0)
    with pytest.raises(Exception) as err:
        execute.resume(steps, str(paths.lab_kubeconfig), StepList(quiet=True))
    assert "cloud-provider-kind serving lab 'netlab'" in str(err.value)
    assert "kind delete" not in " ".join(host.commands)


def test_resume_never_creates_a_cluster(paths):
    """Only a fresh up creates the cluster (and may remove it half-built); a resume has no such
    step to run."""
    create = CreateCluster("netlab", pins.NODE_IMAGE, "c.yaml", "k")
    steps = [PlanStep("Create", (create,))]
    with pytest.raises(ValueError, match="never creates"):
        execute.resume(steps, str(paths.lab_kubeconfig), StepList(quiet=True))


def test_resume_steps_are_a_kubeconfig_save_and_two_starts(paths):
    """The kubeconfig is saved afresh first (`kind get kubeconfig`, cmd/kind/get/kubeconfig), so
    the waits poll the lab even when its state folder was cleared."""
    save, outside, provider = resume_steps("netlab", paths, hostcontainers.DOCKER_SOCKET)
    assert isinstance(save.actions[0], Run)
    assert save.actions[0].stdout_to == str(paths.lab_kubeconfig)
    assert isinstance(outside.actions[0], StartContainer)
    assert [type(a) for a in provider.actions] == [StartContainer, Wait]
