"""Predict and find exercises: their data is validated on load (one LabError line), a prediction
is graded against what the lab does (pass, partial, fail; unanswered fails without revealing the
truth), a found fact against the lab's objects (tolerant of whitespace and case, never told when
wrong), and `ex.check` takes a prediction or an answer only where it belongs."""

from __future__ import annotations

from pathlib import Path

import hintcheck
import pytest

from labkit.course import exercise_data, exercise_lab, grading
from labkit.course.exercise_answers import grade_answer, grade_prediction
from labkit.course.exercise_lab import Exercise
from labkit.course.exercise_questions import Case, Connection, Finding
from labkit.errors import LabError
from labkit.lab import ExecResult

PREDICT = """
exercises:
  - id: "07.2"
    title: Predict a connection
    kind: predict
    points: 4
    setup: {scenario: 01-web-across-nodes}
    predict:
      - case: client -> web
        truth: outcome
        src: default/client
        dst: {namespace: default, selector: app=web}
        port: 8080
        nodes: different
      - case: web sees the client's own IP
        truth: source_kept
        src: default/client
        dst: {namespace: default, selector: app=web}
        port: 8080
        nodes: different
    hints: [Think., The answer.]
  - id: "07.3"
    title: Find the database
    kind: find
    points: 3
    setup: {scenario: 01-web-across-nodes}
    find:
      - {name: ip, fact: pod_ip, pod: shop/db}
      - {name: node, fact: pod_node, pod: shop/db}
      - {name: via, fact: node_ip, pod: shop/db}
    hints: [Look., The answer.]
"""

CLIENT_TO_WEB = Connection(
    "default/client", {"namespace": "default", "selector": "app=web"}, 8080, nodes="different"
)
OUTCOME = Case("client -> web", "outcome", CLIENT_TO_WEB)
KEPT = Case("web sees the client's own IP", "source_kept", CLIENT_TO_WEB)
FINDINGS = (
    Finding("ip", "pod_ip", "shop/db"),
    Finding("node", "pod_node", "shop/db"),
    Finding("via", "node_ip", "shop/db"),
)


def specs(tmp_path: Path, text: str = PREDICT) -> dict[str, exercise_data.ExerciseSpec]:
    path = tmp_path / "07-demo.yaml"
    path.write_text(text)
    return {s.id: s for s in exercise_data.load_lesson(path)}


def lines(result) -> list[str]:
    return str(result).splitlines()


# --------------------------------------------------------------------------- the data


def test_predict_and_find_load_as_questions(tmp_path):
    loaded = specs(tmp_path)
    assert loaded["07.2"].cases == (OUTCOME, KEPT) and loaded["07.2"].checks == ()
    assert loaded["07.3"].findings == FINDINGS and loaded["07.3"].cases == ()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("truth: outcome", "truth: latency"), "truth 'latency' is unknown"),
        (("nodes: different\n      - case", "nodes: far\n      - case"), "nodes 'far' is unknown"),
        (
            (
                "port: 8080\n        nodes: different\n      - case",
                "port: 0\n        nodes: x\n      - case",
            ),
            "nodes 'x'",
        ),
        (
            (
                "        port: 8080\n        nodes: different\n    hints",
                "        port: 99999\n    hints",
            ),
            "99999 is not a port number",
        ),
        (
            ("src: default/client\n", "src: a/b/c\n"),
            "not a pod reference",
        ),
        (("fact: pod_ip", "fact: pod_mac"), "fact 'pod_mac' is unknown"),
        (
            ("pod: shop/db}\n      - {name: node", "pod: {selector: ''}}\n      - {name: node"),
            "has no selector",
        ),
        (
            ("case: web sees the client's own IP", "case: client -> web"),
            "case 'client -> web' appears twice",
        ),
        (("name: via", "name: ip"), "name 'ip' appears twice"),
        (
            ("        nodes: different\n      - case", "        colour: red\n      - case"),
            "unknown keys ['colour']",
        ),
        (("{name: ip, fact: pod_ip, pod: shop/db}", "{name: ip, fact: pod_ip}"), "lacks ['pod']"),
        (
            ("    predict:\n", "    checks: [{check: pod_to_pod}]\n    predict:\n"),
            "unknown keys ['checks']",
        ),
        (("    find:\n", "    found:\n"), "has unknown keys ['found']"),
        (
            (
                "    find:\n      - {name: ip, fact: pod_ip, pod: shop/db}\n",
                "    find: []\n      - {name: ip, fact: pod_ip, pod: shop/db}\n",
            ),
            None,
        ),
        (("kind: find", "kind: essay"), "kind 'essay' is not graded yet"),
    ],
)
def test_bad_predict_and_find_data_is_refused_in_one_line(tmp_path, change, message):
    old, new = change
    assert old in PREDICT
    with pytest.raises(Exception) as caught:
        specs(tmp_path, PREDICT.replace(old, new, 1))
    if message is None:  # not even YAML
        return
    assert isinstance(caught.value, LabError)
    assert message in caught.value.what, caught.value.what
    assert caught.value.what.startswith("07-demo.yaml exercise 07.")
    assert "\n" not in caught.value.what and "\n" not in caught.value.fix


