"""Time the NetworkPolicy truth table: 1,000 pods in 20 namespaces, 200 varied policies, 2 ports.

Prints the figures (target: the table itself in <= 2 s on a 2-core machine); no assertion.
Run: .venv/bin/python bench/model.py [--pods N] [--policies N] [--seed N]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labkit.model.netpol.truthtable import truth_table
from labkit.model.netpol.verdicts import PolicySet

APPS = ["web", "api", "db", "cache", "queue", "auth", "search", "billing", "report", "batch"]
TIERS = ["frontend", "backend", "data"]
ENVS = ["dev", "staging", "prod"]


def build_cluster(n_pods: int, n_namespaces: int, n_policies: int, seed: int):
    """A deterministic random cluster: namespaces, pods (with named ports) and policies."""
    rng = random.Random(seed)
    namespaces = [
        {
            "kind": "Namespace",
            "metadata": {"name": f"ns{i:02d}", "labels": {"env": ENVS[i % 3], "team": f"t{i % 5}"}},
        }
        for i in range(n_namespaces)
    ]
    pods = []
    for i in range(n_pods):
        ns = f"ns{i % n_namespaces:02d}"
        app = rng.choice(APPS)
        http = rng.choice([80, 8080])
        pods.append(
            {
                "kind": "Pod",
                "metadata": {
                    "name": f"{app}-{i:04d}",
                    "namespace": ns,
                    "labels": {"app": app, "tier": rng.choice(TIERS), "v": str(rng.randint(1, 3))},
                },
                "spec": {
                    "nodeName": f"node{i % 3}",
                    "containers": [
                        {
                            "name": "main",
                            "ports": [
                                {"containerPort": http, "name": "http"},
                                {"containerPort": 53, "name": "dns", "protocol": "UDP"},
                            ],
                        }
                    ],
                },
                "status": {"podIP": f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"},
            }
        )
    policies = [random_policy(rng, i, n_namespaces) for i in range(n_policies)]
    return namespaces, pods, policies


def random_policy(rng: random.Random, i: int, n_namespaces: int) -> dict:
    """One policy of a varied mix: default-deny, selectors, both-in-one-peer, ipBlock, named ports,
    ranges."""
    ns = f"ns{rng.randrange(n_namespaces):02d}"

    def pod_sel():
        return rng.choice(
            [
                {},
                {"matchLabels": {"app": rng.choice(APPS)}},
                {
                    "matchExpressions": [
                        {"key": "tier", "operator": "In", "values": rng.sample(TIERS, 2)}
                    ]
                },
            ]
        )

    def peer():
        kind = rng.randrange(5)
        if kind == 0:
            return {"podSelector": pod_sel()}
        if kind == 1:
            return {"namespaceSelector": {"matchLabels": {"env": rng.choice(ENVS)}}}
        if kind == 2:
            return {
                "namespaceSelector": {"matchLabels": {"team": f"t{rng.randrange(5)}"}},
                "podSelector": pod_sel(),
            }
        if kind == 3:
            return {"ipBlock": {"cidr": "10.0.0.0/22", "except": [f"10.0.{rng.randrange(4)}.0/24"]}}
        return {"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": rng.choice(APPS)}}}

    def ports():
        return rng.choice(
            [
                [],
                [{"port": 80}],
                [{"port": "http"}],
                [{"port": 8000, "endPort": 8100}],
                [{"protocol": "UDP", "port": 53}, {"port": 80}],
            ]
        )

    def rules():
        if rng.random() < 0.1:
            return [{}]
        return [
            {"from": [peer() for _ in range(rng.randint(1, 2))], "ports": ports()}
            for _ in range(rng.randint(0, 2))
        ]

    spec: dict = {"podSelector": pod_sel(), "ingress": rules()}
    if rng.random() < 0.4:
        spec["egress"] = [{"to": r.get("from", []), "ports": r.get("ports", [])} for r in rules()]
        spec["policyTypes"] = ["Ingress", "Egress"]
    return {
        "kind": "NetworkPolicy",
        "metadata": {"name": f"pol-{i:03d}", "namespace": ns},
        "spec": spec,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--namespaces", type=int, default=20)
    parser.add_argument("--policies", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    namespaces, pods, policies = build_cluster(args.pods, args.namespaces, args.policies, args.seed)
    ports = [80, (53, "UDP")]
    times = []
    table = None
    for _ in range(args.repeat):
        start = time.perf_counter()
        table = truth_table(pods, ports, namespaces=namespaces, policies=policies)
        times.append(time.perf_counter() - start)
    assert table is not None
    start = time.perf_counter()
    text = table.render()
    render_s = time.perf_counter() - start
    ps = PolicySet(namespaces, policies)
    rng = random.Random(args.seed)
    sample = [(rng.choice(pods), rng.choice(pods)) for _ in range(2000)]
    start = time.perf_counter()
    for src, dst in sample:
        ps.verdict(src, dst, 80)
    per_verdict = (time.perf_counter() - start) / len(sample)
    pairs = len(table.labels) ** 2
    allowed = {p: sum(bin(r).count("1") for r in table.rows[p]) for p in table.ports}
    print(
        f"truth table: {args.pods} pods, {args.namespaces} namespaces, {args.policies} policies, "
        f"{len(ports)} ports = {pairs * len(ports):,} cells"
    )
    print(
        f"  build (best of {args.repeat}): {min(times):.3f} s   (all runs: "
        f"{', '.join(f'{t:.3f}' for t in times)}; target <= 2 s)"
    )
    print(f"  render to text: {render_s:.3f} s ({len(text) / 1e6:.1f} MB)")
    print("  allowed cells: " + ", ".join(f"{p} {allowed[p]:,} of {pairs:,}" for p in table.ports))
    print(
        f"  verdict() with explanation: {per_verdict * 1e6:.0f} us per flow "
        f"(naive table would take ~{per_verdict * pairs * len(ports):.0f} s)"
    )


if __name__ == "__main__":
    main()
