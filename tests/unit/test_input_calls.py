"""Malformed API calls, generated: each bad value in each argument of the Lab seam (on a Kind lab
over a fake API server, so nothing needs Docker), of the checks, of progress files and learner
names, and of outside ranges. Each is a one-line LabError naming the argument, raised before
anything is sent or written."""

from __future__ import annotations

import math

import pytest

from labkit import inputs
from labkit.checks import CHECKS, check_arguments, progress, run_check
from labkit.checks.result import Step, make_result
from labkit.cli import main
from labkit.errors import LabError
from labkit.sandbox.fabric import outside_range_problem
from labkit.scenarios import load_scenario
from labkit.values import ObjectRef

BAD_TIMEOUTS = [0, -1, -0.5, math.inf, math.nan, "1", None, True, 10_000]
BAD_NAMES = ["-f/etc/shadow", "--help", "a b", "web;id", "$(id)", "x" * 64 + ".svc", "", "a..b"]
BAD_DESTINATIONS = ["-f/etc/shadow", "--help", "web;id", "", "a b", "ns/-x", "../x/y", 80]
BAD_PORTS = [0, -5, 70000, "http", "-f", None, 1.5, True]
BAD_REFS = ["..", "../../apis/x", "a/b", "a%2Fb", "a\nb"]
BAD_RTYPES = ["AXFR", "-f", "", None, "a;b"]

LAB_CALLS: list[tuple[str, str, tuple[object, ...], dict[str, object]]] = [
    *[("timeout", "exec", ("default/web", "true"), {"timeout": t}) for t in BAD_TIMEOUTS],
    *[("timeout", "node_exec", ("t-worker", "true"), {"timeout": t}) for t in BAD_TIMEOUTS],
    *[("timeout", "probe", ("default/web", "10.0.0.1", 80), {"timeout": t}) for t in BAD_TIMEOUTS],
    *[
        ("timeout", "probe_many", ([("default/web", "10.0.0.1", 80)],), {"timeout": t})
        for t in BAD_TIMEOUTS
    ],
    *[("name", "resolve", ("default/web", n), {}) for n in BAD_NAMES],
    *[("rtype", "resolve", ("default/web", "web", r), {}) for r in BAD_RTYPES],
    *[("dst", "probe", ("default/web", d, 80), {}) for d in BAD_DESTINATIONS],
    *[("port", "probe", ("default/web", "10.0.0.1", p), {}) for p in BAD_PORTS],
    *[("protocol", "probe", ("default/web", "10.0.0.1", 80, p), {}) for p in ("ICMP", "", None)],
    *[("dst", "probe_many", ([("default/web", d, 80)],), {}) for d in BAD_DESTINATIONS],
    *[
        ("port", "probe_many", ([{"src": "default/web", "dst": "web", "port": p}],), {})
        for p in BAD_PORTS
    ],
    *[("probe must be", "probe_many", ([bad],), {}) for bad in ("web", ("a", "b"), 7)],
    *[("name", "get", ("pod", n), {}) for n in BAD_REFS],
    *[("name", "exec", (f"default/{n}", "true"), {"container": "c"}) for n in BAD_REFS],
    *[("name", "delete", (ObjectRef("Pod", n, "default"),), {}) for n in BAD_REFS],
    *[("namespace", "get", ("pod", "web"), {"namespace": ns}) for ns in ("../x", "A", "a/b")],
    *[("namespace", "get", ("pod",), {"namespace": ns}) for ns in ("../x", "", "a/b")],
]


@pytest.mark.parametrize(
    ("argument", "method", "args", "kwargs"),
    LAB_CALLS,
    ids=[f"{m}-{a}-{i}" for i, (a, m, _, _) in enumerate(LAB_CALLS)],
)
def test_kind_lab_refuses_bad_arguments_before_any_request(
    fake_api, fake_api_lab, argument, method, args, kwargs
):
    with pytest.raises(LabError) as err:
        getattr(fake_api_lab, method)(*args, **kwargs)
    assert argument in err.value.what and "\n" not in err.value.what
    assert fake_api.requests == [], "a refused call reached the API server"


CHECK_CALLS = [
    (name, bad)
    for name in sorted(CHECKS)
    for bad in ({"colour": "red"}, {"timeout": -1}, {"timeout": 0})
]


@pytest.mark.parametrize(("name", "bad"), CHECK_CALLS, ids=[f"{n}-{b}" for n, b in CHECK_CALLS])
def test_checks_refuse_unknown_arguments_and_bad_timeouts(name, bad):
    with pytest.raises(LabError) as err:
        run_check(object(), name, bad)  # type: ignore[arg-type]  # refused before the lab is used
    assert next(iter(bad)) in err.value.what and "\n" not in err.value.what
    if "colour" in bad:
        assert err.value.fix.startswith("Give it only these arguments:")


def test_a_scenario_with_a_bad_check_argument_does_not_load(tmp_path):
    (tmp_path / "scenario.yaml").write_text(
        "title: t\nlesson: '01'\nsection: s\ndemonstrates: d\nmanifests: [x.yaml]\n"
        "checks: [{check: pod_to_pod, args: {src: a, dst: b, port: 80, colour: red}}]\n"
    )
    with pytest.raises(LabError, match="does not take 'colour'"):
        load_scenario(tmp_path)


