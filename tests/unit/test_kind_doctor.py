"""The Kind doctor lines: parsing and thresholds (pure), and the lines on a machine we control."""

import json
import platform

import pytest

from labkit.doctor import DoctorLine
from labkit.kind import doctor as D


@pytest.mark.parametrize(
    "text,version",
    [
        ("kind v0.32.0 go1.26.1 linux/amd64", (0, 32, 0)),
        ("v3.21.1+g5caf0044", (3, 21, 1)),
        ("Client Version: v1.36.1", (1, 36, 1)),
        ("nothing here", None),
        ("", None),
    ],
)
def test_parse_version(text, version):
    assert D.parse_version(text) == version


@pytest.mark.parametrize(
    "text,version",
    [
        ('{"clientVersion": {"major": "1", "minor": "36", "gitVersion": "v1.36.1"}}', (1, 36, 1)),
        (
            '{"clientVersion": {"major": "1", "minor": "32+", "gitVersion": "v1.32.4-dispatcher"}}',
            (1, 32, 4),
        ),
        ('{"clientVersion": {"major": "1", "minor": "35"}}', (1, 35)),
        ("Client Version: v1.37.0", (1, 37, 0)),
    ],
)
def test_parse_kubectl_version(text, version):
    assert D.parse_kubectl_version(text) == version


@pytest.mark.parametrize(
    "version,ok",
    [
        ((0, 32, 0), True),
        ((0, 33, 1), True),
        ((1, 0, 0), True),
        ((0, 31, 0), False),
        ((0, 17, 0), False),
        (None, False),
    ],
)
def test_judge_kind(version, ok):
    assert D.judge_kind(version)[0] is ok


@pytest.mark.parametrize(
    "version,ok",
    [
        ((1, 36, 1), True),
        ((1, 35, 0), True),
        ((1, 37, 2), True),
        ((1, 34, 0), False),
        ((1, 32, 4), False),
        ((2, 36), False),
        (None, False),
    ],
)
def test_judge_kubectl_skew(version, ok):
    assert D.judge_kubectl(version)[0] is ok


@pytest.mark.parametrize(
    "version,ok", [((3, 21, 1), True), ((4, 0, 0), True), ((2, 17, 0), False), (None, False)]
)
def test_judge_helm(version, ok):
    assert D.judge_helm(version)[0] is ok


@pytest.mark.parametrize(
    "watches,instances,ok",
    [
        (524288, 512, True),
        (1048576, 8192, True),
        (524287, 512, False),
        (524288, 511, False),
        (192908, 128, False),
        (None, 512, False),
    ],
)
def test_judge_inotify(watches, instances, ok):
    good, detail = D.judge_inotify(watches, instances)
    assert good is ok
    if not ok and watches is not None:
        assert ("max_user_watches" in detail) is (watches < 524288)


def test_parse_meminfo_and_memory_threshold():
    info = D.parse_meminfo(
        "MemTotal:       24731708 kB\nMemAvailable:    5000000 kB\nHugePages_Total: 0\n"
    )
    assert info["MemTotal"] == 24731708 * 1024
    assert info["HugePages_Total"] == 0
    ok, detail = D.judge_memory(info["MemAvailable"])
    assert not ok and "6 GiB" in detail
    assert D.judge_memory(6 * 1024**3)[0]
    assert not D.judge_memory(None)[0]


@pytest.mark.parametrize(
    "modules,sysdir,sysctls,loaded",
    [
        (
            "br_netfilter 32768 0 - Live 0x0\nbridge 311296 1 br_netfilter, Live 0x0\n",
            False,
            False,
            True,
        ),
        ("bridge 311296 0 - Live 0x0\n", False, False, False),
        ("", True, False, True),
        ("", False, True, True),
        ("", False, False, False),
        ("br_netfilterx 1 0 - Live\n", False, False, False),
    ],
)
def test_br_netfilter_loaded(modules, sysdir, sysctls, loaded):
    """kubeadm's cmd/kubeadm/app/preflight/checks.go reads br_netfilter's presence from its
    sysctl (FileContentCheck on bridgenf, /proc/sys/net/bridge/bridge-nf-call-iptables): the one
    sign a built-in br_netfilter leaves, as it has no parameter to show in /sys/module (the
    kernel's Documentation/ABI/stable/sysfs-module)."""
    assert D.br_netfilter_loaded(modules, sysdir, sysctls) is loaded


