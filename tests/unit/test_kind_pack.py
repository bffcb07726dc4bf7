"""The offline pack for Kind (issue 15.2): the pack plan per CNI, `labkit pack` with faked docker,
helm and downloads, pack.json's check (good pack, each kind of damage), and `up --pack`'s plan."""

import hashlib
import io
import json
import subprocess
from pathlib import Path

import pytest

from labkit.errors import LabError
from labkit.kind import download, pack, packfile, packrun, pins
from labkit.kind.actions import CreateCluster, Download, Fetch, Run, Unpack
from labkit.kind.plan import Paths, build_plan

CNIS = ("flannel", "calico", "cilium")


def _argvs(steps):
    return [a.argv for s in steps for a in s.actions if isinstance(a, Run)]


@pytest.mark.parametrize("cni", CNIS)
@pytest.mark.parametrize("platform", pack.PLATFORMS)
def test_pack_plan_saves_every_image_for_one_platform(cni, platform):
    """kind#3795 (kubernetes-sigs/kind, "Unable to load images"): `kind load` runs `ctr images
    import --all-platforms`, which fails on a multi-platform archive; so each image is pulled and
    saved with `docker image save --platform` (docker/cli image save, API 1.48) for one platform."""
    steps = pack.pack_steps("/p", (cni,), platform)
    argvs = _argvs(steps)
    wanted = [pins.NODE_IMAGE, pins.CLOUD_PROVIDER_KIND_IMAGE, pins.AGNHOST_IMAGE]
    wanted += list(pins.CNI_IMAGES[cni])
    pulls = [a[-1] for a in argvs if a[:2] == ("docker", "pull")]
    assert pulls == wanted
    assert all(a[2:4] == ("--platform", platform) for a in argvs if a[:2] == ("docker", "pull"))
    saves = [a for a in argvs if a[:3] == ("docker", "image", "save")]
    assert len(saves) == len(wanted)
    assert all(a[3:5] == ("--platform", platform) for a in saves)
    files = [a[a.index("--output") + 1] for a in saves]
    assert len(set(files)) == len(files)  # one archive per image
    for save in saves:  # saved by tag: a pulled digest reference is tagged first
        assert "@" not in save[-1]
    tags = {a[3]: a[2] for a in argvs if a[:2] == ("docker", "tag")}
    assert tags == {r.split("@")[0]: r for r in wanted if "@" in r}


def test_pack_plan_downloads_pinned_files_and_pulls_the_chart_by_version():
    """helm pull (helm.sh/docs/helm/helm_pull): `--repo` and `--version` fetch exactly the pinned
    chart; the CNI plugins tarball is checked against the sha256 Flannel's kind e2e pins."""
    steps = pack.pack_steps("/p", CNIS, "linux/arm64")
    downloads = [a for s in steps for a in s.actions if isinstance(a, Download)]
    by_url = {d.url: d for d in downloads}
    plugins = by_url[pins.cni_plugins_url("arm64")]
    assert plugins.sha256 == pins.CNI_PLUGINS_SHA256["arm64"]
    assert set(by_url) == {
        pins.cni_plugins_url("arm64"),
        pins.FLANNEL_MANIFEST_URL,
        pins.CALICO_CRDS_URL,
        pins.CALICO_OPERATOR_URL,
    }
    helm = [a for a in _argvs(steps) if a[0] == "helm"]
    assert helm == [
        (
            "helm", "pull", "cilium", "--repo", pins.CILIUM_CHART_REPO,
            "--version", pins.CILIUM_VERSION, "--destination", "/p/charts",
        )
    ]  # fmt: skip
    assert not [
        a for a in _argvs(pack.pack_steps("/p", ("calico",), "linux/amd64")) if a[0] == "helm"
    ]


def test_cni_image_lists_pin_each_release():
    """kube-flannel.yml v0.28.9, Calico v3.32.1's tigera-operator (operator v1.42.3), Cilium
    chart 1.20.0's values.yaml image / operator.image / envoy.image: every tag is that release."""
    assert all(pins.FLANNEL_VERSION in r or "flannel-cni-plugin" in r for r in pins.FLANNEL_IMAGES)
    assert pins.CALICO_IMAGES[0] == pins.TIGERA_OPERATOR_IMAGE
    assert all(r.endswith(":" + pins.CALICO_VERSION) for r in pins.CALICO_IMAGES[1:])
    names = [r.split("@")[0].rsplit(":", 1)[0] for r in pins.CILIUM_IMAGES]
    assert names == [
        "quay.io/cilium/cilium",
        "quay.io/cilium/operator-generic",
        "quay.io/cilium/cilium-envoy",
    ]
    assert all("@sha256:" in r for r in pins.CILIUM_IMAGES)


