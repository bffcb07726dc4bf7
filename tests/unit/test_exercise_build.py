"""Build-by-hand exercises: the ``build:`` block is validated on load (one LabError line for each
thing wrong), grading probes from the hand-made namespace (fail without it, then one share per
case reached: fail, partial, pass, with evidence), and setup/reset remove the namespace."""

from __future__ import annotations

from pathlib import Path

import hintcheck
import pytest

from labkit.course import exercise_data, grading
from labkit.course.exercise_build import Build, Reach, grade_build
from labkit.course.exercise_lab import Exercise
from labkit.errors import LabError

BUILD = """
exercises:
  - id: "07.4"
    title: Wire a pod's network by hand
    kind: build
    points: 3
    setup: {scenario: 01-web-across-nodes}
    build:
      namespace: hand
      node: {namespace: default, selector: app=client}
      reach:
        - {case: same node, dst: {namespace: default, selector: app=web}, port: 8080, nodes: same}
        - case: other node
          dst: {namespace: default, selector: app=web}
          port: 8080
          nodes: different
        - {case: the Service, service: {namespace: default, name: web}, port: 80}
    hints: [Make the namespace first., The whole recipe.]
"""

WEB = {"namespace": "default", "selector": "app=web"}
SAME = Reach("same node", 8080, dst=WEB, nodes="same")
OTHER = Reach("other node", 8080, dst=WEB, nodes="different")
SERVICE = Reach("the Service", 80, service=("default", "web"))
HAND = Build("hand", (SAME, OTHER, SERVICE), pod={"namespace": "default", "selector": "app=client"})
SRC = "lab-worker:hand"


def spec_of(tmp_path: Path, text: str = BUILD) -> exercise_data.ExerciseSpec:
    path = tmp_path / "07-demo.yaml"
    path.write_text(text)
    return exercise_data.load_lesson(path)[0]


def test_the_build_block_parses(tmp_path):
    spec = spec_of(tmp_path)
    assert spec.kind == "build" and spec.checks == () and spec.build == HAND
    named = spec_of(tmp_path, BUILD.replace("{namespace: default, selector: app=client}", "n-1"))
    assert named.build is not None and (named.build.node, named.build.pod) == ("n-1", None)


@pytest.mark.parametrize(
    "old,new,message",
    [
        ("    build:\n", "    checks: []\n    build:\n", "has unknown keys ['checks']"),
        ("      namespace: hand\n", "", "build must have exactly namespace, node and reach"),
        ("namespace: hand", "namespace: Hand", "'Hand' cannot name a hand-made network namespace"),
        ("namespace: hand", "namespace: --help", "cannot name a hand-made network namespace"),
        ("namespace: hand", "namespace: a-very-long-name-x", "cannot name a hand-made"),
        ("{namespace: default, selector: app=client}", "Bad_Node", "'Bad_Node' is not a node"),
        ("{namespace: default, selector: app=client}", "{namespace: default}", "has no selector"),
        ("      reach:\n", "      reach: []\n      x:\n", "build must have exactly"),
        ("case: same node, dst", "case: other node, dst", "case 'other node' appears twice"),
        (", port: 8080, nodes: same}", ", nodes: same}", "a reach case lacks ['port']"),
        ("nodes: same}", "nodes: same, colour: red}", "has unknown keys ['colour']"),
        ("{case: the Service, service:", "{case: the Service, dst: x, service:", "either dst or"),
        ("{case: the Service, service: {namespace: default, name: web}", "{case: s", "either dst"),
        ("nodes: same}", "nodes: near}", "nodes 'near' does not fit case 'same node'"),
        ("name: web}, port: 80}", "name: web}, port: 80, nodes: same}", "does not fit case"),
        ("name: web}, port: 80}", "name: web}, port: 0}", "0 is not a port number"),
        ("port: 80}", "port: 80, protocol: ICMP}", "Unknown protocol 'ICMP'"),
        ("{namespace: default, name: web}", "web", "service 'web' is not a Service"),
        ("{namespace: default, name: web}", "{name: Web_1}", "default/Web_1 is not a Service"),
        ("dst: {namespace: default, selector: app=web}, port", "dst: 7, port", "string or a"),
        ("setup: {scenario: 01-web-across-nodes}", "setup: {scenario: 02-expose-nginx, "
         "variant: wrong-target-port}", "a repair starts from a broken variant"),
    ],
)  # fmt: skip
def test_bad_build_data_is_refused_in_one_line(tmp_path, old, new, message):
    assert old in BUILD
    with pytest.raises(LabError) as caught:
        spec_of(tmp_path, BUILD.replace(old, new, 1))
    assert message in caught.value.what
    assert "\n" not in caught.value.what and caught.value.fix


def _hints_fit(result, backend: str) -> None:
    assert not hintcheck.problems(result.hint, backend)


