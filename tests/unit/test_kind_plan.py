"""The whole install plan per CNI and kube-proxy mode, and its dry-run text (no Docker)."""

from pathlib import Path

import pytest
import yaml

from labkit.errors import LabError
from labkit.kind import pins
from labkit.kind.actions import CreateCluster, Fetch, Run, Wait, WriteFile
from labkit.kind.plan import Paths, build_plan, default_paths

COMBOS = [
    (cni, mode)
    for cni in ("flannel", "calico", "cilium")
    for mode in ("iptables", "nftables", "ipvs")
]
COMBOS.append(("cilium", "none"))


@pytest.fixture
def paths(tmp_path):
    return Paths(
        state_dir=tmp_path / "state" / "netlab",
        user_kubeconfig=tmp_path / "kube" / "config",
        cache_dir=tmp_path / "cache",
    )


def kinds(plan):
    return [type(a).__name__ for a in plan.actions()]


@pytest.mark.parametrize("cni,mode", COMBOS)
def test_every_plan_writes_config_creates_cluster_saves_kubeconfig_and_waits(cni, mode, paths):
    plan = build_plan("netlab", cni, mode, paths=paths)
    assert plan.kube_proxy_mode == mode
    actions = plan.actions()
    create = [a for a in actions if isinstance(a, CreateCluster)]
    assert len(create) == 1
    assert create[0].argv == (
        "kind",
        "create",
        "cluster",
        "--name=netlab",
        f"--kubeconfig={paths.user_kubeconfig}",
        f"--image={pins.NODE_IMAGE}",
        "--config",
        str(paths.config_file),
    )
    write = [a for a in actions if isinstance(a, WriteFile)]
    assert write[0].path == str(paths.config_file)
    assert yaml.safe_load(write[0].content) == plan.config
    assert plan.config["networking"]["kubeProxyMode"] == mode
    # the config is written before kind reads it, and the kubeconfig saved right after creation
    order = kinds(plan)
    assert order.index("WriteFile") < order.index("CreateCluster")
    save = actions[order.index("CreateCluster") + 1]
    assert isinstance(save, Run)
    assert save.argv == ("kind", "get", "kubeconfig", "--name", "netlab")
    assert save.stdout_to == str(paths.lab_kubeconfig)
    waits = plan.waits()
    assert waits[-2].what == "deployment" and waits[-2].names == ("coredns",)
    assert waits[-1].what == "ingressclass" and waits[-1].names == ("cloud-provider-kind",)
    node_wait = [w for w in waits if w.what == "nodes"]
    assert len(node_wait) == 1 and node_wait[0].count == 3
    assert all(w.timeout_s > 0 for w in waits)


@pytest.mark.parametrize("cni,mode", COMBOS)
def test_every_kubectl_and_helm_command_targets_the_labs_kubeconfig(cni, mode, paths):
    plan = build_plan("netlab", cni, mode, paths=paths)
    for action in plan.actions():
        if isinstance(action, Run) and action.argv[0] in ("kubectl", "helm"):
            i = action.argv.index("--kubeconfig")
            assert action.argv[i + 1] == str(paths.lab_kubeconfig)


def test_flannel_plan(paths):
    plan = build_plan("netlab", "flannel", None, paths=paths, arch="arm64")
    fetch = plan.actions()[0]
    assert isinstance(fetch, Fetch)
    assert fetch.url == (
        "https://github.com/containernetworking/plugins/releases/download/v1.9.1/"
        "cni-plugins-linux-arm64-v1.9.1.tgz"
    )
    assert fetch.sha256 == pins.CNI_PLUGINS_SHA256["arm64"]
    assert fetch.extract_to == str(paths.cni_bin)
    assert Path(fetch.cache_file).parent == paths.cache_dir
    for node in plan.config["nodes"]:
        assert node["extraMounts"][0]["hostPath"] == str(paths.cni_bin)
    runs = [a.argv for a in plan.actions() if isinstance(a, Run)]
    assert (
        "kubectl",
        "--kubeconfig",
        str(paths.lab_kubeconfig),
        "apply",
        "-f",
        "https://raw.githubusercontent.com/flannel-io/flannel/v0.28.9/Documentation/kube-flannel.yml",
    ) in runs
    assert plan.manifest_urls == (pins.FLANNEL_MANIFEST_URL,)
    assert plan.helm_values == ()
    assert plan.required_tools == ("kind", "kubectl")
    ds = [w for w in plan.waits() if w.what == "daemonset"]
    assert [(w.namespace, w.names) for w in ds] == [("kube-flannel", ("kube-flannel-ds",))]


