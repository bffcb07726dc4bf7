"""Namespaces made by hand on a node: their names (strict, never an option or a path), the
``node:name`` probe source, the sandbox's lab namespace names (one lab never claims another's),
the node shell's read-only view of them, and the Kind backend's ``docker exec`` plans."""

from __future__ import annotations

import pytest

from labkit import inputs
from labkit.errors import LabError
from labkit.kind import handmade
from labkit.kind import probe as kind_probe
from labkit.sandbox import naming
from labkit.sandbox.confine import Confinement, bwrap_argv

MERGED_USR = {"bin": "usr/bin", "sbin": "usr/sbin", "lib": "usr/lib", "lib64": "usr/lib64"}


@pytest.mark.parametrize("name", ["hand", "h", "pod-a", "a1", "x" * 15, "a-"])
def test_plain_names_are_accepted(name):
    assert inputs.check_hand_netns(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "Hand", "1hand", "-h", "--help", "x" * 16, "a/b", "..", "a.b", "a b", "h\n", None, 7],
)
def test_other_names_are_refused_in_one_line(name):
    with pytest.raises(LabError) as caught:
        inputs.check_hand_netns(name)
    assert "cannot name a hand-made network namespace" in caught.value.what
    assert "\n" not in caught.value.what and "1-15" in caught.value.fix


def test_a_probe_source_node_colon_name_is_a_hand_made_namespace():
    assert inputs.hand_source("netlab-worker:hand") == ("netlab-worker", "hand")
    assert inputs.hand_source("default/client") is None
    assert inputs.hand_source("netlab-worker") is None
    assert inputs.check_probe(("netlab-worker:hand", "10.96.0.1", 443))[0] == "netlab-worker:hand"
    for bad in ("netlab-worker:--x", "netlab-worker:", ":hand", "Node_1:hand", "a:b:c"):
        with pytest.raises(LabError):
            inputs.check_probe((bad, "10.96.0.1", 443))


def test_sandbox_names_keep_labs_apart():
    made = naming.hand_netns("a", "w1", "hand")
    assert made == "lk-a-h.w1.hand"
    assert naming.is_lab_netns("a", made) and naming.is_lab_hand_netns("a", made)
    assert not naming.is_lab_netns("a-h", made) and not naming.is_lab_hand_netns("a-h", made)
    assert not naming.is_lab_hand_netns("a", naming.node_netns("a", 1))
    assert not naming.is_lab_hand_netns("a", "lk-a-h.w9.hand")
    # lab "a-h-cp"'s pod is never lab "a"'s hand-made namespace, nor the other way round
    pod = naming.pod_netns("a-h-cp", "default", "web")
    assert not naming.is_lab_netns("a", pod)
    assert naming.labs_of([made, pod, naming.hand_netns("a-h", "cp", "p-x")]) == {
        "a",
        "a-h-cp",
        "a-h",
    }
    with pytest.raises(LabError):
        naming.hand_netns("a", "w1", "../x")


def _bound(argv: list[str]) -> list[tuple[str, str]]:
    return [(argv[i + 1], argv[i + 2]) for i, a in enumerate(argv) if a == "--ro-bind"]


def test_a_node_shell_sees_its_hand_made_namespaces_read_only_over_the_private_run():
    shown = (("lk-t-h.w1.hand", "hand"), ("lk-t-h.w1.pod-b", "pod-b"))
    argv = bwrap_argv(Confinement("t-worker", node=True, netns=shown), MERGED_USR)
    binds = _bound(argv)
    assert ("/run/netns/lk-t-h.w1.hand", "/run/netns/hand") in binds
    assert ("/run/netns/lk-t-h.w1.pod-b", "/run/netns/pod-b") in binds
    run = argv.index("/run", argv.index("--tmpfs", argv.index("/tmp")))
    assert argv.index("/run/netns/hand") > run  # on top of the tmpfs that hides the rest
    assert "--cap-add" in argv and "CAP_SYS_ADMIN" not in argv
    plain = _bound(bwrap_argv(Confinement("t-worker", node=True), MERGED_USR))
    assert not [b for b in plain if b[0].startswith("/run/netns")]


@pytest.mark.parametrize(
    "netns,name", [("/etc/x", "hand"), ("lk-t/../x", "hand"), ("lk-t-h.w1.hand", "../../etc")]
)
def test_nothing_but_a_lab_namespace_is_bound(netns, name):
    with pytest.raises(LabError):
        bwrap_argv(Confinement("t", node=True, netns=((netns, name),)), MERGED_USR)


def test_kind_plans_put_the_name_as_a_positional_argument():
    assert handmade.add_argv("t-worker", "hand") == [
        "docker", "exec", "t-worker", "ip", "netns", "add", "hand",
    ]  # fmt: skip
    assert handmade.delete_argv("t-worker", "hand")[-3:] == ["netns", "delete", "hand"]
    assert handmade.list_argv("t-worker") == ["docker", "exec", "t-worker", "ip", "netns", "list"]
    assert handmade.exec_argv("t-worker", "hand", ["sh", "-c", "ip a"]) == [
        "docker", "exec", "t-worker", "ip", "netns", "exec", "hand", "sh", "-c", "ip a",
    ]  # fmt: skip
    for plan in (handmade.add_argv, handmade.delete_argv):
        with pytest.raises(LabError):
            plan("t-worker", "--all")


def test_the_kind_probe_from_a_hand_made_namespace_runs_the_pod_probe_script_with_bash():
    argv = handmade.probe_argv("t-worker", "hand", "10.96.0.10", 53, "UDP", 2.0)
    assert argv[:9] == ["docker", "exec", "t-worker", "ip", "netns", "exec", "hand", "bash", "-c"]
    script = argv[9]
    assert script.startswith(handmade.CONNECT_FUNCTION) and script.endswith(kind_probe.PROBE_SCRIPT)
    assert argv[10:] == kind_probe.probe_command("10.96.0.10", 53, "UDP", 2.0)[3:]


def test_kind_netns_list_keeps_hand_made_names_only():
    listed = "hand (id: 3)\ncni-7a1e2f3c-aaaa-bbbb-cccc-0123456789ab (id: 0)\npod-b\n\n"
    assert handmade.parse_list(listed) == ["hand", "pod-b"]
    assert handmade.parse_list("") == []