class _Opener:
    def __init__(self, payloads):
        self.payloads = payloads

    def __call__(self, url, timeout):
        return io.BytesIO(self.payloads.get(url, b"manifest of " + url.encode()))


def _fake_run(calls):
    def run(argv, **kwargs):
        calls.append(tuple(argv))
        if argv[:3] == ["docker", "image", "save"]:
            Path(argv[argv.index("--output") + 1]).write_bytes(f"archive {argv[-1]}".encode())
        if argv[:2] == ["helm", "pull"]:
            Path(argv[argv.index("--destination") + 1], pins.CILIUM_CHART_FILE).write_bytes(
                b"chart"
            )
        out = "sha256:" + "ab" * 32 + "\n" if argv[:3] == ["docker", "image", "inspect"] else ""
        return subprocess.CompletedProcess(argv, 0, out, "")

    return run


@pytest.fixture
def plugins_payload(monkeypatch):
    payload = b"plugins tarball"
    monkeypatch.setitem(pins.CNI_PLUGINS_SHA256, "amd64", hashlib.sha256(payload).hexdigest())
    return {pins.cni_plugins_url("amd64"): payload}


def _make(folder, cnis, payloads, platform="linux/amd64"):
    calls: list[tuple[str, ...]] = []
    data = packrun.make_pack(folder, cnis, platform, run=_fake_run(calls), opener=_Opener(payloads))
    return data, calls


def test_make_pack_writes_pack_json_with_every_file_and_image(tmp_path, plugins_payload):
    """pack.json lists every file with its sha256 and every image with its digest (`docker image
    inspect` .Id) and platform; a second `labkit pack` into it adds a CNI and keeps the rest."""
    folder = tmp_path / "pack"
    data, _ = _make(folder, ["flannel"], plugins_payload)
    assert data["platform"] == "linux/amd64" and data["cnis"] == ["flannel"]
    on_disk = json.loads((folder / "pack.json").read_text())
    assert on_disk == data
    for entry in data["files"]:
        assert download.sha256_of(folder / entry["path"]) == entry["sha256"]
    assert {i["tag"] for i in data["images"]} == {i.tag for i in pack.images(("flannel",))}
    assert all(
        i["platform"] == "linux/amd64" and i["digest"].startswith("sha256:") for i in data["images"]
    )
    packfile.check(folder, "flannel", "linux/amd64")
    data, _ = _make(folder, ["cilium"], plugins_payload)
    assert data["cnis"] == ["cilium", "flannel"]
    packfile.check(folder, "flannel", "linux/amd64")
    packfile.check(folder, "cilium", "linux/amd64")
    with pytest.raises(LabError, match=r"lacks image quay\.io/tigera/operator"):
        packfile.check(folder, "calico", "linux/amd64")


def test_make_pack_refuses_a_changed_plugins_download(tmp_path, plugins_payload):
    """The pinned sha256 of cni-plugins-linux-amd64 (containernetworking/plugins release) must
    match; a different download is removed, never packed."""
    bad = {pins.cni_plugins_url("amd64"): b"something else"}
    with pytest.raises(LabError, match="pinned SHA-256"):
        _make(tmp_path / "pack", ["flannel"], bad)
    assert not (tmp_path / "pack" / "pack.json").exists()


def test_pack_folder_must_be_new_empty_or_a_pack(tmp_path, plugins_payload):
    """DIR is never another folder's files: a file, or a folder with files and no pack.json, is
    refused before anything is pulled; a pack for another platform is refused too."""
    (tmp_path / "file").write_text("x")
    with pytest.raises(LabError, match="is a file"):
        _make(tmp_path / "file", ["calico"], {})
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    calls: list[tuple[str, ...]] = []
    with pytest.raises(LabError, match="holds other files"):
        packrun.make_pack(tmp_path / "other", ["calico"], "linux/amd64", run=_fake_run(calls))
    assert calls == []
    _make(tmp_path / "amd", ["calico"], {})
    with pytest.raises(LabError, match="pack for linux/amd64"):
        _make(tmp_path / "amd", ["calico"], {}, platform="linux/arm64")
    with pytest.raises(LabError, match="--platform"):
        _make(tmp_path / "x", ["calico"], {}, platform="linux/s390x")
    with pytest.raises(LabError, match="--cni"):
        _make(tmp_path / "y", ["weave"], {})