DIALLED = """
exercises:
  - id: "07.4"
    title: Predict how calls to a Service end
    kind: predict
    points: 2
    setup: {scenario: 01-web-across-nodes}
    predict:
      - case: client -> web, port 80
        truth: outcome
        src: default/client
        to: web
        port: 80
      - case: client -> 10.96.10.10, port 8080
        truth: outcome
        src: default/client
        to: 10.96.10.10
        port: 8080
    hints: [Think., The answer.]
"""


def test_predict_and_find_may_start_from_a_broken_variant(tmp_path):
    broken = PREDICT.replace(
        "{scenario: 01-web-across-nodes}",
        "{scenario: 01-web-across-nodes, variant: unschedulable-database}",
    )
    loaded = specs(tmp_path, broken)
    assert {s.setup.variant for s in loaded.values()} == {"unschedulable-database"}


def test_a_case_may_dial_a_name_or_address_instead_of_a_pod(tmp_path):
    cases = specs(tmp_path, DIALLED)["07.4"].cases
    assert [c.connection for c in cases] == [
        Connection("default/client", None, 80, to="web"),
        Connection("default/client", None, 8080, to="10.96.10.10"),
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("        to: web\n", ""), "either dst (a pod target) or to"),
        (("        to: web\n", "        to: web\n        dst: default/web\n"), "either dst"),
        (("        to: web\n", "        to: web\n        nodes: same\n"), "nodes only with dst"),
        (("to: web", "to: default/web"), "default/web is not a DNS name or an address"),
        (("to: web", "to: -rf"), "-rf is not a DNS name or an address"),
        (("to: web", "to: 8080"), "8080 is not a DNS name or an address"),
    ],
)
def test_bad_dialled_cases_are_refused_in_one_line(tmp_path, change, message):
    old, new = change
    assert old in DIALLED
    with pytest.raises(LabError) as caught:
        specs(tmp_path, DIALLED.replace(old, new, 1))
    assert message in caught.value.what, caught.value.what
    assert caught.value.what.startswith("07-demo.yaml exercise 07.4: ")
    assert "\n" not in caught.value.what and "\n" not in caught.value.fix


def test_an_empty_question_list_is_refused(tmp_path):
    emptied = PREDICT.split("    find:\n")[0] + "    find: []\n    hints: [Look., The answer.]\n"
    with pytest.raises(LabError, match="find must be a list of entries"):
        specs(tmp_path, emptied)


# --------------------------------------------------------------------------- predictions


def test_a_right_prediction_passes_beside_the_evidence(fakes):
    lab = fakes.web_cluster()
    result = grade_prediction(
        lab, "07.2", (OUTCOME, KEPT), {"client -> web": " Connected ", KEPT.key: True}
    )
    assert (result.verdict, result.points, result.max_points) == ("pass", 2, 2)
    text = str(result)
    assert "you predicted ' Connected '; the lab: 'connected' (right)" in text
    assert "you predicted True; the lab: True (right)" in text
    # the first pair on different nodes: client on lab-worker, web#2 on lab-worker2; one probe
    assert (
        "default/client (10.244.1.2 on lab-worker) -> default/web#2 (10.244.2.3 on lab-worker2)"
        in text
    )
    assert "the server saw the client as 10.244.1.2" in text
    assert "what the NetworkPolicies allow (model): allowed" in text
    assert [c[0] for c in lab.calls] == ["probe"]