def test_calico_plan_creates_crds_operator_then_resources(paths):
    plan = build_plan("netlab", "calico", "nftables", paths=paths)
    runs = [a for a in plan.actions() if isinstance(a, Run)][1:]  # after `kind get kubeconfig`
    assert [r.argv[3:] for r in runs] == [
        (
            "create",
            "-f",
            "https://raw.githubusercontent.com/projectcalico/calico/v3.32.1/manifests/v1_crd_projectcalico_org.yaml",
        ),
        (
            "create",
            "-f",
            "https://raw.githubusercontent.com/projectcalico/calico/v3.32.1/manifests/tigera-operator.yaml",
        ),
        ("create", "-f", "-"),
    ]
    resources = list(yaml.safe_load_all(runs[2].stdin or ""))
    installation = resources[0]
    assert installation["kind"] == "Installation"
    network = installation["spec"]["calicoNetwork"]
    assert (
        network["ipPools"][0]["cidr"] == plan.config["networking"]["podSubnet"] == "192.168.0.0/16"
    )
    assert network["linuxDataplane"] == "Nftables"
    # the operator (and its CRDs) must be up before the Installation is created
    order = plan.actions()
    i_resources = order.index(runs[2])
    before = [a for a in order[:i_resources] if isinstance(a, Wait)]
    assert {w.what for w in before} == {"deployment", "crd"}
    assert "installations.operator.tigera.io" in [n for w in before for n in w.names]
    tigera = [w for w in plan.waits() if w.what == "tigerastatus"]
    assert tigera and set(tigera[0].names) >= {"calico", "apiserver"}
    assert plan.manifest_urls == (pins.CALICO_CRDS_URL, pins.CALICO_OPERATOR_URL)
    assert not any(a.argv[3] == "apply" for a in runs)  # CRDs are too big for apply


def test_calico_iptables_keeps_default_dataplane(paths):
    plan = build_plan("netlab", "calico", "iptables", paths=paths)
    stdin = next(a.stdin for a in plan.actions() if isinstance(a, Run) and a.stdin)
    assert "linuxDataplane" not in stdin


@pytest.mark.parametrize(
    "mode,hubble", [("iptables", False), ("none", False), ("nftables", True), ("none", True)]
)
def test_cilium_plan_helm_command_and_values(mode, hubble, paths):
    plan = build_plan("lab2", "cilium", mode, paths=paths, hubble=hubble)
    helm = [a for a in plan.actions() if isinstance(a, Run) and a.argv[0] == "helm"]
    assert len(helm) == 1
    argv = helm[0].argv
    assert argv[:12] == (
        "helm",
        "install",
        "cilium",
        "cilium",
        "--repo",
        "https://helm.cilium.io/",
        "--version",
        "1.20.0",
        "--namespace",
        "kube-system",
        "--kubeconfig",
        str(paths.lab_kubeconfig),
    )
    sets = [argv[i + 1] for i, a in enumerate(argv) if a == "--set"]
    assert sets == [f"{k}={v}" for k, v in plan.helm_values]
    values = dict(plan.helm_values)
    assert values["image.pullPolicy"] == "IfNotPresent" and values["ipam.mode"] == "kubernetes"
    if mode == "none":
        assert values["kubeProxyReplacement"] == "true"
        assert values["k8sServiceHost"] == "lab2-control-plane"
        assert values["k8sServicePort"] == "6443"
    else:
        assert "kubeProxyReplacement" not in values
    assert ("hubble.relay.enabled" in values) is hubble and (
        "hubble.ui.enabled" in values
    ) is hubble
    deployments = [n for w in plan.waits() if w.what == "deployment" for n in w.names]
    assert "cilium-operator" in deployments
    assert ("hubble-relay" in deployments) is hubble
    assert plan.required_tools == ("kind", "kubectl", "helm")


def test_nodes_wait_comes_after_the_cni_install_and_before_its_pods(paths):
    for cni in ("flannel", "calico", "cilium"):
        plan = build_plan("netlab", cni, None, paths=paths)
        actions = plan.actions()
        nodes = next(i for i, a in enumerate(actions) if isinstance(a, Wait) and a.what == "nodes")
        last_install = max(i for i, a in enumerate(actions) if isinstance(a, Run))
        assert last_install < nodes
        assert any(isinstance(a, Wait) and a.what == "daemonset" for a in actions[nodes:])


