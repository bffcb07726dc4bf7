"""The confinement of pod and node commands (bwrap's command line), and the plain error when
bubblewrap is missing."""

from __future__ import annotations

import pytest

from labkit.errors import LabError
from labkit.sandbox import netns
from labkit.sandbox.confine import CAPABILITIES, Confinement, bwrap_argv

MERGED_USR = {"bin": "usr/bin", "sbin": "usr/sbin", "lib": "usr/lib", "lib64": "usr/lib64"}


def _options(argv: list[str]) -> list[tuple[str, ...]]:
    """bwrap's options with their values, in order (every option's arity is fixed)."""
    arity = {
        "--hostname": 1,
        "--ro-bind": 2,
        "--bind": 2,
        "--symlink": 2,
        "--proc": 1,
        "--dev": 1,
        "--tmpfs": 1,
        "--perms": 1,
        "--dir": 1,
        "--chdir": 1,
        "--setenv": 2,
        "--cap-drop": 1,
        "--cap-add": 1,
    }
    assert argv[0] == "bwrap" and argv[-1] == "--"
    out, i = [], 1
    while i < len(argv) - 1:
        n = arity.get(argv[i], 0)
        out.append(tuple(argv[i : i + 1 + n]))
        i += 1 + n
    return out


def test_a_pod_gets_its_own_processes_host_and_ipc_but_shares_the_network() -> None:
    options = _options(bwrap_argv(Confinement("client-a"), MERGED_USR))
    flags = {o[0] for o in options}
    assert {"--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent"} <= flags
    assert not flags & {"--unshare-net", "--unshare-all", "--unshare-user", "--share-net"}
    assert ("--hostname", "client-a") in options
    assert ("--setenv", "HOSTNAME", "client-a") in options


def test_only_a_containers_network_capabilities_are_kept() -> None:
    options = _options(bwrap_argv(Confinement("client-a"), MERGED_USR))
    caps = [o for o in options if o[0].startswith("--cap-")]
    assert caps[0] == ("--cap-drop", "ALL")
    added = {o[1] for o in caps[1:]}
    assert added == set(CAPABILITIES)
    assert {"CAP_NET_ADMIN", "CAP_NET_RAW"} <= added
    assert not added & {"CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_DAC_OVERRIDE", "CAP_SYS_MODULE"}


@pytest.mark.parametrize("node", [False, True])
def test_the_host_is_seen_read_only_and_temporary_folders_are_private(node: bool) -> None:
    options = _options(bwrap_argv(Confinement("n", node=node), MERGED_USR))
    ro = {o[2] for o in options if o[0] == "--ro-bind"}
    assert {"/usr", "/etc", "/sys", "/proc/sys"} <= ro
    writable = [o for o in options if o[0] == "--bind"]
    assert writable == ([("--bind", "/proc/sys/net", "/proc/sys/net")] if node else [])
    tmpfs = [o[1] for o in options if o[0] == "--tmpfs"]
    assert tmpfs == ["/tmp", "/run"]  # /run hides /run/netns (no other namespace to enter)
    assert options[options.index(("--tmpfs", "/tmp")) - 1] == ("--perms", "1777")
    # /proc/sys is covered after the new /proc is mounted, and the node's net sysctls after that
    order = [o for o in options if o[0] in ("--proc", "--ro-bind", "--bind") and "proc" in o[-1]]
    assert order[:2] == [("--proc", "/proc"), ("--ro-bind", "/proc/sys", "/proc/sys")]
    assert ("--clearenv",) in options
    assert not any(
        o[-1] in ("/", "/root", "/home", "/run/netns") for o in options if "bind" in o[0]
    )


def test_top_level_tool_folders_follow_the_hosts_layout() -> None:
    options = _options(bwrap_argv(Confinement("p"), {"bin": "usr/bin", "lib64": None}))
    assert ("--symlink", "usr/bin", "/bin") in options
    assert ("--ro-bind", "/lib64", "/lib64") in options
    assert not any(o[-1] in ("/sbin", "/lib", "/lib32") for o in options)


@pytest.mark.parametrize("bad", ["", "-x", "Client", "a b", "a/b", "a" * 65, "--proc", "x-"])
def test_a_name_that_is_not_a_hostname_never_reaches_bwrap(bad: str) -> None:
    with pytest.raises(LabError, match="cannot be a hostname"):
        bwrap_argv(Confinement(bad), MERGED_USR)


def test_exec_without_bubblewrap_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netns.shutil, "which", lambda tool: None)
    with pytest.raises(LabError) as caught:
        netns.run_confined("lk-t-cp", Confinement("t-control-plane"), ["true"])
    assert "bubblewrap" in caught.value.what
    assert "make setup" in caught.value.fix and "apt-get install bubblewrap" in caught.value.fix


def test_doctor_lists_bubblewrap_among_the_sandboxs_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    from labkit.sandbox import backend, doctor

    monkeypatch.setattr(doctor.shutil, "which", lambda tool: None if tool == "bwrap" else "/x")
    monkeypatch.setattr(doctor, "kernel_checks", lambda: [])
    line = next(line for line in backend.doctor_checks() if "bwrap" in line.name)
    assert "bubblewrap" in line.name and line.required and not line.ok
    assert "make setup" in line.fix and "bubblewrap" in line.fix