def test_nodes_same_picks_a_pair_on_one_node(fakes):
    lab = fakes.web_cluster()
    same = Case(
        "same",
        "outcome",
        Connection("default/client", "default/web-5d4f8c7b9d-abcde", 8080, nodes="same"),
    )
    result = grade_prediction(lab, "07.2", (same,), "connected")
    assert result.verdict == "pass"
    assert "10.244.1.3 on lab-worker" in str(result)


def test_one_wrong_prediction_is_partial_and_shows_the_truth(fakes):
    lab = fakes.web_cluster()
    result = grade_prediction(
        lab, "07.2", (OUTCOME, KEPT), {OUTCOME.key: "timeout", KEPT.key: True}
    )
    assert (result.verdict, result.points) == ("partial", 1)
    assert "you predicted 'timeout'; the lab: 'connected' (wrong)" in str(result)
    assert "Compare your prediction" in result.hint


def test_nat_makes_source_kept_false(fakes):
    lab = fakes.web_cluster()
    lab.nat["default/client"] = "172.18.0.3"
    result = grade_prediction(
        lab, "07.2", (OUTCOME, KEPT), {OUTCOME.key: "connected", KEPT.key: True}
    )
    assert result.verdict == "partial"
    assert "you predicted True; the lab: False (wrong)" in str(result)
    assert "the server saw the client as 172.18.0.3" in str(result)


def test_a_drop_is_a_timeout_and_no_server_sees_the_client(fakes):
    deny = fakes.netpol_doc("deny", {"podSelector": {}, "policyTypes": ["Ingress"]})
    lab = fakes.web_cluster(extra=[deny])
    result = grade_prediction(
        lab, "07.2", (OUTCOME, KEPT), {OUTCOME.key: "timeout", KEPT.key: True}
    )
    assert (result.verdict, result.points) == ("partial", 1)
    assert "the lab: 'timeout' (right)" in str(result)
    assert "no server saw the client (the connection ended timeout)" in str(result)
    assert "blocked on ingress" in str(result) and "by policy default/deny" in str(result)


def test_a_policy_the_cni_does_not_enforce_is_shown_as_such(fakes):
    deny = fakes.netpol_doc("deny", {"podSelector": {}, "policyTypes": ["Ingress"]})
    lab = fakes.web_cluster(enforce=False, cni="flannel", extra=[deny])
    result = grade_prediction(lab, "07.2", (OUTCOME,), "connected")
    assert result.verdict == "pass" and "the lab: 'connected' (right)" in str(result)
    assert "by policy default/deny" in str(result)
    assert "(not enforced here: flannel has no policy engine)" in str(result)
    enforced = grade_prediction(fakes.web_cluster(extra=[deny]), "07.2", (OUTCOME,), "timeout")
    assert enforced.verdict == "pass" and "not enforced" not in str(enforced)


def test_both_wrong_fail(fakes):
    result = grade_prediction(
        fakes.web_cluster(), "07.2", (OUTCOME, KEPT), {OUTCOME.key: "refused", KEPT.key: False}
    )
    assert (result.verdict, result.points, result.max_points) == ("fail", 0, 2)


@pytest.mark.parametrize("unanswered", [None, "", {}, {OUTCOME.key: None, KEPT.key: ""}])
def test_an_unanswered_prediction_fails_without_probing_or_revealing(fakes, unanswered):
    lab = fakes.web_cluster()
    result = grade_prediction(lab, "07.2", (OUTCOME, KEPT), unanswered)
    assert (result.verdict, result.points) == ("fail", 0)
    assert lab.calls == [] and "connected" not in "\n".join(s.observed for s in result.steps)
    assert result.hint.startswith("Nothing was submitted. Record your prediction first")
    assert "'client -> web': <connected|refused|timeout|dns|unreachable|error>" in result.hint
    assert "<True|False>" in result.hint