def test_without_the_namespace_nothing_is_probed_and_the_step_says_how(fakes):
    lab = fakes.web_cluster(extra=[fakes.pod("client", "10.244.1.2", labels={"app": "client"})])
    result = grade_build(lab, "07.4", HAND)
    assert (result.verdict, result.points) == ("fail", 0)
    first = result.steps[0]
    assert first.ok is False and "lab.netns_add('lab-worker', 'hand')" in first.observed
    assert all("not probed" in s.observed for s in result.steps[1:])
    assert [c for c in lab.calls if c[0] == "probe"] == []
    assert "lab.netns_add('lab-worker', 'hand')" in result.hint
    _hints_fit(result, lab.backend)


def test_an_unwired_namespace_reaches_nothing(fakes):
    lab = fakes.web_cluster()
    lab.netns_add("lab-worker", "hand")
    result = grade_build(lab, "07.4", HAND)
    assert (result.verdict, result.points, result.max_points) == ("fail", 0, 3)
    assert result.failure == "unreachable"
    assert "lab.netns_exec('lab-worker', 'hand', 'ip addr; ip route')" in result.hint
    assert "not reached (unreachable)" in str(result)
    _hints_fit(result, lab.backend)


def test_each_case_reached_earns_its_share(fakes):
    lab = fakes.web_cluster()
    lab.netns_add("lab-worker", "hand")
    lab.overrides[(SRC, "10.244.1.3", 8080)] = "connected"
    lab.overrides[(SRC, "10.96.10.10", 80)] = "timeout"
    partial = grade_build(lab, "07.4", HAND)
    assert (partial.verdict, partial.points) == ("partial", 1)
    assert partial.failure == "unreachable"  # the first case not reached says why
    text = str(partial)
    assert (
        "lab-worker:hand -> default/web#1 (10.244.1.3 on lab-worker) port 8080/TCP: connected"
        in text
    )
    assert "lab-worker:hand -> default/web#2 (10.244.2.3 on lab-worker2) port 8080/TCP" in text
    assert "Service default/web (10.96.10.10) port 80/TCP: timeout" in text
    lab.overrides[(SRC, "10.244.2.3", 8080)] = "connected"
    lab.overrides[(SRC, "10.96.10.10", 80)] = "connected"
    passed = grade_build(lab, "07.4", HAND)
    assert (passed.verdict, passed.points, passed.hint) == ("pass", 3, "")


def test_a_case_the_lab_cannot_offer_fails_without_a_probe(fakes):
    lab = fakes.web_cluster()
    lab.netns_add("lab-worker", "hand")
    gone = Reach("db", 80, service=("shop", "nothere"))
    result = grade_build(lab, "07.4", Build("hand", (gone,), node="lab-worker"))
    assert result.verdict == "fail"
    assert "the lab has no Service shop/nothere with a ClusterIP" in str(result)
    nobody = Build("hand", (SAME,), pod={"namespace": "default", "selector": "app=none"})
    assert "no running pod default/{app=none}" in str(grade_build(lab, "07.4", nobody))


def test_setup_and_reset_remove_the_namespace_and_check_scores(tmp_path, fakes, progress_file):
    spec = spec_of(tmp_path)
    lab = fakes.ObjectLab()
    lab.apply([fakes.node("netlab-worker", "172.18.0.3"), fakes.node("netlab-worker2", "x")])
    lab.netns_add("netlab-worker2", "hand")  # left by an earlier attempt
    lab.netns_add("netlab-worker2", "other")
    ex = Exercise(spec, lab, learner="ada")
    ex.setup()
    assert lab.netns_list("netlab-worker2") == ["other"]
    assert grading.not_deployed(lab, *_scenario(spec)) is None
    lab.netns_add("netlab-worker", "hand")
    ex.reset()
    assert lab.netns_list("netlab-worker") == []


def _scenario(spec):
    from labkit import scenarios

    return scenarios.get(spec.setup.scenario), spec.setup.variant


def test_check_grades_a_build_exercise(tmp_path, fakes, progress_file, monkeypatch):
    spec = spec_of(tmp_path)
    lab = fakes.web_cluster(extra=[fakes.pod("client", "10.244.1.2", labels={"app": "client"})])
    monkeypatch.setattr(grading, "not_deployed", lambda *args: None)
    ex = Exercise(spec, lab, learner="ada")
    assert str(ex.check()).startswith("exercise 07.4: fail (0/3)")
    lab.netns_add("lab-worker", "hand")
    lab.overrides[(SRC, "10.244.1.3", 8080)] = "connected"
    assert str(ex.check()).startswith("exercise 07.4: partial (1/3)")
    with pytest.raises(LabError, match="takes no prediction"):
        ex.check(prediction="connected")
