"""Drawn repairs (the capstone): pools are validated in one line, a draw is stable per learner and
exercise and spreads over learners, every combination of the capstone's draws fits on one lab,
and a drawn exercise grades like a repair of its variant without showing the learner the draw."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from labkit import scenarios
from labkit.checks import progress
from labkit.checks.result import Step, make_result
from labkit.course import exercise_data, exercise_lab
from labkit.course.exercise_draw import Draw
from labkit.course.exercise_lab import Exercise
from labkit.errors import LabError
from labkit.scenarios.coexist import conflicts

ROOT = Path(__file__).resolve().parents[2]

DRAWN = """
exercises:
  - id: "07.1"
    title: Fix what you drew
    kind: repair
    points: 3
    setup:
      draw:
        - {scenario: 02-expose-nginx, variant: wrong-target-port}
        - {scenario: 17-service-without-endpoints, variant: selector-needs-tier}
    hints:
      - Probe first.
      - {failure: refused, text: Refused is answered.}
      - Fix the Service.
"""
SEVENTEEN = "17-service-without-endpoints, variant: selector-needs-tier"
SECOND = """
  - id: "07.2"
    title: Another pool
    kind: repair
    points: 3
    setup:
      draw:
        - {scenario: 14-three-tier-policies, variant: database-open-to-frontend}
        - {scenario: 18-troubleshooting-symptoms, variant: deny-all-ingress}
    hints: [Probe first., Fix the policy.]