def test_check_arguments_accepts_what_every_scenario_passes():
    check_arguments("pod_to_pod", {"src": "a", "dst": "b", "port": 80, "timeout": 2})


BINARY_FILES = [b"\xff\xfe\x00\x01", b"\x89PNG\r\n\x1a\n" + bytes(range(256)), b'{"a": "\xe9"}\n']


@pytest.mark.parametrize("content", BINARY_FILES)
def test_a_binary_progress_file_is_named_with_the_fix(tmp_path, content, capsys):
    path = tmp_path / "progress.jsonl"
    path.write_bytes(content)
    with pytest.raises(LabError) as err:
        progress.report(path)
    assert str(path) in err.value.what and "not UTF-8" in err.value.what and err.value.fix
    assert main(["report", str(tmp_path)]) == 1
    assert "Traceback" not in capsys.readouterr().err


BAD_LEARNERS = ["ada\nlovelace", "ada\r", "\x1b[31mred", "tab\there", "", "   ", "x" * 101, "\x00"]


def _result():
    return make_result("pod_to_pod", "subject", [Step("s", "ok", True)], hint="")


@pytest.mark.parametrize("learner", BAD_LEARNERS)
def test_learner_names_are_one_printable_line(tmp_path, learner, capsys):
    path = tmp_path / "p.jsonl"
    with pytest.raises(LabError, match="learner name"):
        progress.record(_result(), learner=learner, path=path)
    assert not path.exists()
    assert main(["check", "02-expose-nginx", "--learner", learner, "--name", "nolab"]) == 1
    assert "learner name" in capsys.readouterr().err


def test_a_learner_name_with_control_characters_in_a_file_is_skipped(tmp_path):
    path = tmp_path / "p.jsonl"
    progress.record(_result(), learner="ada", path=path)
    line = path.read_text().replace('"ada"', '"ev\\u001bil"')
    path.write_text(line + line.replace("ev\\u001bil", "ada"))
    assert "1 unreadable line skipped" in progress.report(path)


BAD_OUTSIDE = [
    "0.0.0.0/0",
    "10.0.0.0/7",
    "10.96.0.0/16",
    "10.100.0.1",
    "10.244.1.0/24",
    "192.168.3.0/24",
    "172.18.0.0/16",
    "172.18.255.201",
    "127.0.0.1",
    "169.254.1.1",
    "224.0.0.1",
    "0.1.2.3",
    "240.0.0.1",
]


@pytest.mark.parametrize("cidr", BAD_OUTSIDE)
def test_outside_ranges_the_cluster_uses_are_refused(cidr):
    pod_cidrs = ["10.244.0.0/24", "10.244.1.0/24"]
    assert outside_range_problem(cidr, "calico", pod_cidrs) or outside_range_problem(
        cidr, "flannel", pod_cidrs
    )


@pytest.mark.parametrize("cidr", ["203.0.113.0/24", "198.51.100.7", "8.8.8.8", "192.0.2.0/24"])
def test_outside_ranges_of_the_scenarios_are_fine(cidr):
    assert outside_range_problem(cidr, "calico", ["192.168.0.0/24"]) is None


# --------------------------------------------------------------------------- the value checks


@pytest.mark.parametrize(
    ("rule", "good", "bad"),
    [
        (
            inputs.dns1123_label,
            ["a", "web-1", "0a", "x" * 63],
            ["A", "-a", "a-", "a.b", "é", "x" * 64],
        ),
        (
            inputs.dns1123_subdomain,
            ["a.b", "x" * 253, "web-1.shop"],
            ["a..b", ".a", "a_b", "x" * 254],
        ),
        (inputs.dns1035_label, ["web", "a1"], ["1web", "web-", "Web", "x" * 64]),
        (inputs.path_segment, ["system:node", "Web"], [".", "..", "a/b", "a%b", "a\nb"]),
        (inputs.port_name, ["http", "h2c", "dns-tcp"], ["HTTP", "80", "-a", "a--b", "x" * 16, ""]),
        (inputs.qualified_name, ["app", "k8s.io/app", "a_b.c"], ["a b", "/a", "A..b/x", "-a", ""]),
        (inputs.label_value, ["", "web", "v1.2_3"], ["a b", "-a", "x" * 64, "a\n"]),
        (inputs.config_key, ["app.conf", ".env", "a-b_c"], ["..a", ".", "a/b", "", "a b"]),
        (inputs.cidr, ["10.0.0.0/8", "fd00::/8"], ["10.0.0.1", "10.0.0.0/33", "x/8"]),
        (inputs.dns_name, ["web", "_http._tcp.web.", "a-b.c"], ["-f", "a..b", "", "a b", "x" * 64]),
    ],
)
def test_name_rules(rule, good, bad):
    assert [v for v in good if rule(v) is not None] == []
    assert [v for v in bad if rule(v) is None] == []


def test_port_rules():
    assert [p for p in (1, 80, 65535) if inputs.port_number(p)] == []
    assert all(inputs.port_number(p) for p in (0, -5, 70000, True, "80", 1.0, None))
    assert inputs.check_port("8080") == 8080
    assert inputs.check_timeout(2) == 2.0


def test_shown_keeps_messages_on_one_short_line():
    assert inputs.shown("web") == "web"
    assert inputs.shown("a\nb") == "'a\\nb'"
    assert len(inputs.shown("x" * 1000)) == 40
