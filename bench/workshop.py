"""Workshop figures: 30 sandbox labs of the reference size on one machine (prints them; not a
test).

Each lab (``ws01`` .. ``ws30``, Calico) holds lesson 09's scenarios, 14-three-tier-policies and
16-pci-payment-isolation: 3 nodes, their pods, Services and NetworkPolicies, cluster DNS. The
script times bringing all of them up the way ``labkit class up`` does (a few at a time) and
deploying the scenarios into each, sums the RSS of every lab's processes, then runs one check in
every lab at once (``labkit check 14-three-tier-policies``: its two checks) from 30 processes, as
30 learners' kernels would, and prints p50 / p95 / max. Budget on a 2-core machine: all 30 up
<= 30 s, <= 1.5 GB RSS in total, p95 check <= 2 s. The labs are always taken down, also on
Ctrl-C.

Run as root, alone on the machine's sandbox: ``flock /tmp/sandbox.lock .venv/bin/python
bench/workshop.py [--labs 30] [--parallel 3] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import resource
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SCENARIOS = ("14-three-tier-policies", "16-pci-payment-isolation")
CHECKED = SCENARIOS[0]
BUDGET = {"up_s": 30.0, "rss_mb": 1536.0, "p95_s": 2.0}


def quantile(values: list[float], q: float) -> float:
    """The q-th quantile (nearest rank)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def cpu_seconds() -> float:
    """User + system CPU of this process and the commands it waited for (ip, iptables-restore,
    bwrap); the agents run detached and are not counted."""
    me, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def deploy_all(names: list[str], parallel: int) -> dict[str, int]:
    """Deploy lesson 09's scenarios into every lab, ``parallel`` labs at a time; pods per lab."""
    from labkit import scenarios
    from labkit.sandbox import backend

    def one(name: str) -> int:
        lab = backend.attach(name)
        assert lab is not None, f"lab {name} is not up"
        for scenario in SCENARIOS:
            scenarios.deploy(lab, scenario)
        return len(lab.get("pods", namespace=None))

    with ThreadPoolExecutor(parallel) as pool:
        return dict(zip(names, pool.map(one, names), strict=True))


def _check_in(name: str, rounds: int, barrier: Any, results: Any) -> None:
    """A learner's kernel: attach to the lab, then at each round's start time one `labkit
    check` (round 0 is the kernel's first, which imports the checks)."""
    from labkit import scenarios
    from labkit.sandbox import backend

    lab = backend.attach(name)
    assert lab is not None
    for round_ in range(rounds + 1):
        barrier.wait()
        began = time.perf_counter()
        verdicts = [r.verdict for r in scenarios.run_checks(lab, CHECKED)]
        results.put((round_, time.perf_counter() - began, verdicts))


def concurrent_checks(names: list[str], rounds: int) -> list[tuple[int, float, list[str]]]:
    """One check in every lab at the same moment, each from its own process, ``rounds`` + 1
    times (a round starts when every lab finished the one before)."""
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(len(names) + 1), context.Queue()
    workers = [context.Process(target=_check_in, args=(n, rounds, barrier, results)) for n in names]
    for worker in workers:
        worker.start()
    found = []
    try:
        for _ in range(rounds + 1):
            barrier.wait(timeout=120)
            found += [results.get(timeout=120) for _ in names]
        return found
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labs", type=int, default=30)
    parser.add_argument("--parallel", type=int, default=3, help="labs built at once")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of concurrent checks")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/workshop.py builds network namespaces: run it as root.", file=sys.stderr)
        return 1
    from labkit.classroom import class_down, class_up
    from labkit.sandbox import footprint

    names = [f"ws{i:02d}" for i in range(1, args.labs + 1)]
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill` cleans up like Ctrl-C
    print(
        f"workshop bench: {args.labs} sandbox labs (calico), {args.parallel} built at once; "
        f"each holds {' + '.join(SCENARIOS)} (lesson 09); load average before: "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    try:
        class_down(names)
        began = time.perf_counter()
        failed = [o.name for o in class_up(names, "calico", "sandbox", args.parallel) if not o.ok]
        bare = time.perf_counter() - began
        if failed:
            print(f"  labs that failed to come up: {', '.join(failed)}")
            return 1
        pods = deploy_all(names, args.parallel)
        up = time.perf_counter() - began
        up_cpu = cpu_seconds()
        load = os.getloadavg()[0]
        memory = footprint.rss_mb(names)
        total_mb = sum(memory.values())
        checks = concurrent_checks(names, args.rounds)
        first = [seconds for round_, seconds, _ in checks if round_ == 0]
        samples = [seconds for round_, seconds, _ in checks if round_ > 0]
        verdicts = {verdict for _, _, got in checks for verdict in got}
    finally:
        began_down = time.perf_counter()
        class_down(names)
        down = time.perf_counter() - began_down
    per_lab = sorted(memory.values())
    print(f"  pods per lab (system pods included): {min(pods.values())}-{max(pods.values())}")
    print(f"  {'step':44s} {'figure':>10s}")
    print(f"  {'labs up (class up, bare)':44s} {bare:9.1f} s")
    print(f"  {'labs up + lesson 09 scenarios deployed':44s} {up:9.1f} s")
    print(f"  {'  CPU it took (this process + its commands)':44s} {up_cpu:9.1f} s")
    print(f"  {'  load average (1 min) at its end':44s} {load:9.1f}")
    print(
        f"  {'RSS per lab (min / median / max)':44s} {per_lab[0]:.0f} / "
        f"{per_lab[len(per_lab) // 2]:.0f} / {per_lab[-1]:.0f} MB"
    )
    print(f"  {'RSS of all labs':44s} {total_mb:8.0f} MB")
    print(
        f"  {f'first check of {args.labs} fresh kernels at once (p95)':44s} "
        f"{quantile(first, 0.95):9.2f} s"
    )
    print(
        f"  {f'check, {args.labs} at once x {args.rounds} rounds (p50)':44s} "
        f"{quantile(samples, 0.5):9.2f} s"
    )
    print(f"  {'  p95':44s} {quantile(samples, 0.95):9.2f} s")
    print(f"  {'  max':44s} {max(samples):9.2f} s   verdicts: {', '.join(sorted(verdicts))}")
    print(f"  {'all labs down':44s} {down:9.1f} s")
    ok = True
    for label, value, key, unit in (
        ("all labs up (with scenarios)", up, "up_s", "s"),
        ("RSS in total", total_mb, "rss_mb", "MB"),
        ("p95 check latency under load", quantile(samples, 0.95), "p95_s", "s"),
    ):
        good = value <= BUDGET[key]
        ok &= good
        print(
            f"  budget: {label:30s} {value:8.2f} {unit} <= {BUDGET[key]:g} {unit}  "
            f"{'OK' if good else 'OVER'}"
        )
    return 0 if ok and verdicts == {"pass"} else 1


if __name__ == "__main__":
    sys.exit(main())
