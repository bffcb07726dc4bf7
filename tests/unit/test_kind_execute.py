"""Carrying out a plan without Docker: waits and their timeout report, the plugin download, the
preflight refusals (with stand-in tools on PATH), and the command runner's errors."""

import hashlib
import io
import json
import tarfile

import pytest

from labkit.errors import LabError
from labkit.kind import cluster, execute, tools
from labkit.kind.actions import Fetch, Run, Wait
from labkit.kind.plan import Paths, build_plan


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def node(name, ready):
    return {
        "metadata": {"name": name},
        "status": {
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "reason": "KubeletNotReady",
                }
            ]
        },
    }


def test_wait_returns_when_ready():
    clock = FakeClock()
    states = iter(
        [
            [node("a", False)],
            [node("a", False), node("b", True)],
            [node("a", True), node("b", True)],
        ]
    )
    reports = []
    waited = execute.wait_until_ready(
        Wait("nodes", "2 nodes Ready", 60, count=2),
        lambda w: (next(states), ""),
        report=lambda p, w: reports.append((list(p), w)),
        clock=clock,
        sleep=clock.sleep,
    )
    assert waited == 4.0
    assert reports[0][0] == ["1 of 2 nodes registered", "node a NotReady: KubeletNotReady"]
    assert reports[1] == (["node a NotReady: KubeletNotReady"], 2.0)


def test_wait_times_out_listing_what_is_not_ready():
    clock = FakeClock()
    wait = Wait(
        "daemonset", "calico-node ready", 10, namespace="calico-system", names=("calico-node",)
    )
    ds = {
        "metadata": {"name": "calico-node"},
        "status": {"desiredNumberScheduled": 3, "numberReady": 1, "updatedNumberScheduled": 3},
    }
    with pytest.raises(LabError) as err:
        execute.wait_until_ready(
            wait,
            lambda w: ([ds], ""),
            diagnostics=lambda: "pods: calico-node-x ImagePullBackOff",
            clock=clock,
            sleep=clock.sleep,
        )
    assert err.value.what == "Timed out after 10 s waiting for calico-node ready."
    assert "daemonset calico-system/calico-node: 1/3 pods ready" in (err.value.output or "")
    assert "ImagePullBackOff" in (err.value.output or "")
    assert "labkit down" in err.value.fix


def test_wait_reports_objects_that_cannot_be_listed_yet():
    clock = FakeClock()
    with pytest.raises(LabError) as err:
        execute.wait_until_ready(
            Wait("tigerastatus", "calico", 4, names=("calico",)),
            lambda w: (None, "cannot list tigerastatuses yet (no such resource)"),
            clock=clock,
            sleep=clock.sleep,
        )
    assert "cannot list tigerastatuses yet" in (err.value.output or "")


def _tarball(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"./{name}")
            info.size = len(data)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class _Opener:
    def __init__(self, payload):
        self.payload = payload
        self.calls = 0

    def __call__(self, url, timeout):
        self.calls += 1
        return io.BytesIO(self.payload)


def test_fetch_verifies_caches_and_unpacks(tmp_path):
    payload = _tarball({"bridge": b"#!bridge", "host-local": b"#!hl", "loopback": b"#!lo"})
    action = Fetch(
        "https://example.invalid/plugins.tgz",
        hashlib.sha256(payload).hexdigest(),
        str(tmp_path / "cache" / "p.tgz"),
        str(tmp_path / "cni-bin"),
    )
    opener = _Opener(payload)
    execute.fetch_and_unpack(action, opener)
    execute.fetch_and_unpack(action, opener)  # second time from the cache
    assert opener.calls == 1
    assert (tmp_path / "cni-bin" / "bridge").read_bytes() == b"#!bridge"
    assert (tmp_path / "cni-bin" / "loopback").is_file()


def test_fetch_refuses_a_wrong_checksum_and_keeps_nothing(tmp_path):
    payload = _tarball({"bridge": b"x"})
    action = Fetch(
        "https://example.invalid/p.tgz", "0" * 64, str(tmp_path / "p.tgz"), str(tmp_path / "bin")
    )
    with pytest.raises(LabError) as err:
        execute.fetch_and_unpack(action, _Opener(payload))
    assert "SHA-256" in err.value.what
    assert not (tmp_path / "p.tgz").exists() and not (tmp_path / "p.tgz.part").exists()


