"""Sandbox speed and memory figures (prints them; not a test).

Reference lab: 3 nodes, 12 pods, 6 services, cluster DNS, 3 NetworkPolicies, Calico mode.
Targets on a 2-core machine: up <= 2 s (lab plus reference workload), down <= 1 s, RSS of all
the lab's processes <= 150 MB, a 10 x 10 probe matrix with blocked pairs (1 s timeout) <= 1.5 s.

Run as root: ``sudo .venv/bin/python bench/sandbox.py [--runs 3] [--cni calico]``; ``--cni all``
measures Flannel, Calico and Cilium (kube-proxy replaced) in turn against the same targets.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LAB = "bench"
NS = "shop"
TARGETS = {"up": 2.0, "down": 1.0, "rss_mb": 150.0, "matrix": 1.5}


def reference_workload() -> list[dict]:
    """12 pods (4 Deployments + 2 pods), 6 Services (ClusterIP, NodePort, LoadBalancer), 3
    policies."""

    def deployment(name: str, replicas: int, port: int = 8080) -> dict:
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": NS},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {
                        "containers": [
                            {
                                "name": name,
                                "image": "registry.k8s.io/e2e-test-images/agnhost:2.66.1",
                                "args": ["netexec", f"--http-port={port}"],
                                "ports": [{"name": "http", "containerPort": port}],
                                "readinessProbe": {"tcpSocket": {"port": "http"}},
                            }
                        ]
                    },
                },
            },
        }

    def pod(name: str) -> dict:
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": NS, "labels": {"role": "client"}},
            "spec": {
                "containers": [
                    {
                        "name": "c",
                        "image": "registry.k8s.io/e2e-test-images/agnhost:2.66.1",
                        "ports": [{"containerPort": 8080}],
                    }
                ]
            },
        }

    def service(name: str, app: str, kind: str = "ClusterIP") -> dict:
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": NS},
            "spec": {
                "type": kind,
                "selector": {"app": app},
                "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
            },
        }

    def policy(name: str, spec: dict) -> dict:
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": NS},
            "spec": spec,
        }

    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
        deployment("frontend", 3),
        deployment("backend", 3),
        deployment("db", 2),
        deployment("cache", 2),
        pod("client-1"),
        pod("client-2"),
        service("frontend", "frontend"),
        service("backend", "backend"),
        service("db", "db"),
        service("cache", "cache"),
        service("frontend-np", "frontend", "NodePort"),
        service("frontend-lb", "frontend", "LoadBalancer"),
        policy("default-deny-ingress", {"podSelector": {}, "policyTypes": ["Ingress"]}),
        policy(
            "frontend-from-clients",
            {
                "podSelector": {"matchLabels": {"app": "frontend"}},
                "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "client"}}}]}],
            },
        ),
        policy(
            "backend-from-frontend",
            {
                "podSelector": {"matchLabels": {"app": "backend"}},
                "ingress": [
                    {
                        "from": [{"podSelector": {"matchLabels": {"app": "frontend"}}}],
                        "ports": [{"port": 8080}],
                    }
                ],
            },
        ),
    ]


def lab_rss_mb(lab_name: str) -> tuple[float, list[str]]:
    """Summed RSS of every process that belongs to the lab (its agent, anything run in its
    namespaces), and a line per process."""
    from labkit.sandbox import footprint

    found = footprint.processes([lab_name])
    lines = [f"pid {p.pid} ({p.program}) {p.rss_kib / 1024:.1f} MB" for p in found]
    return sum(p.rss_kib for p in found) / 1024, lines


def own_rss_mb() -> float:
    return (
        next(
            int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmRSS:")
        )
        / 1024
    )


def one_run(cni: str) -> dict[str, Any]:
    from labkit.sandbox import backend

    backend.down(LAB)
    started = time.perf_counter()
    lab = backend.up(LAB, cni, quiet=True)
    bare = time.perf_counter() - started
    lab.apply(reference_workload())
    up = time.perf_counter() - started
    pods = lab.get("pods", namespace=NS)
    assert len(pods) == 12 and len(lab.get("svc", namespace=NS)) == 6, (
        "reference workload incomplete"
    )
    sources = pods[:10]
    pairs = [
        (f"{NS}/{s['metadata']['name']}", d["status"]["podIP"], 8080)
        for s in sources
        for d in sources
    ]
    began = time.perf_counter()
    probes = lab.probe_many(pairs, timeout=1.0)
    matrix = time.perf_counter() - began
    outcomes = {o: sum(p.outcome == o for p in probes) for o in ("connected", "timeout", "refused")}
    rss, procs = lab_rss_mb(LAB)
    began = time.perf_counter()
    backend.down(LAB)
    down = time.perf_counter() - began
    return {
        "bare_up": bare,
        "up": up,
        "matrix": matrix,
        "down": down,
        "rss_mb": rss,
        "connected": outcomes["connected"],
        "blocked": outcomes["timeout"],
        "refused": outcomes["refused"],
        "procs": procs,
    }


CNIS = ("flannel", "calico", "cilium")
ENFORCING = ("calico", "cilium")
"""The CNIs whose policies block pairs of the matrix."""


def bench_cni(cni: str, runs_wanted: int) -> tuple[bool, dict[str, float]]:
    """Run the reference lab ``runs_wanted`` times with ``cni``; whether every median met its
    target, and the medians."""
    from labkit.sandbox import backend

    print(
        f"sandbox bench: {cni}, 3 nodes, 12 pods, 6 services, DNS, 3 policies; {runs_wanted} run(s)"
    )
    runs = []
    try:
        for i in range(runs_wanted):
            result = one_run(cni)
            runs.append(result)
            print(
                f"  run {i + 1}: up {result['bare_up']:.2f} s (+ workload = {result['up']:.2f} s), "
                f"matrix {result['matrix']:.2f} s ({result['connected']} connected, "
                f"{result['blocked']} blocked, {result['refused']} refused), "
                f"down {result['down']:.2f} s, lab RSS {result['rss_mb']:.1f} MB"
            )
    finally:
        backend.down(LAB)
    print("  lab processes: " + "; ".join(runs[-1]["procs"]))
    ok = True
    medians = {}
    for key, label in (
        ("up", "up (lab + reference workload)"),
        ("down", "down"),
        ("rss_mb", "RSS of the lab's processes"),
        ("matrix", "10x10 probe matrix, 1 s timeout"),
    ):
        value = medians[key] = statistics.median(r[key] for r in runs)
        unit = " MB" if key == "rss_mb" else " s"
        good = value <= TARGETS[key]
        ok &= good
        print(
            f"  {label:34s} median {value:7.2f}{unit}  target <= {TARGETS[key]:g}{unit}  "
            f"{'OK' if good else 'OVER'}"
        )
    if cni in ENFORCING and not all(r["blocked"] for r in runs):
        print("  warning: no pair was blocked; the policies did not take effect")
        ok = False
    return ok, medians


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cni", default="calico", choices=[*CNIS, "all"])
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/sandbox.py builds network namespaces: run it as root (sudo).", file=sys.stderr)
        return 1
    began = time.perf_counter()
    from labkit import manifests  # noqa: F401  (import cost is reported, not hidden)
    from labkit.sandbox import backend, lab  # noqa: F401  (import cost is reported, not hidden)

    imports = time.perf_counter() - began
    print(f"  python imports of labkit (once per process): {imports:.2f} s")
    results = {
        cni: bench_cni(cni, args.runs) for cni in (CNIS if args.cni == "all" else [args.cni])
    }
    print(f"  (this client process: {own_rss_mb():.1f} MB RSS)")
    if len(results) > 1:
        print(
            "  medians by CNI: "
            + "; ".join(
                f"{cni} up {m['up']:.2f} s, down {m['down']:.2f} s"
                for cni, (_, m) in results.items()
            )
        )
    return 0 if all(ok for ok, _ in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