def test_half_a_prediction_grades_the_half_given(fakes):
    result = grade_prediction(
        fakes.web_cluster(), "07.2", (OUTCOME, KEPT), {OUTCOME.key: "connected"}
    )
    assert (result.verdict, result.points) == ("partial", 1)
    assert "no prediction yet" in str(result)


def test_no_pair_on_the_lab_cannot_be_right(fakes):
    lonely = Case("x", "outcome", Connection("default/client", {"selector": "app=nothing"}, 80))
    result = grade_prediction(fakes.web_cluster(), "07.2", (lonely,), "connected")
    assert result.verdict == "fail"
    assert (
        "the lab cannot show it: no running pod pair for default/client -> default/{app=nothing}"
        in str(result)
    )


def dialled(to: str, port: int = 80, truth: str = "outcome") -> Case:
    key = f"client -> {to}:{port}" + (" keeps its IP" if truth == "source_kept" else "")
    return Case(key, truth, Connection("default/client", None, port, to=to))


def test_a_dialled_service_shows_the_pod_that_answered(fakes):
    lab = fakes.web_cluster()
    cases = (dialled("10.96.10.10"), dialled("10.96.10.10", truth="source_kept"))
    result = grade_prediction(lab, "07.4", cases, {cases[0].key: " Connected", cases[1].key: True})
    assert (result.verdict, result.points) == ("pass", 2)
    text = str(result)
    assert "default/client (10.244.1.2 on lab-worker) -> 10.96.10.10 port 80/TCP: connected" in text
    assert "answered by default/web#" in text and "the server saw the client as 10.244.1.2" in text
    assert "NetworkPolicies" not in text  # the model judges pod pairs, not a dialled name
    assert [c[:3] for c in lab.calls] == [("probe", "default/client", "10.96.10.10")]


def test_a_dialled_name_ends_as_the_lab_says(fakes):
    lab = fakes.web_cluster(extra=[fakes.service("empty", "10.96.30.30", selector={"app": "x"})])
    lab.overrides["wbe"] = "dns"
    cases = (dialled("wbe"), dialled("10.96.30.30"), dialled("10.96.10.10", 8080))
    prediction = {cases[0].key: "dns", cases[1].key: "refused", cases[2].key: "refused"}
    result = grade_prediction(lab, "07.4", cases, prediction)
    assert (result.verdict, result.points) == ("partial", 2)
    text = str(result)
    assert "-> wbe port 80/TCP: dns" in text and "the server saw no client" in text
    assert "you predicted 'refused'; the lab: 'refused' (right)" in text
    assert "answered by" not in text


def test_a_dialled_case_needs_a_running_source(fakes):
    lonely = Case("x", "outcome", Connection({"selector": "app=nothing"}, None, 80, to="web"))
    result = grade_prediction(fakes.web_cluster(), "07.4", (lonely,), "connected")
    assert result.verdict == "fail"
    assert "the lab cannot show it: no running pod for default/{app=nothing}" in str(result)


@pytest.mark.parametrize(
    ("prediction", "message"),
    [
        ({OUTCOME.key: "connects", KEPT.key: True}, "not one of its choices"),
        ({OUTCOME.key: "connected", KEPT.key: "yes"}, "not one of its choices"),
        ({OUTCOME.key: True}, "not one of its choices"),
        ({"client to web": "connected"}, "does not ask about: 'client to web'"),
        ("connected", "asks 2 things, so the prediction is a dict"),
    ],
)
def test_a_prediction_outside_the_choices_is_refused(fakes, prediction, message):
    lab = fakes.web_cluster()
    with pytest.raises(LabError) as caught:
        grade_prediction(lab, "07.2", (OUTCOME, KEPT), prediction)
    assert message in caught.value.what and lab.calls == []


# --------------------------------------------------------------------------- findings


def test_found_facts_pass_whatever_the_spacing_and_case(fakes):
    answer = {"ip": " 10.244.2.5\n", "node": "LAB-Worker", "via": "172.18.0.3"}
    result = grade_answer(fakes.web_cluster(), "07.3", FINDINGS, answer)
    assert (result.verdict, result.points, result.max_points) == ("pass", 3, 3)
    assert "ip: the IP of shop/db: you answered ' 10.244.2.5\\n': right, as the lab says" in str(
        result
    )


