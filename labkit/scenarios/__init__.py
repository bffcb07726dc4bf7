"""The tutorial's scenarios as deployable folders: manifests, a scenario.yaml, broken variants.

A scenario folder holds `scenario.yaml` and the manifests it names. `deploy(lab, name, variant)`
brings the scenario to one of its states through the Lab seam (so both backends work), whatever
state it was in; `reset(lab, name)` removes whatever the scenario created and deploys the
starting state afresh.
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
from labkit.checks import Result, check_arguments, run_check
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
        args = dict(item.get("args") or {})
        try:
            check_arguments(str(item["check"]), args)
        except LabError as exc:
            raise LabError(f"{where}: {exc.what}", exc.fix) from None
        specs.append(
            CheckSpec(str(item["check"]), args, tuple(item.get("backends") or BACKENDS))
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
    """Bring a scenario to its starting state, or to a step or broken variant, whatever state it
    was in: objects its other states create are removed, then this state's objects applied (so a
    broken variant breaks the same way after any step). Namespaces and the learner's own objects
    stay."""
    scenario = get(name)
    _require_backend(scenario, lab)
    wanted = state_documents(scenario, variant)
    keep = {object_key(doc) for doc in wanted}
    others = [doc for doc in all_documents(scenario) if object_key(doc) not in keep]
    return _replace(lab, scenario, others, wanted)


def state_documents(scenario: Scenario, variant: str | None = None) -> list[dict[str, Any]]:
    """The objects of one state: the starting state, or it with a variant's `delete` removed and
    its manifests applied over it (an object of the variant replaces the start's of that name)."""
    start = scenario.documents()
    if variant is None:
        return start
    chosen = scenario.variant(variant)
    changes = scenario.documents(chosen.manifests)
    dropped = {object_key(doc) for doc in [*scenario.documents(chosen.delete), *changes]}
    return [doc for doc in start if object_key(doc) not in dropped] + changes


def all_documents(scenario: Scenario) -> list[dict[str, Any]]:
    """Every object any state of the scenario (or a fix) creates."""
    files = list(scenario.manifests)
    for variant in scenario.variants:
        files += [*variant.manifests, *variant.fix, *variant.delete]
    return scenario.documents(tuple(dict.fromkeys(files)))


def _replace(
    lab: Lab, scenario: Scenario, remove: list[dict[str, Any]], wanted: list[dict[str, Any]]
) -> list[ObjectRef]:
    """Delete the objects of ``remove`` that exist (namespaces stay), then apply ``wanted``."""
    doomed = {object_key(doc): doc for doc in remove if doc.get("kind") != "Namespace"}
    present = [doc for doc in doomed.values() if _exists(lab, doc)]
    _add_outside_hosts(lab, scenario)
    if present:
        lab.delete(present)
    return lab.apply(wanted)


def object_key(doc: dict[str, Any]) -> tuple[str, str | None, str]:
    """An object's identity in a cluster: kind, namespace, name."""
    kind = manifests.canonical_kind(str(doc.get("kind", "")))
    return kind, manifests.namespace_of(doc), str((doc.get("metadata") or {}).get("name"))


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
    """Put a scenario back at its starting state, as fresh as a first deploy: everything any of
    its states created is removed (so no Deployment keeps a variant's ReplicaSet), then the
    starting state is applied."""
    scenario = get(name)
    _require_backend(scenario, lab)
    return _replace(lab, scenario, all_documents(scenario), scenario.documents())


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
        chosen.append(spec)

    def run(spec: CheckSpec) -> Result:
        return run_check(lab, spec.check, spec.args)

    if lab.capabilities.concurrent_checks and len(chosen) > 1:
        with ThreadPoolExecutor(len(chosen), thread_name_prefix="labkit-check") as pool:
            return list(pool.map(run, chosen))
    return [run(spec) for spec in chosen]
