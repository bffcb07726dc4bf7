"""Sandbox cost curve (prints it; not a test): what applying a workload, and then one more
object, costs as pods, Services and NetworkPolicies grow (issue 18).

Sizes: 10 / 100 / 300 pods, 10 / 100 / 500 Services, 10 / 100 / 300 policies, each alone and
the three together. For every size: the time to apply it all; the time to add one more object
(one more of each kind for the combined sizes, three times: the median, and the slowest); the
iptables rules (``-A`` lines) on a worker; the median time of one ``lab.probe`` to a Service; and
the RSS of the lab's processes. Budget on the 2-core machine at 300 pods + 500 Services + 300
policies: one more object <= 0.3 s (the median and the slowest), a probe <= 5 ms, the lab's RSS
<= 150 MB.

Run as root, under the sandbox lock:
``sudo flock /tmp/sandbox.lock .venv/bin/python bench/scale.py [--cni calico|flannel|cilium]
[--only combined]``.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sandbox import lab_rss_mb  # bench/sandbox.py, beside this file

LAB = "bscale"
NS = "scale"
AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.66.1"
REPLICAS = 3
"""Pods come in apps of three (a Deployment each); Service k and policy k select app k."""
PROBES = 21
MORE = 3
"""How many times one more object of each kind is added: the median is printed, and the slowest."""
BUDGET = {"one_more": 0.3, "one_more_worst": 0.3, "probe_ms": 5.0, "rss_mb": 150.0}
SIZES: list[tuple[str, int, int, int]] = [
    *((f"{n} pods", n, 0, 0) for n in (10, 100, 300)),
    *((f"{n} Services", 0, n, 0) for n in (10, 100, 500)),
    *((f"{n} policies", 0, 0, n) for n in (10, 100, 300)),
    ("combined 10/10/10", 10, 10, 10),
    ("combined 100/100/100", 100, 100, 100),
    ("combined 300/500/300", 300, 500, 300),
]


def deployment(name: str, replicas: int, group: int) -> dict[str, Any]:
    """agnhost netexec pods of one app group; they tolerate the control plane, as 300 pods need
    all three nodes (110 pods each, system pods included)."""
    labels = {"app": name, "group": f"a{group}"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "tolerations": [
                        {
                            "key": "node-role.kubernetes.io/control-plane",
                            "operator": "Exists",
                            "effect": "NoSchedule",
                        }
                    ],
                    "containers": [
                        {
                            "name": "web",
                            "image": AGNHOST,
                            "args": ["netexec", "--http-port=8080"],
                            "ports": [{"name": "http", "containerPort": 8080}],
                        }
                    ],
                },
            },
        },
    }


def service(index: int, apps: int) -> dict[str, Any]:
    """A ClusterIP Service in front of one of the ``apps`` groups."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": f"svc-{index}", "namespace": NS},
        "spec": {
            "selector": {"group": f"a{index % apps}"},
            "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
        },
    }


