"""The tutorial's scenarios as deployable folders: manifests, a scenario.yaml, broken variants.

A scenario folder holds `scenario.yaml` and the manifests it names. `deploy(lab, name)` applies
them through the Lab seam (so both backends work); `reset(lab, name)` removes everything the
scenario and its variants create, then deploys the starting state again.
"""

from __future__ import annotations

import logging
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from labkit import manifests
from labkit.checks import CHECKS, Result
from labkit.errors import LabError
from labkit.lab import BACKENDS, Lab, ObjectRef

log = logging.getLogger("labkit")

SCENARIO_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class CheckSpec:
    """A check from `labkit.checks.CHECKS` and the arguments it is called with."""

    check: str
    args: dict[str, Any] = field(default_factory=dict)
    backends: tuple[str, ...] = BACKENDS


@dataclass(frozen=True)
class OutsideHost:
    """An address range outside the cluster that a scenario needs (e.g. a payment gateway)."""

    cidr: str
    ports: tuple[int, ...]
    describe: str


@dataclass(frozen=True)
class Variant:
    """A state reached from the starting one: a later `step` of the story, or a `broken` state
    learners repair (then `hint_contains` is what the failing check must say, and `fix` repairs
    it)."""

    name: str
    role: str
    description: str
    manifests: tuple[str, ...]
    checks: tuple[CheckSpec, ...]
    delete: tuple[str, ...] = ()
    fix: tuple[str, ...] = ()
    hint_contains: str = ""


@dataclass(frozen=True)
class KindStep:
    """A step only a real Kind cluster can show: run on a node (by role) or with kubectl."""

    describe: str
    command: tuple[str, ...]
    node: str | None = None
    cnis: tuple[str, ...] = ()

    def argv(self, lab_name: str) -> list[str]:
        """The full command line: `docker exec <node> ...` for node steps, kubectl with the Kind
        cluster's context otherwise."""
        if self.node is None:
            if self.command[0] != "kubectl":
                raise LabError(
                    f"Kind step {self.describe!r} runs {self.command[0]!r}.",
                    "Kind steps run on a node (give `node:`) or are kubectl commands.",
                )
            return ["kubectl", "--context", f"kind-{lab_name}", *self.command[1:]]
        return ["docker", "exec", f"{lab_name}-{self.node}", *self.command]