def test_fetch_requires_the_bridge_plugin(tmp_path):
    payload = _tarball({"loopback": b"x"})
    action = Fetch(
        "u", hashlib.sha256(payload).hexdigest(), str(tmp_path / "p.tgz"), str(tmp_path / "bin")
    )
    with pytest.raises(LabError) as err:
        execute.fetch_and_unpack(action, _Opener(payload))
    assert "bridge" in err.value.what


def test_fetch_network_failure(tmp_path):
    def broken(url, timeout):
        raise OSError("Name or service not known")

    action = Fetch(
        "https://example.invalid/p.tgz", "0" * 64, str(tmp_path / "p.tgz"), str(tmp_path / "bin")
    )
    with pytest.raises(LabError) as err:
        execute.fetch_and_unpack(action, broken)
    assert "Could not download" in err.value.what


def test_run_command_saves_stdout_privately(tmp_path):
    target = tmp_path / "deep" / "kubeconfig"
    out = execute.run_command(Run(("sh", "-c", "echo apiVersion: v1"), stdout_to=str(target)))
    assert out == "apiVersion: v1\n" and target.read_text() == out
    assert target.stat().st_mode & 0o777 == 0o600


def test_tools_run_failure_carries_output():
    with pytest.raises(LabError) as err:
        tools.run(["sh", "-c", "echo partial; echo boom >&2; exit 3"])
    assert "exit 3" in err.value.what
    assert "partial" in (err.value.output or "") and "boom" in (err.value.output or "")


def test_tools_run_timeout():
    with pytest.raises(LabError) as err:
        tools.run(["sleep", "5"], timeout=0.2)
    assert "did not finish" in err.value.what


def test_tools_find_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(LabError) as err:
        tools.find("kind")
    assert "`kind` is not on PATH" in err.value.what and "v0.32.0" in err.value.fix


def test_tail_keeps_the_end():
    text = "\n".join(f"line {i}" for i in range(100))
    assert tools.tail(text, 3) == "... (97 earlier lines omitted)\nline 97\nline 98\nline 99"


# ------------------------------------------------------------- preflight with stand-in tools


DOCKER = r"""#!/bin/sh
[ "$1" = info ] || exit 1
case "$3" in
  "{{json .}}") echo "{\"CgroupVersion\": \"${FAKE_CGROUP:-2}\", \"Architecture\": \"x86_64\",
    \"KernelVersion\": \"${FAKE_KERNEL:-6.8.0-45-generic}\", \"OperatingSystem\": \"Ubuntu\"}" ;;
  *) echo 28.2.2 ;;
esac
"""