@pytest.fixture
def cilium_pack(tmp_path, plugins_payload):
    folder = tmp_path / "pack"
    _make(folder, ["cilium"], plugins_payload)
    return folder


def _damage_missing_manifest(folder):
    (folder / "pack.json").unlink()
    return r"no readable pack\.json"


def _damage_changed_file(folder):
    (folder / pack.chart_file()).write_bytes(b"changed")
    return "does not match the sha256"


def _damage_missing_file(folder):
    (folder / pack.PackImage(pins.AGNHOST_IMAGE, True, True).file).unlink()
    return r"lacks images/registry\.k8s\.io_e2e-test-images_agnhost"


def _damage_unlisted_image(folder):
    data = json.loads((folder / "pack.json").read_text())
    data["images"] = [i for i in data["images"] if "cilium-envoy" not in i["tag"]]
    (folder / "pack.json").write_text(json.dumps(data))
    return r"lacks image quay\.io/cilium/cilium-envoy"


def _damage_other_platform_image(folder):
    data = json.loads((folder / "pack.json").read_text())
    data["images"][0]["platform"] = "linux/arm64"
    (folder / "pack.json").write_text(json.dumps(data))
    return "lacks image"


@pytest.mark.parametrize(
    "damage",
    [
        _damage_missing_manifest,
        _damage_changed_file,
        _damage_missing_file,
        _damage_unlisted_image,
        _damage_other_platform_image,
    ],
)
def test_check_names_each_kind_of_damage_and_the_fix(cilium_pack, damage):
    """Each damage gives one LabError naming what is wrong and the fix, `labkit pack DIR` on a
    connected machine."""
    packfile.check(cilium_pack, "cilium", "linux/amd64")
    expected = damage(cilium_pack)
    with pytest.raises(LabError, match=expected) as err:
        packfile.check(cilium_pack, "cilium", "linux/amd64")
    assert f"labkit pack {cilium_pack} --cni cilium --platform linux/amd64" in err.value.fix


def test_check_refuses_a_pack_for_another_platform(cilium_pack):
    """kind's nodes run Docker's architecture; an arm64 engine cannot run an amd64 pack."""
    with pytest.raises(LabError, match="for linux/amd64, and Docker here runs linux/arm64"):
        packfile.check(cilium_pack, "cilium", "linux/arm64")


@pytest.fixture
def paths(tmp_path):
    return Paths(tmp_path / "state", tmp_path / "kube" / "config", tmp_path / "cache")


@pytest.mark.parametrize("cni", CNIS)
def test_up_pack_plan_fetches_no_url(cni, paths):
    """`up --pack` uses only the pack: no action downloads, and no command names a URL or a chart
    repository (kind's `kind load image-archive`, pkg/cmd/kind/load/image-archive)."""
    plan = build_plan("offline", cni, paths=paths, pack="/p")
    for action in plan.actions():
        assert not isinstance(action, (Fetch, Download))
        if isinstance(action, Run):
            assert not any("://" in part for part in action.argv)
            assert "--repo" not in action.argv
    assert plan.manifest_urls == ()
    assert "/p" in plan.render()


@pytest.mark.parametrize("cni", CNIS)
def test_up_pack_plan_loads_images_then_creates_from_the_loaded_node_image(cni, paths):
    """Host images are `docker load`ed before `kind create cluster --image` names the node image
    by tag (a one-platform archive lacks the index digest, kind#2394); pods' images go into every
    node with `kind load image-archive --name <lab>` before the CNI is installed."""
    plan = build_plan("offline", cni, paths=paths, pack="/p")
    actions = plan.actions()
    create = next(i for i, a in enumerate(actions) if isinstance(a, CreateCluster))
    assert actions[create].image == "kindest/node:v1.36.1"
    loads = [
        a.argv for a in actions[:create] if isinstance(a, Run) and a.argv[:2] == ("docker", "load")
    ]
    assert [a[-1] for a in loads] == [f"/p/{i.file}" for i in pack.images((cni,)) if i.host]
    kind_loads = [
        (i, a.argv)
        for i, a in enumerate(actions)
        if isinstance(a, Run) and a.argv[:2] == ("kind", "load")
    ]
    assert [argv for _, argv in kind_loads] == [
        ("kind", "load", "image-archive", "--name", "offline", f"/p/{i.file}")
        for i in pack.images((cni,))
        if i.nodes
    ]
    first_install = next(
        i
        for i, a in enumerate(actions)
        if isinstance(a, Run) and a.argv[0] in ("kubectl", "helm") and "get" not in a.argv
    )
    assert create < kind_loads[0][0] and kind_loads[-1][0] < first_install


