"""The known traps of a Kind host as doctor lines (labkit/kind/traps.py), judged on made-up facts:
no Docker needed. Each test names the upstream source of the threshold or advice it checks."""

from __future__ import annotations

import json
import platform
import re
from pathlib import Path

import pytest

from labkit import doctor as doctor_forms
from labkit.kind import doctor, traps
from labkit.kind.dockerhost import DockerHost
from labkit.kind.traps import HostFacts
from labkit.values import DoctorLine

README = Path(__file__).resolve().parents[2] / "README.md"


def host(kernel="6.8.0-45-generic", cgroup="2", os_name="Ubuntu 24.04", arch="x86_64", ctrd=False):
    return DockerHost(cgroup, arch, kernel, os_name, ctrd)


def local(**facts):
    return HostFacts(local=True, **facts)


WSL2 = "5.15.153.1-microsoft-standard-WSL2"


def test_cgroup_line():
    """KEP-5573 (keps/sig-node/5573-remove-cgroup-v1) sets kubelet's failCgroupV1 to true from
    1.35 (CHANGELOG-1.35, #134298): a cgroup v1 engine is a FAIL with the fix for its kind of
    host; kind's providers/docker/provider.go reads the same CgroupVersion field."""
    assert traps.cgroup_line(host()).ok
    line = traps.cgroup_line(host(cgroup="1"))
    assert not line.ok and line.required and "failCgroupV1" in line.detail
    assert "systemd.unified_cgroup_hierarchy=1" in line.fix and "sandbox" in line.fix
    desktop = traps.cgroup_line(
        host(kernel="6.10.14-linuxkit", cgroup="1", os_name="Docker Desktop")
    )
    assert "Update Docker Desktop" in desktop.fix
    unknown = traps.cgroup_line(host(cgroup=""))
    assert not unknown.ok and not unknown.required


def test_wsl2_line():
    """kind's known issues, "Failure to Create Cluster on WSL2": `error adding pid ... to
    cgroups`, fixed by moving WSL2 to cgroup v2 (spurin/wsl-cgroupsv2: cgroup_no_v1=all)."""
    assert traps.wsl2_line(host()).ok
    assert traps.wsl2_line(host(kernel=WSL2)).ok
    line = traps.wsl2_line(host(kernel=WSL2, cgroup="1"))
    assert not line.ok and line.required and "error adding pid" in line.detail
    assert ".wslconfig" in line.fix and "kernelCommandLine = cgroup_no_v1=all" in line.fix


@pytest.mark.parametrize("os_name", ["Docker Desktop", "Ubuntu 24.04.1 LTS"])
def test_wsl2_on_cgroup_v1_names_its_fix_once(os_name):
    """A WSL2 engine on cgroup v1 fails both KEP-5573's cgroup v2 check and kind's "Failure to
    Create Cluster on WSL2" known issue, with one cure (WSL2's .wslconfig
    kernelCommandLine = cgroup_no_v1=all): the WSL2 line names it, the cgroup line points there,
    whether Docker Desktop or Docker inside a WSL2 distribution runs the engine."""
    wsl = host(kernel=WSL2, cgroup="1", os_name=os_name)
    lines = {line.name: line for line in traps.engine_lines(wsl, None)}
    cgroup, wsl2 = lines["cgroup v2"], lines["WSL2 cgroups"]
    assert not cgroup.ok and cgroup.required and "failCgroupV1" in cgroup.detail
    assert "`WSL2 cgroups`" in cgroup.fix and "cgroup_no_v1=all" not in cgroup.fix
    assert not wsl2.ok and "cgroup_no_v1=all" in wsl2.fix and "wsl --shutdown" in wsl2.fix
    fixes = [line.fix for line in lines.values()]
    assert sum("cgroup_no_v1=all" in fix for fix in fixes) == 1
    names = list(lines)
    assert names.index("WSL2 cgroups") == names.index("cgroup v2") + 1  # "just below"


