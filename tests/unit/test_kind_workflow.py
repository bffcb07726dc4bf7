"""The Kind workflow (.github/workflows/kind.yml) tests what learners do: parsed as GitHub reads
it, its doctor step run for real against a stand-in `labkit`."""

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from labkit.kind import pins
from labkit.values import CNIS

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = yaml.safe_load((ROOT / ".github" / "workflows" / "kind.yml").read_text())
JOB = WORKFLOW["jobs"]["kind"]
STEPS = JOB["steps"]


def step(name_start: str) -> dict:
    """The one step whose name starts so."""
    (found,) = [s for s in STEPS if s.get("name", "").startswith(name_start)]
    return found


def as_run(script: str, cni: str) -> str:
    """A step's script with the expressions GitHub fills in."""
    return re.sub(r"\$\{\{\s*matrix\.cni\s*\}\}", cni, script)


def test_one_job_per_cni_with_the_pinned_tools():
    """GitHub Actions workflow syntax (jobs.<id>.strategy.matrix, include): every CNI labkit
    offers, plus Cilium without kube-proxy; kind and kubectl as labkit/kind/pins.py pins them."""
    matrix = JOB["strategy"]["matrix"]
    assert set(matrix["cni"]) == set(CNIS)
    assert {"cni": "cilium", "kube_proxy_mode": "none"} in matrix["include"]
    assert JOB["strategy"]["fail-fast"] is False
    assert WORKFLOW["env"]["KIND_VERSION"] == pins.KIND_VERSION
    assert WORKFLOW["env"]["KUBECTL_VERSION"].startswith(f"v1.{pins.KUBERNETES_MINOR}.")
    assert isinstance(JOB["timeout-minutes"], int)


@pytest.mark.parametrize(
    "output,fails",
    [
        ("[ok  ] kind: docker: answers\n[warn] kind: helm on PATH: missing\n", False),
        ("[ok  ] kind: docker: answers\n[FAIL] kind: kind on PATH: too old\n", True),
    ],
)
def test_the_doctor_step_fails_the_job_on_a_fail_line(tmp_path, output, fails):
    """GitHub Actions runs `run:` with `bash -e {0}` (workflow syntax, defaults.run.shell): the
    step fails on a `[FAIL]` line of `labkit doctor` (labkit/doctor.py render_lines), not on a
    warning."""
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "labkit").write_text(f"#!/bin/sh\nprintf '%s' '{output}'\nexit 0\n")
    (bin_dir / "labkit").chmod(0o755)
    script = as_run(step("Doctor")["run"], "calico")
    proc = subprocess.run(
        ["bash", "-e", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=30
    )
    assert (proc.returncode != 0) is fails, proc.stdout + proc.stderr
    assert ("::error::" in proc.stdout) is fails
    assert 'doctor --backend kind --cni "calico"' in script


def test_the_live_tests_run_every_learner_case_per_cni_with_their_own_timeouts():
    """tests/kind/conftest.py sets each test's pytest-timeout (func_only) and the bring-up's
    budget; a blanket --timeout on the command line would charge the cluster's creation to the
    first test again."""
    live = step("Live Kind tests")
    assert "pytest -m kind tests/kind" in live["run"] and "--timeout" not in live["run"]
    assert live["env"]["LABKIT_KIND_CNI"] == "${{ matrix.cni }}"
    assert live["env"]["LABKIT_KIND_KUBE_PROXY_MODE"] == "${{ matrix.kube_proxy_mode }}"
    assert {"LABKIT_KIND_TEST_TIMEOUT_S", "LABKIT_KIND_UP_BUDGET_S"} <= set(live["env"])
    assert live["timeout-minutes"] < JOB["timeout-minutes"]
    learner = (ROOT / "tests" / "kind" / "test_kind_learner.py").read_text()
    for case in (
        "def test_reset_keeps_a_bare_pod",
        "def test_loadbalancer_through_cloud_provider_kind",
        "def test_ingress_through_cloud_provider_kind",
        "def test_network_policy_checks_pass_and_catch_the_broken_policy",
    ):
        assert case in learner


def test_nbval_runs_the_lessons_on_a_kind_lab_and_every_lab_goes_at_the_end():
    """Make's nbval target on a Kind lab of the job's CNI, doctor again with that lab up, and a
    last step with `if: always()` (runs after a failure or a cancel) removing every Kind lab."""
    nbval = step("Lessons on a Kind lab")
    script = as_run(nbval["run"], "flannel")
    up = script.index('labkit up --backend kind --cni "flannel" --name nbval')
    assert up < script.index("labkit doctor") < script.index("make nbval NBVAL_LAB=nbval")
    for name in ("FLANNEL_LESSONS", "CILIUM_LESSONS"):
        lessons = WORKFLOW["env"][name].split()
        assert lessons and all((ROOT / lesson).is_file() for lesson in lessons)
    last = STEPS[-1]
    assert last["if"] == "always()"
    assert "labkit down --name" in last["run"] and "kind delete cluster" in last["run"]