"""


def specs_of(tmp_path: Path, text: str) -> list[exercise_data.ExerciseSpec]:
    path = tmp_path / "07-demo.yaml"
    path.write_text(text)
    return exercise_data.load_lesson(path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("kind: repair", "kind: write\n    writes: [Service/x]"), "only a repair draws"),
        (
            (f"        - {{scenario: {SEVENTEEN}}}\n", ""),
            "only a repair draws, from a list of at least two",
        ),
        (("variant: selector-needs-tier", "variant: nope"), "has no variant 'nope'"),
        ((f"{{scenario: {SEVENTEEN}}}", "{}"), "setup"),
        (
            (f"{{scenario: {SEVENTEEN}}}", "{scenario: 10-kube-proxy-rules}"),
            "a repair starts from a broken variant",
        ),
        ((SEVENTEEN, "02-expose-nginx, variant: wrong-target-port"), "another scenario"),
        (
            ("    hints:", "    checks: [{check: service_health}]\n    hints:"),
            "unknown keys ['checks']",
        ),
    ],
)
def test_a_bad_pool_is_refused_in_one_line(tmp_path, change, message):
    old, new = change
    assert old in DRAWN
    with pytest.raises(LabError) as caught:
        specs_of(tmp_path, DRAWN.replace(old, new, 1))
    assert message in caught.value.what
    assert caught.value.what.startswith("07-demo.yaml")
    assert "\n" not in caught.value.what and "\n" not in caught.value.fix


@pytest.mark.parametrize(
    ("pool", "message"),
    [
        (
            "[{scenario: 02-expose-nginx, variant: wrong-target-port}, "
            "{scenario: 07-nodeport, variant: selector-typo}]",
            "02-expose-nginx is in the pools of exercises 07.1 and 07.2",
        ),
        (
            "[{scenario: 03-database-migration, variant: mysql-retired-first}, "
            "{scenario: 07-nodeport, variant: selector-typo}]",
            "03-database-migration and 17-service-without-endpoints, which cannot share a lab: "
            "both define Deployment default/postgres differently",
        ),
    ],
)
def test_pools_of_one_lesson_must_fit_on_one_lab(tmp_path, pool, message):
    second = SECOND.replace(
        SECOND[SECOND.index("      draw:") : SECOND.index("    hints:")], f"      draw: {pool}\n"
    )
    with pytest.raises(LabError, match=r"cannot share|is in the pools") as caught:
        specs_of(tmp_path, DRAWN + second)
    assert message in caught.value.what


def test_a_drawn_variant_must_have_checks(tmp_path, monkeypatch):
    real = scenarios.get

    def without_checks(name):
        found = real(name)
        if found.name != "02-expose-nginx":
            return found
        return replace(found, variants=tuple(replace(v, checks=()) for v in found.variants))

    monkeypatch.setattr(scenarios, "get", without_checks)
    with pytest.raises(LabError, match="wrong-target-port declares no checks"):
        specs_of(tmp_path, DRAWN)


def test_conflicts_name_objects_selectors_and_node_ports(tmp_path):
    assert conflicts(scenarios.get("06-api-gateway"), scenarios.get("11-env-to-dns")) == [
        "both define Deployment default/user differently",
        "both define Service default/user-service differently",
    ]
    shared = conflicts(
        scenarios.get("02-expose-nginx"), scenarios.get("18-troubleshooting-symptoms")
    )
    assert shared == [], "an identical object (the client pod) is shared, not a clash"
    folder = tmp_path / "99-greedy"
    folder.mkdir()
    (folder / "scenario.yaml").write_text(
        "title: t\nlesson: 99-x\nsection: s\ndemonstrates: d\nmanifests: [all.yaml]\n"
    )
    (folder / "all.yaml").write_text(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
        "metadata: {name: deny-everything}\nspec: {podSelector: {}, policyTypes: [Ingress]}\n"
        "---\napiVersion: v1\nkind: Service\nmetadata: {name: other-port}\n"
        "spec: {type: NodePort, selector: {app: none}, ports: [{port: 80, nodePort: 30080}]}\n"
    )
    greedy = scenarios.load_scenario(folder)
    found = conflicts(greedy, scenarios.get("07-nodeport"))
    assert found == [
        "NetworkPolicy default/deny-everything of 99-greedy selects the pods of my-app",
        "both claim nodePort 30080",
    ]
    assert conflicts(scenarios.get("07-nodeport"), greedy)[0].startswith("NetworkPolicy")


def capstone_pools() -> dict[str, Draw]:
    pools = {
        ident: spec.setup
        for ident, spec in exercise_data.load().items()
        if isinstance(spec.setup, Draw)
    }
    assert len(pools) >= 3, "the capstone draws at least three faults"
    return pools


def test_every_combination_of_the_capstones_draws_fits_on_one_lab():
    pools = capstone_pools()
    scenario = {s.scenario: scenarios.get(s.scenario) for d in pools.values() for s in d.pool}
    for draw in itertools.product(*(d.pool for d in pools.values())):
        for first, second in itertools.combinations(draw, 2):
            assert first.scenario != second.scenario
            assert conflicts(scenario[first.scenario], scenario[second.scenario]) == [], draw
        for setup in draw:
            assert scenario[setup.scenario].variant(str(setup.variant)).role == "broken"


def test_a_draw_is_stable_across_processes_and_hash_seeds():
    pools = capstone_pools()
    here = {i: d.pick("ada", i) for i, d in pools.items()}
    assert here == {i: d.pick("ada", i) for i, d in pools.items()}
    program = (
        "from labkit.course import exercise_data as d\n"
        "print([(i, s.setup.pick('ada', i).scenario) for i, s in sorted(d.load().items())"
        " if hasattr(s.setup, 'pick')])"
    )
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        out = subprocess.run(
            [sys.executable, "-c", program], env=env, capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == str([(i, here[i].scenario) for i in sorted(here)])


def test_learners_usually_get_different_outages():
    pools = capstone_pools()
    learners = [f"learner{n}" for n in range(200)]
    outages = [tuple(d.pick(who, i) for i, d in pools.items()) for who in learners]
    for position, draw in enumerate(pools.values()):
        assert {o[position] for o in outages} == set(draw.pool), "every fault gets drawn"
    same = sum(a == b for a, b in itertools.combinations(outages, 2))
    pairs = len(learners) * (len(learners) - 1) // 2
    assert same / pairs < 0.15, f"{same} of {pairs} pairs of learners share an outage"
    one = next(iter(pools.values()))
    assert len({one.pick("ada", f"07.{n}") for n in range(1, 40)}) > 1, "the id seeds it too"


@pytest.fixture
def ran(monkeypatch):
    """Checks an exercise runs are recorded; the first call fails (refused), the rest pass."""
    calls: list[tuple[str, dict]] = []

    def run_check(lab, name, args):
        calls.append((name, args))
        if len(calls) == 1:
            return make_result(
                name,
                "svc",
                [Step("look", "wrong", False)],
                hint="targetPort 8080",
                failure="refused",
            )
        return make_result(name, "svc", [Step("look", "ok", True)])

    monkeypatch.setattr(exercise_lab, "run_check", run_check)
    return calls


def learner_for(spec: exercise_data.ExerciseSpec, scenario: str) -> str:
    assert isinstance(spec.setup, Draw)
    return next(
        who
        for who in (f"learner{n}" for n in range(100))
        if spec.setup.pick(who, spec.id).scenario == scenario
    )


def test_a_drawn_repair_grades_like_its_variant_and_hides_the_draw(
    tmp_path, fakes, ran, progress_file
):
    spec = specs_of(tmp_path, DRAWN)[0]
    who = learner_for(spec, "02-expose-nginx")
    lab = fakes.ObjectLab()
    ex = Exercise(spec, lab, learner=who)
    assert ex.fault is not None and (ex.fault.scenario, ex.fault.variant) == (
        "02-expose-nginx",
        "wrong-target-port",
    )
    before = ex.check()
    shown = [repr(ex), str(before), before._repr_html_()]
    assert before.headline() == "exercise 07.1: fail (0/3)" and "`ex.setup()`" in before.hint
    ex.setup()
    assert progress.last_deployed("02-expose-nginx", lab.name, lab.uid()).variant == (
        "wrong-target-port"
    )
    first = ex.check()
    shown += [str(first), first._repr_html_()]
    for text in shown:
        assert "02-expose" not in text and "wrong-target-port" not in text, text
    variant = scenarios.get("02-expose-nginx").variant("wrong-target-port")
    assert ran == [(c.check, c.args) for c in variant.checks]
    assert first.headline() == "exercise 07.1: fail (0/3)"
    assert ex.check().headline() == "exercise 07.1: pass (3/3)"
    lab.apply(list(ex.fault.fix))
    assert lab.get("service", "nginx-service")[0]["spec"]["ports"][0]["targetPort"] == 80


def test_the_ladder_ends_with_the_checks_hint_and_the_fault_drawn(
    tmp_path, fakes, ran, progress_file, monkeypatch
):
    spec = specs_of(tmp_path, DRAWN)[0]
    who = learner_for(spec, "17-service-without-endpoints")
    monkeypatch.setenv("LOGNAME", who)  # the default learner: this user, as progress names them
    ex = Exercise(spec, fakes.ObjectLab())
    assert ex.fault is not None and ex.fault.scenario == "17-service-without-endpoints"
    ex.setup()
    assert str(ex.hint()) == "hint 1 of 5 for exercise 07.1: Probe first."
    assert str(ex.hint()) == "hint 3 of 5 for exercise 07.1: Fix the Service."
    assert "is your failing check's own, so it comes after an attempt" in str(ex.hint())
    ex.check()
    assert str(ex.hint()).endswith("Refused is answered.")
    assert str(ex.hint()) == (
        "hint 4 of 5 for exercise 07.1: The failing check says: targetPort 8080"
    )
    giveaway = str(ex.hint())
    assert giveaway.startswith("hint 5 of 5 for exercise 07.1: The Service also requires tier=db")
    assert giveaway.endswith(
        "The fix: apply scenario 17-service-without-endpoints's own Service default/postgres-db "
        "with lab.apply(...) in the notebook."
    )
    assert progress.exercise_history("07.1", who).hints == (0, 2, 1, 3, 4)