def test_up_pack_plan_installs_from_local_manifests_and_chart(paths):
    """Flannel and Calico read the pack's copies of their manifests; Cilium installs the pack's
    chart file with image.useDigest/operator.image.useDigest/envoy.image.useDigest false (the
    chart's values.yaml keys), so the loaded tags are used; Flannel's plugins are unpacked."""
    flannel = build_plan("offline", "flannel", paths=paths, pack="/p")
    assert next(
        a.argv[3:] for a in flannel.actions() if isinstance(a, Run) and "apply" in a.argv
    ) == ("apply", "-f", "/p/manifests/kube-flannel.yml")
    unpack = next(a for a in flannel.actions() if isinstance(a, Unpack))
    assert (
        unpack.archive == f"/p/cni-plugins/cni-plugins-linux-amd64-{pins.CNI_PLUGINS_VERSION}.tgz"
    )
    calico = build_plan("offline", "calico", paths=paths, pack="/p")
    creates = [a.argv[-1] for a in calico.actions() if isinstance(a, Run) and "create" in a.argv]
    assert creates[:2] == [
        "/p/manifests/v1_crd_projectcalico_org.yaml",
        "/p/manifests/tigera-operator.yaml",
    ]
    cilium = build_plan("offline", "cilium", paths=paths, pack="/p")
    helm = next(a.argv for a in cilium.actions() if isinstance(a, Run) and a.argv[0] == "helm")
    assert helm[:4] == ("helm", "install", "cilium", f"/p/charts/{pins.CILIUM_CHART_FILE}")
    for key in ("image.useDigest", "operator.image.useDigest", "envoy.image.useDigest"):
        assert f"{key}=false" in helm
    online = build_plan("online", "cilium", paths=paths)
    assert not any(
        "useDigest" in part for a in online.actions() if isinstance(a, Run) for part in a.argv
    )
    with pytest.raises(LabError, match="Hubble"):
        build_plan("offline", "cilium", paths=paths, pack="/p", hubble=True)


def test_up_pack_checks_the_pack_against_dockers_platform_first(cilium_pack, monkeypatch):
    """kind's docker provider runs nodes on the engine's architecture (`docker info` .Architecture):
    `labkit up --pack` of an amd64 pack on an arm64 engine stops at the check, with the fix."""
    from labkit.kind import backend

    monkeypatch.setattr(backend, "docker_arch", lambda: "arm64")
    with pytest.raises(LabError, match="Docker here runs linux/arm64") as err:
        backend.plan("offline", "cilium", pack=cilium_pack)
    assert "labkit pack" in err.value.fix
    monkeypatch.setattr(backend, "docker_arch", lambda: "amd64")
    assert backend.plan("offline", "cilium", pack=cilium_pack).pack == str(cilium_pack)


def test_pack_needs_docker_before_it_creates_anything(tmp_path, monkeypatch):
    """`docker image save` and `helm pull` do the work: without them on PATH nothing is made."""
    from labkit.kind import backend, tools

    def missing(tool):
        raise LabError(f"`{tool}` is not on PATH.", "Install it.")

    monkeypatch.setattr(tools, "find", missing)
    with pytest.raises(LabError, match="docker"):
        backend.make_pack(tmp_path / "new", ["cilium"], "linux/amd64")
    assert not (tmp_path / "new").exists()


def test_cli_pack_and_up_pack(tmp_path, monkeypatch, capsys):
    """`labkit pack DIR --all` packs every CNI; `--cni` may repeat; `up --pack` is Kind's only."""
    from labkit import cli
    from labkit.kind import backend

    seen = []

    def fake(folder, cnis, platform=None):
        seen.append((folder, tuple(cnis), platform))
        return {
            "cnis": list(cnis),
            "platform": platform or "linux/amd64",
            "images": [],
            "files": [],
        }

    monkeypatch.setattr(backend, "make_pack", fake)
    assert cli.main(["pack", str(tmp_path), "--all", "--platform", "linux/arm64"]) == 0
    assert cli.main(["pack", str(tmp_path), "--cni", "calico", "--cni", "cilium"]) == 0
    assert seen == [
        (tmp_path, CNIS, "linux/arm64"),
        (tmp_path, ("calico", "cilium"), None),
    ]
    assert f"--pack {tmp_path}" in capsys.readouterr().out
    assert cli.main(["up", "--backend", "sandbox", "--pack", str(tmp_path)]) == 1
    assert "for the Kind backend" in capsys.readouterr().err