def test_any_pod_a_selector_picks_counts(fakes):
    web_ip = (Finding("ip", "pod_ip", {"namespace": "default", "selector": "app=web"}),)
    lab = fakes.web_cluster()
    assert all(grade_answer(lab, "07.3", web_ip, ip).passed for ip in ("10.244.1.3", "10.244.2.4"))
    assert not grade_answer(lab, "07.3", web_ip, "10.244.1.2").passed


@pytest.mark.parametrize("backend", ["sandbox", "kind"])
def test_a_wrong_fact_is_not_told_the_right_one(fakes, backend):
    lab = fakes.web_cluster()
    lab.backend = backend
    result = grade_answer(
        lab, "07.3", FINDINGS, {"ip": "10.244.2.5", "node": "lab-worker2", "via": "172.18.0.4"}
    )
    assert (result.verdict, result.points) == ("partial", 1)
    assert "you answered 'lab-worker2': not what the lab says" in str(result)
    assert "'lab-worker'" not in str(result) and "172.18.0.3" not in str(result)
    assert not hintcheck.problems(result.hint, backend)
    spelt = "`labkit kubectl --name " if backend == "sandbox" else "`kubectl --context kind-"
    assert f"{spelt}" in result.hint and "get pods -A -o wide`" in result.hint
    wrong = grade_answer(lab, "07.3", FINDINGS, {"ip": "10.0.0.1", "node": "x", "via": "y"})
    assert (wrong.verdict, wrong.points) == ("fail", 0)


@pytest.mark.parametrize("unanswered", [None, "", {}, {"ip": None}])
def test_an_unanswered_find_fails(fakes, unanswered):
    result = grade_answer(fakes.web_cluster(), "07.3", FINDINGS, unanswered)
    assert (result.verdict, result.points) == ("fail", 0)
    assert "no answer" in str(result)
    assert result.hint.startswith("Nothing was submitted. Record your answer first")
    assert "'via': <the node IP of shop/db>" in result.hint


def test_a_single_fact_takes_a_bare_answer(fakes):
    assert grade_answer(fakes.web_cluster(), "07.3", FINDINGS[1:2], "lab-worker").passed


def test_a_fact_the_lab_does_not_have_fails(fakes):
    pending = fakes.pod("db2", None, ns="shop", unschedulable="0/3 nodes are available")
    lab = fakes.web_cluster(extra=[pending])
    gone = (Finding("node", "node_ip", "shop/db2"), Finding("ip", "pod_ip", "shop/nothing"))
    result = grade_answer(lab, "07.3", gone, {"node": "172.18.0.3", "ip": "10.244.2.5"})
    assert result.verdict == "fail"
    assert str(result).count("the lab has no such fact now") == 2


POD_CIDR = (Finding("cidr", "node_pod_cidr", "shop/db"),)


@pytest.mark.parametrize("answer", ["10.244.1.0/24", " 10.244.1.0/24\n"])
def test_a_node_pod_cidr_is_compared_as_a_network(fakes, answer):
    # shop/db runs on lab-worker, whose podCIDR is 10.244.1.0/24
    result = grade_answer(fakes.web_cluster(), "07.3", POD_CIDR, answer)
    assert (result.verdict, result.points) == ("pass", 1)
    assert "cidr: the podCIDR of the node of shop/db: you answered" in str(result)


@pytest.mark.parametrize(
    "answer",
    [
        "10.244.1.1/24",  # cni0's address with its prefix: an interface, not the range
        "10.244.1.0",  # the network address without its prefix
        "10.244.0.0/16",  # the cluster's whole range
        "10.244.2.0/24",  # another node's range
        "lab-worker",
    ],
)
def test_a_wrong_node_pod_cidr_fails_without_the_right_one(fakes, answer):
    result = grade_answer(fakes.web_cluster(), "07.3", POD_CIDR, answer)
    assert (result.verdict, result.points) == ("fail", 0)
    assert "not what the lab says" in str(result) and "10.244.1.0/24" not in str(result)