@pytest.mark.parametrize(
    "kernel,cgroup,cni,ok,required",
    [
        ("5.4.0-150-generic", "2", "cilium", False, True),
        ("5.4.0-150-generic", "2", "calico", False, False),
        ("5.10.0-30-amd64", "2", "cilium", False, False),
        ("5.15.0-100-generic", "1", "cilium", False, False),
        ("5.14.0-427.el9.x86_64", "2", "cilium", True, True),
        (WSL2, "2", None, True, True),
    ],
)
def test_cilium_kernel_line(kernel, cgroup, cni, ok, required):
    """Cilium's Documentation/operations/system_requirements.rst: kernel >= 5.10; its
    Documentation/installation/kind.rst: the socket LB (kube-proxy-free) on Kind needs cgroup v2
    and a 5.14+ kernel. Only the 5.10 floor fails a Cilium lab; the rest is advice."""
    line = traps.cilium_line(host(kernel=kernel, cgroup=cgroup), cni)
    assert (line.ok, line.required) == (ok, required)
    if not ok:
        assert line.fix
        assert ("5.14" in line.detail) is (kernel[:4] != "5.4.")


@pytest.mark.parametrize("kernel,ok", [("5.12.19", False), ("5.13.0", True), ("6.1.0-18", True)])
def test_nftables_kernel_line(kernel, ok):
    """kubernetes/website docs/reference/node/kernel-version-requirements.md: kube-proxy's
    nftables mode requires kernel 5.13 or later."""
    line = traps.nftables_line(host(kernel=kernel))
    assert line.ok is ok and not (not ok and line.required)
    if not ok:
        assert "iptables" in line.fix


@pytest.mark.parametrize("kernel", ["", "unknown"])
def test_kernel_lines_word_an_unreadable_kernel_version_plainly(kernel):
    """moby's api/types/system Info.KernelVersion is a free string ("<unknown>" when the daemon
    cannot tell): an engine that answers with no readable version is an unknown, not a missing
    engine, and its fix says which `docker info` field to look at."""
    for line in (
        traps.nftables_line(host(kernel=kernel)),
        traps.cilium_line(host(kernel=kernel), "cilium"),
    ):
        assert not line.ok and not line.required and line.detail.startswith("unknown: ")
        assert "{{.KernelVersion}}" in line.fix and "no Docker engine" not in line.detail


def test_ipvs_line():
    """CHANGELOG-1.35 (#134539, KEP-5495) deprecates kube-proxy's ipvs mode; its modules are
    pkg/proxy/ipvs/util/ipvs.go's KernelModuleIPVS, ...RR, ...WRR, ...SH and nf_conntrack."""
    everything = frozenset(traps.IPVS_MODULES) | {"br_netfilter"}
    line = traps.ipvs_line(local(modules=everything))
    assert line.ok and "deprecated" in line.detail
    line = traps.ipvs_line(local(modules=frozenset({"ip_vs", "nf_conntrack"})))
    assert not line.ok and not line.required
    assert "ip_vs_rr, ip_vs_wrr, ip_vs_sh" in line.detail
    assert "modprobe -a ip_vs_rr ip_vs_wrr ip_vs_sh" in line.fix and "nftables" in line.fix
    assert traps.ipvs_line(HostFacts(local=False)).ok  # Docker Desktop's VM


def test_ipvs_line_without_proc_modules_asks_sys_module():
    """The kernel's Documentation/ABI/stable/sysfs-module: /sys/module/<name> always shows a
    loaded module, and a built-in one when it has a parameter, which ip_vs has
    (net/netfilter/ipvs/ip_vs_conn.c: module_param_named(conn_tab_bits, ...)) and its schedulers
    have not. So without /proc/modules, /sys/module/ip_vs answers for ip_vs alone; with neither,
    the line says plainly that it cannot tell."""
    seen = traps.ipvs_line(
        local(modules=frozenset({"ip_vs", "nf_conntrack"}), modules_listed=False)
    )
    assert seen.ok and "/sys/module/ip_vs" in seen.detail and "schedulers" in seen.detail
    absent = traps.ipvs_line(local(modules=frozenset({"nf_conntrack"}), modules_listed=False))
    assert not absent.ok and not absent.required
    assert absent.detail.startswith("ip_vs is not in this kernel") and "deprecated" in absent.detail
    assert "cannot read" not in absent.detail and "modprobe -a ip_vs" in absent.fix
    unknown = traps.ipvs_line(local(modules=None, modules_listed=False))
    assert not unknown.ok and not unknown.required and unknown.detail.startswith("unknown: ")
    assert "/proc/modules" in unknown.detail and "/sys/module" in unknown.detail
    assert "Nothing to do for the default kube-proxy mode" in unknown.fix