@dataclass(frozen=True)
class Scenario:
    """One folder of labkit/scenarios."""

    name: str
    title: str
    lesson: str
    section: str
    demonstrates: str
    manifests: tuple[str, ...]
    checks: tuple[CheckSpec, ...]
    variants: tuple[Variant, ...]
    backends: tuple[str, ...]
    sandbox_note: str
    folder: Path
    kind_steps: tuple[KindStep, ...] = ()
    outside: tuple[OutsideHost, ...] = ()

    def kind_plan(self, lab_name: str, cni: str) -> list[tuple[str, list[str]]]:
        """The Kind-only steps that apply to this CNI, as (description, argv) pairs."""
        return [
            (step.describe, step.argv(lab_name))
            for step in self.kind_steps
            if not step.cnis or cni in step.cnis
        ]

    def documents(self, files: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        """The manifests of the starting state (or of the named files), loaded in order."""
        return manifests.load(
            [self.folder / f for f in (files if files is not None else self.manifests)]
        )

    def variant(self, name: str) -> Variant:
        """The step or broken variant called ``name``, or a LabError listing the ones there are."""
        for variant in self.variants:
            if variant.name == name:
                return variant
        raise LabError(
            f"Scenario {self.name!r} has no variant {name!r}.",
            f"Use one of: {', '.join(v.name for v in self.variants) or '(none)'}.",
        )


def _checks(raw: list[dict[str, Any]] | None, where: str) -> tuple[CheckSpec, ...]:
    specs = []
    for item in raw or []:
        if not isinstance(item, dict) or "check" not in item:
            raise LabError(
                f"{where}: every check entry needs a `check:` name.", "Fix scenario.yaml."
            )
        specs.append(
            CheckSpec(
                item["check"],
                dict(item.get("args") or {}),
                tuple(item.get("backends") or BACKENDS),
            )
        )
    return tuple(specs)


def load_scenario(folder: Path) -> Scenario:
    """Read and check one scenario folder."""
    path = folder / "scenario.yaml"
    if not path.is_file():
        raise LabError(f"{folder.name} has no scenario.yaml.", "Add one (see README, Scenarios).")
    data = yaml.safe_load(path.read_text()) or {}
    missing = [
        k for k in ("title", "lesson", "section", "demonstrates", "manifests") if not data.get(k)
    ]
    if missing:
        raise LabError(f"{path} lacks {', '.join(missing)}.", "Fill those keys in scenario.yaml.")
    variants = tuple(
        Variant(
            name=v["name"],
            role=role,
            description=v["description"],
            manifests=tuple(v.get("manifests") or ()),
            checks=_checks(v.get("checks"), f"{path} {role} {v['name']}"),
            delete=tuple(v.get("delete") or ()),
            fix=tuple(v.get("fix") or ()),
            hint_contains=v.get("hint_contains", ""),
        )
        for role, key in (("step", "steps"), ("broken", "broken"))
        for v in data.get(key) or []
    )
    for v in variants:
        if v.role == "broken" and not (v.fix and v.hint_contains):
            raise LabError(
                f"{path}: broken variant {v.name!r} needs `fix` and `hint_contains`.",
                "Name the manifests that repair it and the words the failing check must say.",
            )
    backends = tuple(data.get("backends") or BACKENDS)
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        raise LabError(f"{path}: unknown backends {unknown}.", f"Use {', '.join(BACKENDS)}.")
    kind_steps = []
    for raw in data.get("kind_steps") or []:
        node = raw.get("node")
        if node not in (None, "control-plane", "worker", "worker2"):
            raise LabError(
                f"{path}: kind step node {node!r} is not a node role.",
                "Use control-plane, worker or worker2 (or leave it out for a kubectl step).",
            )
        kind_steps.append(
            KindStep(raw["describe"], tuple(raw["command"]), node, tuple(raw.get("cnis") or ()))
        )
    if kind_steps and not data.get("sandbox_note"):
        raise LabError(
            f"{path}: has Kind-only steps but no sandbox_note.",
            "Say in sandbox_note what the sandbox cannot show and why.",
        )
    return Scenario(
        name=folder.name,
        title=data["title"],
        lesson=str(data["lesson"]),
        section=data["section"],
        demonstrates=data["demonstrates"],
        manifests=tuple(data["manifests"]),
        checks=_checks(data.get("checks"), str(path)),
        variants=variants,
        backends=backends,
        sandbox_note=data.get("sandbox_note", ""),
        folder=folder,
        kind_steps=tuple(kind_steps),
        outside=tuple(
            OutsideHost(o["cidr"], tuple(o.get("ports") or ()), o["describe"])
            for o in data.get("outside") or []
        ),
    )


def names() -> list[str]:
    """Every scenario folder, sorted (the number prefix keeps the tutorial's order)."""
    return sorted(
        p.name for p in SCENARIO_DIR.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))
    )


def get(name: str) -> Scenario:
    """A scenario by folder name, or by its name without the number prefix."""
    all_names = names()
    matches = [n for n in all_names if n == name or n.split("-", 1)[-1] == name]
    if not matches:
        raise LabError(f"No scenario named {name!r}.", f"Pick one of: {', '.join(all_names)}.")
    return load_scenario(SCENARIO_DIR / matches[0])


def _require_backend(scenario: Scenario, lab: Lab) -> None:
    if lab.backend not in scenario.backends:
        raise LabError(
            f"Scenario {scenario.name!r} needs the {' or '.join(scenario.backends)} backend, "
            f"and this lab is {lab.backend}. {scenario.sandbox_note}".strip(),
            "Bring up a Kind lab (`labkit up --backend kind`) on a machine with Docker "
            "for this one.",
        )