def test_timeout_override_applies_to_every_wait(paths):
    plan = build_plan("netlab", "calico", None, paths=paths, timeout_s=42)
    assert {w.timeout_s for w in plan.waits()} == {42}


@pytest.mark.parametrize("cni,mode", [("flannel", "none"), ("calico", "none")])
def test_refusals(cni, mode, paths):
    with pytest.raises(LabError):
        build_plan("netlab", cni, mode, paths=paths)


def test_hubble_needs_cilium(paths):
    with pytest.raises(LabError) as err:
        build_plan("netlab", "calico", None, paths=paths, hubble=True)
    assert "cilium" in err.value.fix


def test_unknown_cni_and_bad_name_refused(paths):
    with pytest.raises(LabError):
        build_plan("netlab", "weave", None, paths=paths)
    with pytest.raises(LabError):
        build_plan("Net_Lab", "calico", None, paths=paths)


def test_flannel_on_an_unpinned_architecture_is_refused(paths):
    with pytest.raises(LabError) as err:
        build_plan("netlab", "flannel", None, paths=paths, arch="riscv64")
    assert "calico" in err.value.fix


@pytest.mark.parametrize("cni,mode", COMBOS)
def test_render_shows_everything(cni, mode, paths):
    plan = build_plan("netlab", cni, mode, paths=paths, hubble=(cni == "cilium"))
    text = plan.render()
    assert pins.NODE_IMAGE in text and pins.KIND_VERSION in text
    assert plan.config_yaml.splitlines()[1] in text  # the rendered config is shown
    assert f"kubeProxyMode: {mode}" in text
    for command in plan.commands():
        assert command.splitlines()[0] in text
    for url in plan.manifest_urls:
        assert url in text
    for key, value in plan.helm_values:
        assert f"  {key}={value}" in text
    for wait in plan.waits():
        assert wait.title in text and f"timeout {int(wait.timeout_s)} s" in text
        for line in wait.kubectl_equivalent(str(paths.lab_kubeconfig)):
            assert line in text
    assert "Docker engine" in text and "maps no host port" in text
    assert "hostPort" not in text and "extraPortMappings" not in text


def test_two_labs_planned_side_by_side_share_no_host_port(tmp_path):
    """kind's v1alpha4 Node.extraPortMappings binds hostPort on the host, and
    Networking.apiServerPort left unset makes kind pick a free random port
    (pkg/apis/config/v1alpha4/types.go): two labs' configs claim no host port at all."""
    for cni in ("flannel", "calico", "cilium"):
        claimed = []
        for name in ("netlab", "start-here"):
            paths = Paths(tmp_path / name, tmp_path / "kube" / "config", tmp_path / "cache")
            config = build_plan(name, cni, None, paths=paths, arch="amd64").config
            claimed += [
                m["hostPort"] for n in config["nodes"] for m in n.get("extraPortMappings") or []
            ]
            assert "apiServerPort" not in config["networking"]
            the_plan = build_plan(name, cni, None, paths=paths, arch="amd64")
            for action in the_plan.actions():
                argv = getattr(action, "argv", ())
                if argv[:1] == ("docker",):  # a container of the lab (e.g. a cloud provider)
                    claimed += [a for a in argv if a in ("-p", "--publish", "-P")]
        assert claimed == [], cni


def test_render_shows_calico_resources_inline(paths):
    text = build_plan("netlab", "calico", None, paths=paths).render()
    assert (
        "create -f - <<'EOF'" in text
        and "cidr: 192.168.0.0/16" in text
        and "\n         EOF" in text
    )


def test_default_paths_follow_xdg_and_kubeconfig():
    env = {"HOME": "/home/u", "XDG_STATE_HOME": "/st", "KUBECONFIG": "/k/one:/k/two"}
    paths = default_paths("netlab", env)
    assert paths.state_dir == Path("/st/labkit/kind/netlab")
    assert paths.cache_dir == Path("/home/u/.cache/labkit")
    assert paths.user_kubeconfig == Path("/k/one")
    assert paths.config_file == Path("/st/labkit/kind/netlab/kind-config.yaml")
    bare = default_paths("x", {"HOME": "/home/u"})
    assert bare.user_kubeconfig == Path("/home/u/.kube/config")
    assert bare.state_dir == Path("/home/u/.local/state/labkit/kind/x")