def policy(index: int, apps: int) -> dict[str, Any]:
    """An ingress policy on one of the ``apps`` groups, open to the next group on 8080."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": f"pol-{index}", "namespace": NS},
        "spec": {
            "podSelector": {"matchLabels": {"group": f"a{index % apps}"}},
            "ingress": [
                {
                    "from": [{"podSelector": {"matchLabels": {"group": f"a{(index + 1) % apps}"}}}],
                    "ports": [{"port": 8080}],
                }
            ],
        },
    }


def apps_of(pods: int) -> int:
    """How many app groups ``pods`` pods make (at least two: the server's and the client's)."""
    return max(2, -(-pods // REPLICAS))


def workload(pods: int, services: int, policies: int) -> list[dict[str, Any]]:
    """The namespace, a client (group 1, which policy 0 lets reach group 0) and a server (group
    0), ``pods`` pods in Deployments of three, the Services and the policies."""
    apps = apps_of(pods)
    docs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
        deployment("client", 1, 1),
        deployment("server", 1, 0),
    ]
    for group in range(-(-pods // REPLICAS)):
        docs.append(deployment(f"web-{group}", min(REPLICAS, pods - group * REPLICAS), group))
    docs += [service(i, apps) for i in range(services)]
    docs += [policy(i, apps) for i in range(policies)]
    return docs


def timed(action: Callable[[], Any]) -> float:
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


def rule_count(lab: Any) -> int:
    """``-A`` lines of iptables-save on the first worker."""
    out = lab.node_exec(f"{LAB}-worker", ["iptables-save"], timeout=30.0).stdout
    return sum(line.startswith("-A ") for line in out.splitlines())


def probe_p50_ms(lab: Any) -> float:
    """Median wall time of one ``lab.probe`` from the client pod to a Service of group 0, or to
    the server pod when the size has no Service (ms)."""
    pods = lab.get("pods", namespace=NS)
    client = next(p for p in pods if p["metadata"]["labels"].get("app") == "client")
    services = lab.get("svc", namespace=NS)
    server = next(p for p in pods if p["metadata"]["labels"].get("app") == "server")
    dst, port = (
        (services[0]["spec"]["clusterIP"], 80) if services else (server["status"]["podIP"], 8080)
    )
    times = []
    for _ in range(PROBES):
        began = time.perf_counter()
        lab.probe(f"{NS}/{client['metadata']['name']}", dst, port, timeout=1.0)
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000


def one_size(cni: str, pods: int, services: int, policies: int) -> dict[str, Any]:
    """Build a lab, apply the size, add one more of each kind it has, measure; take it down."""
    from labkit.sandbox import backend

    backend.down(LAB)
    lab = backend.up(LAB, cni, quiet=True)
    try:
        result: dict[str, Any] = {
            "apply": timed(lambda: lab.apply(workload(pods, services, policies)))
        }
        more: dict[str, list[float]] = {}
        apps = apps_of(pods)
        for n in range(MORE):  # one of each kind in turn, as a learner adds them
            batch = {
                "pod": [deployment(f"one-more-{n}", 1, 0)] if pods else [],
                "Service": [service(services + n, apps)] if services else [],
                "policy": [policy(policies + n, apps)] if policies else [],
            }
            for kind, docs in batch.items():
                if docs:
                    more.setdefault(kind, []).append(timed(functools.partial(lab.apply, docs)))
        result["more"] = {kind: statistics.median(times) for kind, times in more.items()}
        result["worst"] = {kind: max(times) for kind, times in more.items()}
        result["rules"] = rule_count(lab)
        result["probe_ms"] = probe_p50_ms(lab)
        result["rss_mb"] = lab_rss_mb(LAB)[0]
        running = [
            p for p in lab.get("pods", namespace=NS) if p["status"].get("phase") == "Running"
        ]
        result["running"] = len(running)
        return result
    finally:
        backend.down(LAB)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cni", default="calico", choices=["calico", "flannel", "cilium"])
    parser.add_argument(
        "--only", default="", help="run only the sizes whose label contains this text"
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/scale.py builds network namespaces: run it as root (sudo).", file=sys.stderr)
        return 1
    print(f"scale bench: {args.cni}, 3 nodes, lab {LAB!r}, one lab per size")
    print(
        f"  {'size':22s} {'apply s':>8s} {'one more s':>24s} {'rules/node':>10s} "
        f"{'probe p50 ms':>12s} {'RSS MB':>7s} {'running':>7s}"
    )
    ok = True
    for label, pods, services, policies in SIZES:
        if args.only not in label:
            continue
        r = one_size(args.cni, pods, services, policies)
        more = " ".join(f"{kind} {t:.2f}" for kind, t in r["more"].items())
        print(
            f"  {label:22s} {r['apply']:8.2f} {more:>24s} {r['rules']:10d} "
            f"{r['probe_ms']:12.1f} {r['rss_mb']:7.1f} {r['running']:7d}",
            flush=True,
        )
        if (pods, services, policies) == (300, 500, 300):
            figures = {
                "one_more": max(r["more"].values()),
                "one_more_worst": max(r["worst"].values()),
                "probe_ms": r["probe_ms"],
                "rss_mb": r["rss_mb"],
            }
            print("  budget at 300 pods + 500 Services + 300 policies:")
            for key, label_ in (
                ("one_more", "one more object (s)"),
                ("one_more_worst", "slowest of them (s)"),
                ("probe_ms", "probe p50 (ms)"),
                ("rss_mb", "lab RSS (MB)"),
            ):
                good = figures[key] <= BUDGET[key]
                ok &= good
                print(
                    f"    {label_:22s} {figures[key]:8.2f}  budget <= {BUDGET[key]:g}  "
                    f"{'OK' if good else 'OVER'}"
                )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