def deploy(lab: Lab, name: str, variant: str | None = None) -> list[ObjectRef]:
    """Apply a scenario's starting state, then a step's or broken variant's changes if one is
    named."""
    scenario = get(name)
    _require_backend(scenario, lab)
    _add_outside_hosts(lab, scenario)
    refs = lab.apply(scenario.documents())
    if variant is not None:
        chosen = scenario.variant(variant)
        if chosen.delete:
            lab.delete(scenario.documents(chosen.delete))
        if chosen.manifests:
            refs += lab.apply(scenario.documents(chosen.manifests))
    return refs


def _add_outside_hosts(lab: Lab, scenario: Scenario) -> None:
    """Give the sandbox's outside namespace the external ranges a scenario talks to. On Kind the
    range would have to exist on the host's network, which labkit does not touch: say so."""
    if not scenario.outside:
        return
    for host in scenario.outside:
        if lab.capabilities.outside_addresses:
            lab.add_outside_address(host.cidr, ports=host.ports)
        else:
            log.warning(
                "%s talks to %s at %s; on %s that range is not provided, so the checks that "
                "need it are skipped here.",
                scenario.name,
                host.describe,
                host.cidr,
                lab.backend,
            )


def fix(lab: Lab, name: str, variant: str) -> list[ObjectRef]:
    """Apply a broken variant's fix (what a learner would do)."""
    scenario = get(name)
    return lab.apply(scenario.documents(scenario.variant(variant).fix))


def reset(lab: Lab, name: str) -> list[ObjectRef]:
    """Remove whatever the scenario and its variants created, then deploy the starting state."""
    scenario = get(name)
    _require_backend(scenario, lab)
    files = list(scenario.manifests)
    for variant in scenario.variants:
        files += [*variant.manifests, *variant.fix]
    docs = scenario.documents(tuple(dict.fromkeys(files)))
    present = [d for d in docs if d.get("kind") != "Namespace" and _exists(lab, d)]
    if present:
        lab.delete(present)
    return deploy(lab, name)


def _exists(lab: Lab, doc: dict[str, Any]) -> bool:
    meta = doc.get("metadata") or {}
    return bool(lab.get(doc["kind"], meta.get("name"), namespace=manifests.namespace_of(doc)))


def run_kind_steps(lab: Lab, name: str) -> list[tuple[str, str]]:
    """Run a scenario's Kind-only steps on a Kind lab; on the sandbox say plainly they cannot
    run."""
    scenario = get(name)
    if lab.backend != "kind":
        raise LabError(
            f"These steps of {scenario.name!r} need a real Kind cluster; "
            f"this lab is the {lab.backend}. "
            f"{scenario.sandbox_note}".strip(),
            "Read them with `scenario.kind_plan(...)`, or run them on a machine with Docker "
            "(`labkit up --backend kind`).",
        )
    outputs = []
    for describe, argv in scenario.kind_plan(lab.name, lab.cni):
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        outputs.append((describe, (proc.stdout + proc.stderr).strip()))
    return outputs


def run_checks(lab: Lab, name: str, variant: str | None = None) -> list[Result]:
    """Run the checks a scenario (or one of its variants) declares; returns their Results in
    order. Where the lab allows it (``capabilities.concurrent_checks``) they run at once, so a
    scenario with several policy drops waits out one probe timeout, not one per check."""
    scenario = get(name)
    specs = scenario.variant(variant).checks if variant else scenario.checks
    chosen = []
    for spec in specs:
        if lab.backend not in spec.backends:
            log.info(
                "check %s of %s runs only on %s; skipped on %s.",
                spec.check,
                scenario.name,
                ", ".join(spec.backends),
                lab.backend,
            )
            continue
        if spec.check not in CHECKS:
            raise LabError(
                f"Scenario {scenario.name!r} names an unknown check {spec.check!r}.",
                f"Use one of: {', '.join(sorted(CHECKS))}.",
            )
        chosen.append(spec)

    def run(spec: CheckSpec) -> Result:
        return CHECKS[spec.check](lab, **spec.args)

    if lab.capabilities.concurrent_checks and len(chosen) > 1:
        with ThreadPoolExecutor(len(chosen), thread_name_prefix="labkit-check") as pool:
            return list(pool.map(run, chosen))
    return [run(spec) for spec in chosen]