def test_loaded_modules_reads_proc_modules_and_sys_module(tmp_path):
    """/proc/modules lists loaded modules one a line; /sys/module/<name> shows them too, and
    built-in ones with a parameter (the kernel's Documentation/ABI/stable/sysfs-module)."""
    (tmp_path / "ip_vs").mkdir()
    got = traps.loaded_modules("nf_conntrack 200704 5 - Live 0x0\nbridge 1 0 - Live\n", tmp_path)
    assert got == {"nf_conntrack", "bridge", "ip_vs"}
    assert traps.loaded_modules(None, tmp_path) == {"ip_vs"}  # no /proc/modules: sysfs alone
    assert traps.loaded_modules(None, tmp_path / "absent") is None  # neither: unknown
    assert traps.loaded_modules("", tmp_path / "absent") == frozenset()


@pytest.mark.parametrize(
    "text,backend",
    [
        ("# firewalld config\nFirewallBackend=nftables\n", "nftables"),
        ("DefaultZone=public\nFirewallBackend = iptables\n", "iptables"),
        ("DefaultZone=public\n", "nftables"),
    ],
)
def test_parse_firewalld_backend(text, backend):
    """firewalld's config/firewalld.conf: FirewallBackend, nftables by default since 0.8."""
    assert traps.parse_firewalld_backend(text) == backend


def test_firewalld_line():
    """kind's known issues, Fedora/Firewalld: the nftables backend keeps nodes from reaching each
    other; the workaround sets FirewallBackend=iptables and restarts firewalld."""
    line = traps.firewalld_line(local(firewalld_backend="nftables"))
    assert not line.ok and not line.required
    assert "FirewallBackend=iptables" in line.fix and "systemctl restart firewalld" in line.fix
    assert traps.firewalld_line(local(firewalld_backend="iptables")).ok
    assert traps.firewalld_line(local(firewalld_backend=None)).ok


def test_parse_routes():
    """`ip -j route` (iproute2's JSON output) gives each route's "dst" ("default" or a prefix)."""
    text = (
        '[{"dst":"default","gateway":"192.168.1.1","dev":"wlp2s0"},'
        '{"dst":"192.168.1.0/24","dev":"wlp2s0","prefsrc":"192.168.1.23"},'
        '{"dst":"172.18.0.0/16","dev":"br-1"}]'
    )
    assert traps.parse_routes(text) == ("default", "192.168.1.0/24", "172.18.0.0/16")
    assert traps.parse_routes("not json") is None and traps.parse_routes("{}") is None


@pytest.mark.parametrize(
    "routes,ok",
    [
        (("default", "192.168.1.0/24"), False),
        (("default", "192.0.0.0/8"), False),
        (("default", "10.0.0.0/8", "172.18.0.0/16", "192.169.0.0/16"), True),
        (("default",), True),
    ],
)
def test_calico_pool_against_host_routes(routes, ok):
    """Calico's default IPv4 pool is 192.168.0.0/16 (its custom-resources.yaml, which labkit
    renders from podSubnet); a host route inside it is warned about, never a FAIL."""
    line = traps.calico_routes_line(local(routes=routes), "calico")
    assert line.ok is ok
    if not ok:
        assert not line.required and "192.168.0.0/16" in line.detail and "flannel" in line.fix
    assert not traps.calico_routes_line(local(routes=None), "calico").ok


def test_offline_line():
    """kind's quick-start: `kind load docker-image IMAGE --name <cluster>` for a named cluster;
    kind#3795 and PR #4247: with Docker's containerd image store multi-arch images fail, so
    save one platform (`docker image save --platform`) and `kind load image-archive`."""
    classic = traps.offline_line(host())
    assert classic.ok and "--name <lab>" in classic.detail
    line = traps.offline_line(host(arch="aarch64", ctrd=True))
    assert not line.ok and not line.required
    assert "docker image save --platform linux/arm64" in line.fix
    assert "kind load image-archive image.tar --name <lab>" in line.fix


