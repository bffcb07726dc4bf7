"""Cluster lifecycle through labkit's one kind-CLI module and the whole executor, with stand-in
kind/kubectl/helm/docker scripts on PATH (no Docker): the commands run are the ones the plan
shows."""

import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from labkit.console import StepList
from labkit.errors import LabError
from labkit.kind import backend, cluster, execute, exits
from labkit.kind.actions import CreateCluster, Run
from labkit.kind.plan import Paths, build_plan

KUBECONFIG = {
    "apiVersion": "v1",
    "kind": "Config",
    "current-context": "kind-netlab",
    "preferences": {},
    "clusters": [
        {
            "name": "kind-netlab",
            "cluster": {"server": "https://127.0.0.1:9", "insecure-skip-tls-verify": True},
        }
    ],
    "users": [{"name": "kind-netlab", "user": {"token": "x"}}],
    "contexts": [
        {"name": "kind-netlab", "context": {"cluster": "kind-netlab", "user": "kind-netlab"}}
    ],
}

KIND = r"""#!/bin/sh
echo "kind $*" >> "$FAKE_LOG"
if [ "$1" = version ]; then echo "kind v0.32.0 go1.26.1 linux/amd64"; fi
case "$1 $2" in
  "get clusters") cat "$FAKE_DIR/clusters" 2>/dev/null || echo "No kind clusters found." >&2 ;;
  "create cluster")
    if [ -n "$FAKE_CREATE_FAILS" ]; then
      echo "ERROR: failed to create cluster: port is already allocated" >&2
      exit 1
    fi
    for a in "$@"; do
      case $a in
        --name=*) echo "${a#--name=}" >> "$FAKE_DIR/clusters" ;;
        --kubeconfig=*) cp "$FAKE_DIR/kubeconfig.yaml" "${a#--kubeconfig=}" ;;
      esac
    done ;;
  "get kubeconfig") cat "$FAKE_DIR/kubeconfig.yaml" ;;
  "delete cluster") : > "$FAKE_DIR/clusters" ;;
esac
"""
KUBECTL = r"""#!/bin/sh
echo "kubectl $*" >> "$FAKE_LOG"
case "$*" in
  *"nodes -o json"*) cat "$FAKE_DIR/nodes.json" ;;
  *"daemonsets -o json"*) cat "$FAKE_DIR/daemonsets.json" ;;
  *"deployments -o json"*) cat "$FAKE_DIR/deployments.json" ;;
  *"ingressclasses"*) echo '{"items": [{"metadata": {"name": "cloud-provider-kind"}}]}' ;;
  *) cat > /dev/null ;;
esac
"""
LOGGER = (
    '#!/bin/sh\necho "$(basename "$0") $*" >> "$FAKE_LOG"\n[ "$1" = info ] && echo 28.2.2\nexit 0\n'
)


def ready_nodes():
    return {
        "items": [
            {
                "metadata": {"name": n},
                "status": {"conditions": [{"type": "Ready", "status": "True"}]},
            }
            for n in ("netlab-control-plane", "netlab-worker", "netlab-worker2")
        ]
    }