@pytest.mark.parametrize("backend", ["sandbox", "kind"])
def test_a_node_pod_cidr_hint_names_where_the_lab_shows_it(fakes, backend):
    lab = fakes.web_cluster()
    lab.backend = backend
    result = grade_answer(lab, "07.3", POD_CIDR + FINDINGS[2:], {"cidr": "x", "via": "y"})
    assert not hintcheck.problems(result.hint, backend)
    assert "describe nodes" in result.hint and "get nodes -o wide" in result.hint
    unanswered = grade_answer(lab, "07.3", POD_CIDR, None)
    assert "'cidr': <the podCIDR of the node of shop/db>" in unanswered.hint


def test_a_node_without_a_pod_cidr_has_no_such_fact(fakes):
    bare = fakes.pod("edge", "10.0.0.9", ns="shop", node_name="lab-edge")
    lab = fakes.web_cluster(extra=[fakes.node("lab-edge", "172.18.0.9"), bare])
    result = grade_answer(lab, "07.3", (Finding("cidr", "node_pod_cidr", "shop/edge"),), "x")
    assert "the lab has no such fact now" in str(result) and result.verdict == "fail"


# --------------------------------------------------------------------------- ex.check


@pytest.fixture
def set_up(monkeypatch):
    """Every exercise counts as set up (the deploy rule has tests of its own)."""
    monkeypatch.setattr(grading, "not_deployed", lambda *args: None)


def test_check_scores_a_prediction_and_records_it(tmp_path, fakes, set_up, progress_file):
    ex = Exercise(specs(tmp_path)["07.2"], fakes.web_cluster())
    result = ex.check(prediction={OUTCOME.key: "connected", KEPT.key: False})
    assert result.headline() == "exercise 07.2: partial (2/4)"
    assert lines(result)[2].startswith("  PARTIAL  prediction: exercise 07.2  (1/2 points)")
    assert ex.check(prediction=None).headline() == "exercise 07.2: fail (0/4)"
    assert '"exercise": "07.2"' in progress_file.read_text()


def test_check_scores_an_answer(tmp_path, fakes, set_up, progress_file):
    ex = Exercise(specs(tmp_path)["07.3"], fakes.web_cluster())
    answer = {"ip": "10.244.2.5", "node": "lab-worker", "via": "172.18.0.4"}
    assert ex.check(answer=answer).headline() == "exercise 07.3: partial (2/3)"
    assert ex.check().headline() == "exercise 07.3: fail (0/3)"


def test_check_refuses_a_misplaced_submission(tmp_path, fakes, set_up, progress_file):
    loaded = specs(tmp_path)
    lab = fakes.web_cluster()
    with pytest.raises(LabError, match="takes no answer") as caught:
        Exercise(loaded["07.2"], lab).check(answer="x")
    assert caught.value.fix == "Grade it with ex.check(prediction=...)."
    with pytest.raises(LabError, match="takes no prediction"):
        Exercise(loaded["07.3"], lab).check(prediction="x")
    repair = exercise_lab.exercise("00.1", lab)
    with pytest.raises(LabError, match="a repair exercise and takes no answer") as caught:
        repair.check(answer="nginx")
    assert caught.value.fix == "Grade it with ex.check()."
    assert not progress_file.exists()


# --------------------------------------------------------------------------- host_veth

LINK = (
    "{index}: {name}: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP mode "
    "DEFAULT group default qlen 1000\\    link/ether ee:ee:ee:ee:ee:ee brd ff:ff:ff:ff:ff:ff\n"
)
IP_LINK = ("ip", "-o", "link", "show")
VETH = (Finding("veth", "host_veth", "shop/db"),)


def wired(fakes, eth0: str = "eth0@if4", **changes):
    """web_cluster with shop/db's eth0 and the interfaces of its node (lab-worker) recorded, as
    `ip -o link show` prints them on the sandbox's calico."""
    lab = fakes.web_cluster(extra=changes.pop("extra", ()))
    node_links = changes.pop(
        "node_links",
        LINK.format(index=3, name="cali02105432505@if2")
        + LINK.format(index=4, name="calib4c721bae48@if2"),
    )
    outputs = {
        ("shop/db", IP_LINK): LINK.format(index=1, name="lo") + LINK.format(index=2, name=eth0),
        ("lab-worker", IP_LINK): node_links,
    }
    lab.exec_outputs = {k: ExecResult(k[1], 0, v) for k, v in outputs.items()}
    return lab