@pytest.fixture
def fake_tools(tmp_path, monkeypatch):
    """kind, kubectl, helm and docker stand-ins: docker answers, `kind get clusters` lists
    $FAKE_CLUSTERS."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scripts = {
        "docker": DOCKER,
        "kind": '#!/bin/sh\nif [ "$1 $2" = "get clusters" ]; then\n'
        '  if [ -n "$FAKE_CLUSTERS" ]; then printf "%s\\n" $FAKE_CLUSTERS;'
        ' else echo "No kind clusters found." >&2; fi\nfi\n'
        'if [ "$1" = version ]; then echo "kind ${FAKE_KIND_VERSION:-v0.32.0} go1.26"; fi\n',
        "kubectl": "#!/bin/sh\nexit 0\n",
        "helm": "#!/bin/sh\nexit 0\n",
    }
    for name, text in scripts.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    return bin_dir


@pytest.fixture
def paths(tmp_path):
    return Paths(tmp_path / "state", tmp_path / "kube" / "config", tmp_path / "cache")


def test_preflight_passes_with_everything_in_place(fake_tools, paths):
    execute.preflight(build_plan("netlab", "cilium", None, paths=paths))


def test_preflight_refuses_a_name_clash(fake_tools, paths, monkeypatch):
    monkeypatch.setenv("FAKE_CLUSTERS", "other netlab")
    assert cluster.cluster_names() == ["other", "netlab"]
    with pytest.raises(LabError) as err:
        execute.preflight(build_plan("netlab", "calico", None, paths=paths))
    assert err.value.what == "A Kind cluster named 'netlab' already exists."
    assert "labkit down --name netlab" in err.value.fix


def test_preflight_refuses_a_cgroup_v1_engine(fake_tools, paths, monkeypatch):
    """KEP-5573 (kubernetes/enhancements keps/sig-node/5573-remove-cgroup-v1): kubelet's
    failCgroupV1 defaults to true from 1.35, so the 1.36 node image cannot start on cgroup v1,
    while kind's create.go `validateProvider` only warns; labkit refuses before creating."""
    monkeypatch.setenv("FAKE_CGROUP", "1")
    with pytest.raises(LabError) as err:
        execute.preflight(build_plan("netlab", "calico", None, paths=paths))
    assert "cgroup v1" in err.value.what and "failCgroupV1" in err.value.what
    assert "systemd.unified_cgroup_hierarchy=1" in err.value.fix and "sandbox" in err.value.fix
    monkeypatch.setenv("FAKE_KERNEL", "5.15.153.1-microsoft-standard-WSL2")
    with pytest.raises(LabError) as err:
        execute.preflight(build_plan("netlab", "calico", None, paths=paths))
    assert "cgroup_no_v1=all" in err.value.fix and ".wslconfig" in err.value.fix


@pytest.mark.parametrize("old", ["v0.31.0", "v0.30.0", "v0.17.0"])
def test_preflight_refuses_a_kind_older_than_the_node_image_needs(
    fake_tools, paths, monkeypatch, old
):
    """kind v0.32.0's pkg/cluster/internal/kubeadm/config.go `Config` picks the v1beta4 template
    for Kubernetes v1.36.0+ (commit "start using v1beta4 in v1.36.0+"); v0.31.0 only has the
    v1beta3 one, so an older kind is refused, naming the release to install."""
    monkeypatch.setenv("FAKE_KIND_VERSION", old)
    with pytest.raises(LabError) as err:
        execute.preflight(build_plan("netlab", "cilium", None, paths=paths))
    assert f"kind {old} is older than v0.32.0" in err.value.what
    assert "v1beta3" in err.value.what
    assert "Install kind v0.32.0" in err.value.fix
    monkeypatch.setenv("FAKE_KIND_VERSION", "v0.33.1")
    execute.preflight(build_plan("netlab", "cilium", None, paths=paths))


def test_preflight_refuses_without_docker_engine(fake_tools, paths):
    (fake_tools / "docker").write_text(
        "#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n"
    )
    with pytest.raises(LabError) as err:
        execute.preflight(build_plan("netlab", "flannel", None, paths=paths, arch="amd64"))
    assert "No Docker engine answers" in err.value.what and "sandbox" in err.value.fix


def test_preflight_needs_helm_for_cilium_only(fake_tools, paths):
    (fake_tools / "helm").unlink()
    execute.preflight(build_plan("netlab", "calico", None, paths=paths))
    with pytest.raises(LabError) as err:
        execute.preflight(build_plan("netlab", "cilium", None, paths=paths))
    assert "`helm` is not on PATH" in err.value.what


def test_list_objects_reads_kubectl_json(fake_tools):
    (fake_tools / "kubectl").write_text(
        "#!/bin/sh\necho '" + json.dumps({"items": [{"metadata": {"name": "n1"}}]}) + "'\n"
    )
    objs, why = execute.list_objects(Wait("nodes", "n", 1, count=1), "/k")
    assert objs == [{"metadata": {"name": "n1"}}] and why == ""
    (fake_tools / "kubectl").write_text(
        "#!/bin/sh\necho 'error: the server doesn'\"'\"'t have a resource type' >&2\nexit 1\n"
    )
    objs, why = execute.list_objects(Wait("tigerastatus", "t", 1, names=("calico",)), "/k")
    assert objs is None and "tigerastatuses.operator.tigera.io" in why