@pytest.fixture
def fake(tmp_path, monkeypatch):
    bin_dir, data = tmp_path / "bin", tmp_path / "data"
    bin_dir.mkdir()
    data.mkdir()
    for name, text in {"kind": KIND, "kubectl": KUBECTL, "helm": LOGGER, "docker": LOGGER}.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    (data / "kubeconfig.yaml").write_text(yaml.safe_dump(KUBECONFIG))
    (data / "nodes.json").write_text(json.dumps(ready_nodes()))
    ds = {"status": {"desiredNumberScheduled": 3, "numberReady": 3, "updatedNumberScheduled": 3}}
    (data / "daemonsets.json").write_text(
        json.dumps({"items": [{"metadata": {"name": "cilium"}, **ds}]})
    )
    dep = {"spec": {"replicas": 1}, "status": {"availableReplicas": 1, "updatedReplicas": 1}}
    (data / "deployments.json").write_text(
        json.dumps(
            {"items": [{"metadata": {"name": n}, **dep} for n in ("cilium-operator", "coredns")]}
        )
    )
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("FAKE_DIR", str(data))
    monkeypatch.setenv("FAKE_LOG", str(tmp_path / "log"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def log(fake):
    path = fake / "log"
    return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def paths(tmp_path):
    return Paths(
        tmp_path / "state" / "netlab", tmp_path / "home" / ".kube" / "config", tmp_path / "cache"
    )


def test_create_runs_exactly_the_planned_create_command(fake, paths):
    plan = build_plan("netlab", "calico", None, paths=paths)
    create = next(a for a in plan.actions() if isinstance(a, CreateCluster))
    paths.config_file.parent.mkdir(parents=True)
    paths.config_file.write_text(plan.config_yaml)
    cluster.create(
        "netlab",
        config_path=paths.config_file,
        kubeconfig=paths.user_kubeconfig,
        image=create.image,
    )
    created = [line for line in log(fake) if line.startswith("kind create")]
    assert created == [create.shell()]
    assert yaml.safe_load(paths.user_kubeconfig.read_text())["current-context"] == "kind-netlab"
    assert cluster.cluster_names() == ["netlab"]


def test_create_failure_is_a_lab_error_with_docker_state(fake, paths, monkeypatch):
    monkeypatch.setenv("FAKE_CREATE_FAILS", "1")
    with pytest.raises(LabError) as err:
        cluster.create(
            "netlab",
            config_path=paths.config_file,
            kubeconfig=paths.user_kubeconfig,
            image="img",
        )
    assert "kind could not create cluster 'netlab' (exit 1)" in err.value.what
    assert "port is already allocated" in (err.value.output or "")  # kind's own words
    assert "labkit doctor" in err.value.fix
    assert "docker ps -a" in (err.value.output or "")


def test_delete_runs_kind_delete_cluster(fake, paths):
    (Path(os.environ["FAKE_DIR"]) / "clusters").write_text("netlab\n")
    cluster.delete("netlab", kubeconfig=paths.user_kubeconfig)
    assert f"kind delete cluster --name=netlab --kubeconfig={paths.user_kubeconfig}" in log(fake)
    assert cluster.cluster_names() == []


def test_create_without_kind_names_the_install(monkeypatch, tmp_path, paths):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(LabError) as err:
        cluster.create("netlab", config_path=paths.config_file, kubeconfig=tmp_path, image="i")
    assert "`kind` is not on PATH" in err.value.what and "releases/tag/" in err.value.fix


def test_parse_cluster_names():
    assert cluster.parse_cluster_names("a\nnetlab\n\n") == ["a", "netlab"]
    assert cluster.parse_cluster_names("No kind clusters found.\n") == []


def test_names_and_attach_without_kind(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert backend.names() == []
    assert backend.attach("netlab") is None


def test_down_of_a_missing_lab_is_false_and_cleans_files(fake, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    leftover = tmp_path / "xdg" / "labkit" / "kind" / "netlab"
    leftover.mkdir(parents=True)
    (leftover / "kubeconfig").write_text("x")
    assert backend.down("netlab") is False
    assert not leftover.exists()


def test_down_without_docker_keeps_everything(fake, monkeypatch, tmp_path):
    (fake / "bin" / "docker").write_text(
        "#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n"
    )
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    state = tmp_path / "xdg" / "labkit" / "kind" / "netlab"
    state.mkdir(parents=True)
    with pytest.raises(LabError) as err:
        backend.down("netlab")
    assert "No Docker engine answers" in err.value.what
    assert state.exists()


def test_up_refuses_bad_input_before_anything_runs(fake):
    refused: list[dict[str, Any]] = [
        {"cni": "weave"},
        {"cni": "calico", "kube_proxy_mode": "none"},
        {"cni": "calico", "lab_name": "Bad_Name"},
        {"cni": "flannel", "kube_proxy_mode": "userspace"},
    ]
    for kwargs in refused:
        with pytest.raises(LabError):
            backend.up(**kwargs)
    assert log(fake) == []


def test_execute_runs_the_plan_in_order(fake, paths, capsys):
    plan = build_plan("netlab", "cilium", "none", paths=paths)
    execute.execute(plan, StepList(len(plan.steps)))
    ran = [
        line
        for line in log(fake)
        if not line.startswith(("docker", "kind get clusters", "kind version"))
        and not line.endswith("-o json")
    ]  # leave out preflight and the waits' polling
    planned = [shlex.join(a.argv) for a in plan.actions() if isinstance(a, (Run, CreateCluster))]
    assert ran == planned
    polls = [line for line in log(fake) if line.endswith("-o json")]
    assert len(polls) == len(plan.waits()) and all(str(paths.lab_kubeconfig) in p for p in polls)
    assert paths.config_file.read_text() == plan.config_yaml
    assert yaml.safe_load(paths.lab_kubeconfig.read_text()) == KUBECONFIG
    assert oct(paths.lab_kubeconfig.stat().st_mode & 0o777) == "0o600"
    err = capsys.readouterr().err
    assert f"[{len(plan.steps)}/{len(plan.steps)}] Run cloud-provider-kind" in err
    assert "Done in" in err


def test_execute_timeout_removes_the_half_built_cluster(fake, paths, monkeypatch):
    data = Path(os.environ["FAKE_DIR"])
    (data / "daemonsets.json").write_text(json.dumps({"items": []}))  # cilium never appears
    plan = build_plan("netlab", "cilium", None, paths=paths, timeout_s=0)
    with pytest.raises(LabError) as err:
        execute.execute(plan, StepList(len(plan.steps)))
    assert "Timed out" in err.value.what and "daemonset kube-system/cilium not created yet" in (
        err.value.output or ""
    )
    assert "was removed" in err.value.fix
    assert any(line.startswith("kind delete cluster --name=netlab") for line in log(fake))
    assert "was removed" in str(err.value)


def test_execute_can_keep_a_failed_cluster(fake, paths):
    (Path(os.environ["FAKE_DIR"]) / "daemonsets.json").write_text(json.dumps({"items": []}))
    plan = build_plan("netlab", "cilium", None, paths=paths, timeout_s=0)
    with pytest.raises(LabError):
        execute.execute(plan, StepList(len(plan.steps)), keep_failed=True)
    assert not any(line.startswith("kind delete") for line in log(fake))


def _sigterm() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


def _timeout() -> None:
    pytest.fail("Timeout >300.0s")  # what pytest-timeout's signal method raises


def _interrupt() -> None:
    raise KeyboardInterrupt


@pytest.mark.parametrize(
    "way_out,raised",
    [(_interrupt, KeyboardInterrupt), (_timeout, pytest.fail.Exception), (_sigterm, SystemExit)],
)
def test_every_way_out_after_creation_removes_the_cluster(
    fake, paths, monkeypatch, way_out, raised
):
    """pytest-timeout's pytest_timeout.py timeout_sigalrm: the signal method fails the running
    test with pytest.fail (an exception, so the stack unwinds); Ctrl-C is KeyboardInterrupt;
    Python's default SIGTERM ends the process without unwinding (docs.python.org, signal), so
    execute turns it into SystemExit(128 + 15) while it runs, then restores the handler."""
    before = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(execute, "wait_until_ready", lambda *args, **kwargs: way_out())
    plan = build_plan("netlab", "calico", None, paths=paths)
    with pytest.raises(raised) as err:
        execute.execute(plan, StepList(len(plan.steps)))
    if raised is SystemExit:
        assert err.value.code == 143
    assert f"kind delete cluster --name=netlab --kubeconfig={paths.user_kubeconfig}" in log(fake)
    assert cluster.cluster_names() == []
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_way_out_before_creation_removes_nothing(fake, paths, monkeypatch):
    """Only what this run created is removed: an interrupt while the config is written leaves any
    cluster of that name alone (there is none yet)."""
    monkeypatch.setattr(execute, "write_file", lambda action: _interrupt())
    plan = build_plan("netlab", "calico", None, paths=paths)
    with pytest.raises(KeyboardInterrupt):
        execute.execute(plan, StepList(len(plan.steps)))
    assert not any(line.startswith(("kind create", "kind delete")) for line in log(fake))


def test_the_kind_test_tier_hands_in_its_own_creator(fake, paths):
    """pytest-kind-ng's README: KindCluster(name).create(config_file) makes the cluster; the rest
    of the plan (CNI, waits) is labkit's."""
    plan = build_plan("netlab", "cilium", "none", paths=paths)
    handed: list[CreateCluster] = []

    def create(action: CreateCluster) -> None:
        handed.append(action)
        (Path(os.environ["FAKE_DIR"]) / "clusters").write_text("netlab\n")

    execute.execute(plan, StepList(len(plan.steps)), create=create)
    assert handed == [a for a in plan.actions() if isinstance(a, CreateCluster)]
    assert not any(line.startswith("kind create") for line in log(fake))


def test_once_runs_only_when_armed_and_only_once():
    """Python's atexit.register/unregister: an armed cleanup is registered for interpreter exit
    and unregistered once it ran or the work succeeded."""
    ran: list[str] = []
    registered: list[object] = []
    once = exits.Once(lambda: ran.append("x"), registered.append, registered.remove)
    once()
    assert ran == [] and registered == []  # never armed: nothing to clean
    once.arm()
    assert registered == [once]
    once()
    once()
    assert ran == ["x"] and registered == []
    later = exits.Once(lambda: ran.append("y"), registered.append, registered.remove)
    later.arm()
    later.disarm()
    later()
    assert ran == ["x"] and registered == []


@pytest.mark.parametrize("ending", ["sys.exit(0)", "os.kill(os.getpid(), signal.SIGTERM)"])
def test_an_armed_cleanup_runs_when_the_interpreter_ends(tmp_path, ending):
    """docs.python.org atexit: registered functions run at normal interpreter termination, not
    when a signal Python does not handle kills it; under signals_as_exit SIGTERM becomes
    SystemExit, so they run then too."""
    marker = tmp_path / "cleaned"
    script = (
        "import os, signal, sys, time\n"
        "from labkit.kind import exits\n"
        f"once = exits.Once(lambda: open({str(marker)!r}, 'w').write('done'))\n"
        "once.arm()\n"
        "with exits.signals_as_exit():\n"
        f"    {ending}\n"
        "    time.sleep(5)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], timeout=30, capture_output=True)
    assert marker.read_text() == "done", proc.stderr