def test_every_trap_has_a_line_and_every_failure_a_fix():
    """Every NAMES entry is a line of `labkit doctor` (inotify's from doctor.py); on a host that
    falls into each trap (kernel 4.19, cgroup v1, containerd store, firewalld on nftables, a
    192.168.0.0/24 route), every line fails and names its fix, as the issue asks."""
    worst = HostFacts(
        local=True,
        modules=frozenset(),
        firewalld_backend="nftables",
        routes=("192.168.0.0/24",),
    )
    engine = host(kernel="4.19.0", cgroup="1", ctrd=True)
    lines = traps.engine_lines(engine, "cilium") + traps.host_lines(worst, "cilium")
    assert [line.name for line in lines] == [n for n in traps.NAMES if n != "inotify limits"]
    assert all(not line.ok and line.fix for line in lines if line.name != "WSL2 cgroups")


def test_kind_checks_print_every_trap_when_docker_answers(monkeypatch, tmp_path):
    """With an engine every trap has its line (kind's known-issues page lists these traps for
    hosts that have not run a cluster yet, so doctor shows them before the first `up`)."""
    monkeypatch.setenv("PATH", str(tmp_path))  # no kind or kubectl
    monkeypatch.setattr(doctor, "docker_engine_answers", lambda: (True, "Docker engine answers"))
    monkeypatch.setattr(doctor.dockerhost, "read", lambda: host())
    names = [line.name for line in doctor.kind_checks("calico")]
    assert set(traps.NAMES) <= set(names) and traps.SKIPPED not in names


def _no_engine_lines(monkeypatch, tmp_path, system: str) -> list:
    monkeypatch.setenv("PATH", str(tmp_path))  # no docker at all
    monkeypatch.setattr(platform, "system", lambda: system)
    return doctor.kind_checks("calico")


@pytest.mark.parametrize("system", ["Linux", "Darwin"])
def test_without_an_engine_one_line_says_what_was_skipped(system, monkeypatch, tmp_path):
    """kind's docker provider reads every engine fact from `docker info`
    (pkg/cluster/internal/providers/docker/provider.go `info()`); with no engine those checks
    cannot be judged, so one warning names them all, why, and the way on (start Docker, or the
    sandbox) instead of one "unknown" each; on macOS the memory given to Docker joins them."""
    lines = _no_engine_lines(monkeypatch, tmp_path, system)
    names = [line.name for line in lines]
    assert names[:2] == ["Docker engine", traps.SKIPPED]  # cause, then consequence
    skipped = lines[1]
    assert not skipped.ok and not skipped.required
    assert skipped.detail.startswith("skipped: ") and "none answered" in skipped.detail
    for name in traps.ENGINE_NAMES:
        assert name in skipped.detail and name not in names
    assert ("free memory" in skipped.detail) is (system != "Linux")
    assert ("free memory" in names) is (system == "Linux")
    assert "Start Docker" in skipped.fix and "sandbox" in skipped.fix
    assert not any("unknown" in line.detail for line in lines)
    assert all(line.ok or line.fix for line in lines)


def test_json_and_checklist_show_the_skipped_checks_as_one_finding(monkeypatch, tmp_path):
    """`labkit doctor --json` (JSON Lines, jsonlines.org) and `--checklist` (GFM task list items,
    spec section 5.3) render the same findings: one warn object and one open box for the skipped
    checks, none per skipped check."""
    lines = [
        DoctorLine(f"kind: {line.name}", line.ok, line.detail, line.fix, line.required)
        for line in _no_engine_lines(monkeypatch, tmp_path, "Linux")
    ]
    rows = [json.loads(row) for row in doctor_forms.render_json(lines).splitlines()]
    skipped = [row for row in rows if row["name"] == f"kind: {traps.SKIPPED}"]
    assert len(skipped) == 1 and skipped[0]["status"] == "warn"
    assert not {f"kind: {name}" for name in traps.ENGINE_NAMES} & {row["name"] for row in rows}
    checklist = doctor_forms.render_checklist(lines, "Ready.").splitlines()
    boxes = [item for item in checklist if item.startswith(f"- [ ] {traps.SKIPPED}")]
    assert len(boxes) == 1 and all(name in boxes[0] for name in traps.ENGINE_NAMES)


def test_readme_known_traps_table_matches_the_doctor_lines():
    """The issue's acceptance: README's Kind section has a "known traps" table that matches
    doctor's lines one for one."""
    text = README.read_text()
    section = text[text.index("### Known traps on a Kind host") :]
    rows = re.findall(r"^\| `([^`]+)` \|", section.split("\n\n## ")[0], re.MULTILINE)
    assert tuple(rows) == traps.NAMES
