"""Cluster lifecycle through pytest-kind's KindCluster and the whole executor, with stand-in
kind/kubectl/helm/docker scripts on PATH (no Docker): the commands run are the ones the plan
shows."""

import json
import os
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from labkit.console import StepList
from labkit.errors import LabError
from labkit.kind import backend, cluster, execute
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
    monkeypatch.setattr(execute, "port_in_use", lambda host, port: False)
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


def test_kind_cluster_runs_exactly_the_planned_create_command(fake, paths):
    plan = build_plan("netlab", "calico", None, paths=paths)
    create = next(a for a in plan.actions() if isinstance(a, CreateCluster))
    paths.config_file.parent.mkdir(parents=True)
    paths.config_file.write_text(plan.config_yaml)
    cluster.create(
        "netlab",
        config_path=paths.config_file,
        kubeconfig=paths.user_kubeconfig,
        image=create.image,
        state_dir=paths.state_dir,
    )
    created = [line for line in log(fake) if line.startswith("kind create")]
    assert created == [create.shell()]
    assert yaml.safe_load(paths.user_kubeconfig.read_text())["current-context"] == "kind-netlab"
    assert not (fake / ".pytest-kind").exists()  # nothing written to the current folder
    assert cluster.cluster_names() == ["netlab"]


def test_create_failure_is_a_lab_error_with_docker_state(fake, paths, monkeypatch):
    monkeypatch.setenv("FAKE_CREATE_FAILS", "1")
    with pytest.raises(LabError) as err:
        cluster.create(
            "netlab",
            config_path=paths.config_file,
            kubeconfig=paths.user_kubeconfig,
            image="img",
            state_dir=paths.state_dir,
        )
    assert "kind could not create cluster 'netlab' (exit 1)" in err.value.what
    assert "labkit doctor" in err.value.fix
    assert "docker ps -a" in (err.value.output or "")


def test_delete_through_kind_cluster(fake, paths):
    (Path(os.environ["FAKE_DIR"]) / "clusters").write_text("netlab\n")
    cluster.delete("netlab", kubeconfig=paths.user_kubeconfig, state_dir=paths.state_dir)
    assert f"kind delete cluster --name=netlab --kubeconfig={paths.user_kubeconfig}" in log(fake)
    assert cluster.cluster_names() == []


def test_kind_cluster_kubectl_uses_path_tool_and_lab_kubeconfig(fake, paths):
    handle = cluster.open_cluster(
        "netlab", kubeconfig=paths.user_kubeconfig, image="img", state_dir=paths.state_dir
    )
    assert (
        handle.kind_path == fake / "bin" / "kind"
        and handle.kubectl_path == fake / "bin" / "kubectl"
    )
    handle.kubectl("get", "pods")
    assert "kubectl get pods" in log(fake)


def test_open_cluster_without_kind(monkeypatch, tmp_path, paths):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(LabError) as err:
        cluster.open_cluster(
            "netlab", kubeconfig=paths.user_kubeconfig, image="i", state_dir=paths.state_dir
        )
    assert "kind" in err.value.what


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
        if not line.startswith(("docker", "kind get clusters")) and not line.endswith("-o json")
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