def test_the_host_veth_is_the_node_link_eth0_names(fakes):
    lab = wired(fakes)
    for answer in ("calib4c721bae48", " CALIB4C721BAE48 ", "calib4c721bae48@if2"):
        result = grade_answer(lab, "07.3", VETH, answer)
        assert (result.verdict, result.points) == ("pass", 1), answer
    assert "veth: the node-side veth of shop/db: you answered" in str(result)
    assert ("node_exec", "lab-worker", IP_LINK) in lab.calls


def test_a_wrong_veth_is_not_told_the_right_one_but_where_to_look(fakes):
    lab = wired(fakes)
    backend = lab.backend
    result = grade_answer(lab, "07.3", VETH, "cali02105432505")  # another pod's veth
    assert (result.verdict, result.points) == ("fail", 0)
    assert "calib4c721bae48" not in str(result) and "calib4c721bae48" not in result.hint
    assert not hintcheck.problems(result.hint, backend)
    pod_links, node_links = hintcheck.spans(result.hint)
    if backend == "sandbox":
        assert pod_links == "labkit kubectl --name fake exec db -n shop -- ip link"
        assert node_links == "lab.node_exec('lab-worker', 'ip link')"
    else:
        assert pod_links == "kubectl --context kind-fake exec db -n shop -- ip link"
        assert node_links == "docker exec lab-worker ip link"
    assert "Look it up" not in result.hint  # no object listing helps here


def test_the_hint_keeps_the_node_to_itself_while_a_node_is_asked(fakes):
    asked = (*VETH, Finding("node", "pod_node", "shop/db"))
    result = grade_answer(wired(fakes), "07.3", asked, {"veth": "x", "node": "y"})
    assert result.verdict == "fail"
    assert "lab-worker" not in result.hint
    if fakes.FakeLab.default_backend == "sandbox":
        assert "lab.node_exec('<node>', 'ip link')" in result.hint
        assert (
            "Look it up on the lab with `labkit kubectl --name fake get pods -A -o wide`"
            in result.hint
        )
    else:
        assert "docker exec <node> ip link" in result.hint


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"eth0": "eth0"}, "eth0 without a peer index"),
        ({"eth0": "net1@if4"}, "no eth0"),
        ({"node_links": LINK.format(index=3, name="cali02105432505@if2")}, "no link 4 on the node"),
    ],
)
def test_no_veth_to_read_is_no_fact(fakes, change, why):
    result = grade_answer(wired(fakes, **change), "07.3", VETH, "calib4c721bae48")
    assert result.verdict == "fail", why
    assert "the lab has no such fact now" in str(result), why


def test_a_pod_without_its_own_network_has_no_host_veth(fakes):
    host = fakes.pod("agent", "172.18.0.3", ns="shop")
    host["spec"]["hostNetwork"] = True
    pending = fakes.pod("db2", None, ns="shop", unschedulable="0/3 nodes are available")
    lab = wired(fakes, extra=[host, pending])
    gone = (Finding("a", "host_veth", "shop/agent"), Finding("b", "host_veth", "shop/db2"))
    result = grade_answer(lab, "07.3", gone, {"a": "eth0", "b": "x"})
    assert str(result).count("the lab has no such fact now") == 2
    assert not [c for c in lab.calls if c[0] in ("exec", "node_exec")]  # nothing to read


def test_a_failing_read_is_no_fact(fakes):
    lab = wired(fakes)
    del lab.exec_outputs[("lab-worker", IP_LINK)]  # the node's command fails (not recorded)
    assert "the lab has no such fact now" in str(grade_answer(lab, "07.3", VETH, "calib4c721bae48"))
    lab = wired(fakes)
    del lab.exec_outputs[("shop/db", IP_LINK)]
    assert "the lab has no such fact now" in str(grade_answer(lab, "07.3", VETH, "calib4c721bae48"))