def test_kind_checks_lines_with_nothing_installed(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no docker, kind, kubectl or helm
    lines = D.kind_checks("cilium")
    by_name = {line.name: line for line in lines}
    assert all(isinstance(line, DoctorLine) for line in lines)
    for name in ("Docker engine", "kind on PATH", "kubectl on PATH", "helm on PATH"):
        assert by_name[name].ok is False and by_name[name].fix and by_name[name].required
    assert "sudo labkit up --backend sandbox" in by_name["Docker engine"].fix
    assert not any("port" in name for name in by_name)  # a running lab fails no line
    assert {"inotify limits", "br_netfilter module", "free memory"} <= set(by_name)
    assert {"Docker host checks", "IPVS modules", "firewalld backend"} <= set(by_name)
    for line in lines:
        assert line.ok or line.fix, line  # every failing line names its fix


def test_helm_and_br_netfilter_are_required_only_for_their_cni(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    by_name = {line.name: line for line in D.kind_checks("flannel")}
    assert by_name["helm on PATH"].required is False
    assert by_name["br_netfilter module"].required is True
    by_name = {line.name: line for line in D.kind_checks(None)}
    assert (
        by_name["helm on PATH"].required is False
        and by_name["br_netfilter module"].required is False
    )


DESKTOP_INFO = {
    "ServerVersion": "28.3.2",
    "CgroupVersion": "2",
    "KernelVersion": "6.10.14-linuxkit",
    "OperatingSystem": "Docker Desktop",
    "Architecture": "aarch64",
    "MemTotal": 4 * 1024**3,
}


def test_docker_desktop_memory_comes_from_the_one_docker_info_read(monkeypatch, tmp_path):
    """moby's api/types/system/info.go: `docker info` reports MemTotal, the engine host's memory
    (on Docker Desktop, its VM's), in the same `{{json .}}` answer kind's docker provider reads
    (pkg/cluster/internal/providers/docker/provider.go `info()`): the free-memory line judges it
    from that one read, so doctor runs `docker info` once for the facts (plus the short
    engine-answers probe), not once more for memory."""
    calls = tmp_path / "calls"
    docker = tmp_path / "docker"
    docker.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {calls}\n'
        'case "$*" in\n'
        "  *ServerVersion*) echo 28.3.2 ;;\n"
        f"  *) echo '{json.dumps(DESKTOP_INFO)}' ;;\n"
        "esac\n"
    )
    docker.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    monkeypatch.setattr(platform, "system", lambda: "Darwin")
    by_name = {line.name: line for line in D.kind_checks(None)}
    memory = by_name["free memory"]
    assert not memory.ok and not memory.required
    assert memory.detail == "4.0 GiB given to Docker; 6 GiB is recommended for three nodes"
    assert "Settings > Resources" in memory.fix
    assert calls.read_text().splitlines() == [
        "info --format {{.ServerVersion}}",
        "info --format {{json .}}",
    ]
    assert by_name["cgroup v2"].ok and "Docker host checks" not in by_name


def test_tool_versions_are_read_from_the_tools(monkeypatch, tmp_path):
    for tool, output in {
        "kind": "echo kind v0.31.0 go1.25 linux/amd64",
        "kubectl": 'echo \'{"clientVersion": {"gitVersion": "v1.36.1"}}\'',
        "helm": "echo v3.21.1+gabc",
    }.items():
        script = tmp_path / tool
        script.write_text(f"#!/bin/sh\n{output}\n")
        script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    by_name = {line.name: line for line in D.kind_checks("cilium")}
    assert (
        by_name["kind on PATH"].ok is False
        and "v0.31.0" in by_name["kind on PATH"].detail
        and "v0.32.0" in by_name["kind on PATH"].fix
    )
    assert (
        by_name["kubectl on PATH"].ok is True
        and by_name["kubectl on PATH"].detail == "kubectl v1.36.1"
    )
    assert by_name["helm on PATH"].ok is True
