"""Result: verdicts and points from steps, deterministic text, HTML card, plain data; failure
classes and their hints; polling with a bounded wait."""

from __future__ import annotations

import json

import hintcheck
import pytest

from labkit.checks import result as result_module
from labkit.checks.result import (
    FAILURE_CLASSES,
    Result,
    Step,
    classify,
    failure_hint,
    make_result,
    poll,
)
from labkit.commands import Shell


def sample(verdict: str | None = None, hint: str = "") -> Result:
    steps = [
        Step("find pod default/a", "Running", True),
        Step("context", "two policies", None),
        Step("connect", "timeout", False, ("line one", "line two")),
    ]
    return make_result(
        "pod_to_pod",
        "default/a -> default/b:80/TCP",
        steps,
        verdict=verdict,
        hint=hint or "look at the policies",
        failure="timeout",
    )


def test_points_count_graded_steps_only():
    r = sample()
    assert (r.verdict, r.points, r.max_points) == ("fail", 1, 2)


def test_all_graded_steps_ok_is_a_pass_without_hint():
    r = make_result(
        "c", "s", [Step("a", "b", True), Step("c", "d", None)], hint="ignored", failure="timeout"
    )
    assert r.verdict == "pass" and r.passed and r.hint == "" and r.failure is None
    assert (r.points, r.max_points) == (1, 1)


def test_no_graded_step_is_not_a_pass():
    with pytest.raises(ValueError, match="needs a hint"):
        make_result("c", "s", [Step("a", "b", None)])
    r = make_result("c", "s", [Step("a", "b", None)], verdict="partial", hint="cannot grade here")
    assert r.verdict == "partial" and r.max_points == 0


def test_a_pass_cannot_hide_a_failed_step():
    with pytest.raises(ValueError, match="cannot contain a failed step"):
        make_result("c", "s", [Step("a", "b", False)], verdict="pass")


def test_failures_must_say_why():
    with pytest.raises(ValueError, match="needs a hint"):
        make_result("c", "s", [Step("a", "b", False)])


def test_unknown_verdict_is_refused():
    with pytest.raises(ValueError, match="verdict"):
        Result("c", "s", "maybe", [])


def test_text_is_exact_and_deterministic():
    text = str(sample())
    assert text == (
        "FAIL  pod_to_pod: default/a -> default/b:80/TCP  (1/2 points)\n"
        "  [ ok ] find pod default/a: Running\n"
        "  [info] context: two policies\n"
        "  [FAIL] connect: timeout\n"
        "         line one\n"
        "         line two\n"
        "  hint (timeout): look at the policies"
    )
    assert repr(sample()) == text


def test_text_names_the_broken_layer():
    r = make_result("diagnose", "x", [Step("dns", "no answer", False)], hint="h", layer="dns")
    assert "first broken layer: dns" in str(r)


def test_html_card_has_badge_steps_and_escaped_hint():
    r = sample(hint="use <svc>.<ns> & retry")
    page = r._repr_html_()
    assert "FAIL" in page and "#cf222e" in page
    assert "find pod default/a" in page and "line one" in page
    assert "&lt;svc&gt;.&lt;ns&gt; &amp; retry" in page and "<svc>" not in page


@pytest.mark.parametrize(
    "verdict, colour", [("pass", "#1a7f37"), ("partial", "#9a6700"), ("fail", "#cf222e")]
)
def test_html_colour_follows_verdict(verdict, colour):
    steps = [Step("a", "b", True)] if verdict == "pass" else [Step("a", "b", None)]
    r = make_result("c", "s", steps, verdict=verdict, hint="" if verdict == "pass" else "h")
    assert colour in r._repr_html_()


def test_to_dict_is_json_ready_and_complete():
    data = sample().to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["verdict"] == "fail" and data["failure"] == "timeout"
    assert data["steps"][2] == {
        "action": "connect",
        "observed": "timeout",
        "ok": False,
        "evidence": ["line one", "line two"],
    }


def test_fractional_points_render_with_one_decimal():
    r = Result("c", "s", "partial", [], hint="h", points=1.5, max_points=3)
    assert "(1.5/3 points)" in str(r)


@pytest.mark.parametrize(
    "outcome, status, expected",
    [
        ("connected", None, None),
        ("connected", 200, None),
        ("connected", 404, "http"),
        ("connected", 503, "http"),
        ("timeout", None, "timeout"),
        ("refused", None, "refused"),
        ("dns", None, "dns"),
        ("unreachable", None, "unreachable"),
        ("error", None, "error"),
        ("weird", None, "error"),
    ],
)
def test_classify(outcome, status, expected):
    assert classify(outcome, status) == expected


SHELLS = [Shell("sandbox", "netlab"), Shell("kind", "netlab")]


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s.backend)
@pytest.mark.parametrize("target", ["pod", "service", "external"])
@pytest.mark.parametrize("failure", FAILURE_CLASSES)
def test_every_failure_class_has_a_hint_for_each_backend(failure, target, shell):
    hint = failure_hint(failure, target, shell)
    assert len(hint) > 40
    assert hintcheck.problems(hint, shell.backend) == []


def test_refused_means_different_things_on_a_pod_and_a_service():
    shell = SHELLS[0]
    assert "nothing listens" in failure_hint("refused", "pod", shell)
    assert "no ready endpoints" in failure_hint("refused", "service", shell)
    assert "targetPort" in failure_hint("refused", "service", shell)
    assert "NetworkPolic" in failure_hint("timeout", "pod", shell)
    assert "ndots" in failure_hint("dns", "any", shell)


def test_failure_hints_name_what_is_known_and_mark_the_rest():
    kind, sandbox = SHELLS[1], SHELLS[0]
    named = failure_hint("refused", "service", kind, svc="web", ns="shop")
    assert "`kubectl --context kind-netlab get endpointslices -n shop -l " in named
    assert "kubernetes.io/service-name=web`" in named
    unnamed = failure_hint("refused", "pod", sandbox)
    assert "`labkit kubectl --name netlab describe pod <pod> -n <namespace>`" in unnamed
    routes = failure_hint("timeout", "pod", sandbox, node="netlab-worker")
    assert "`lab.node_exec('netlab-worker', 'ip route')`" in routes
    assert "`docker exec netlab-worker ip route`" in failure_hint(
        "unreachable", "pod", kind, node="netlab-worker"
    )


def test_unknown_failure_class_is_refused():
    with pytest.raises(ValueError):
        failure_hint("slow", "pod", SHELLS[0])


@pytest.fixture
def fake_time(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(result_module, "clock", lambda: now[0])
    monkeypatch.setattr(result_module, "sleep", lambda s: now.__setitem__(0, now[0] + s))
    return now


def test_poll_stops_as_soon_as_it_matches(fake_time):
    seen = iter([1, 2, 3, 4])
    conv = poll(lambda: next(seen), lambda v: v == 3, wait=10, interval=0.5)
    assert (conv.observation, conv.attempts, conv.converged) == (3, 3, True)
    assert conv.describe() == "converged after 3 attempts"
    assert conv.elapsed_s == pytest.approx(1.0)


def test_poll_gives_up_after_the_bounded_wait(fake_time):
    conv = poll(lambda: 0, lambda v: False, wait=2, interval=0.5)
    assert not conv.converged and conv.attempts == 5
    assert conv.describe() == "still different after 5 attempts (2 s limit)"


def test_poll_always_looks_once(fake_time):
    conv = poll(lambda: "x", lambda v: True, wait=0)
    assert conv.describe() == "converged after 1 attempt"
    conv = poll(lambda: "x", lambda v: False, wait=0)
    assert conv.attempts == 1 and not conv.converged
