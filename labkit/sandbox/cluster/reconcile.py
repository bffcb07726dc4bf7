"""The controller loop: every controller of the cluster run once, in dependency order.

A real cluster runs these loops concurrently until nothing changes; running them in one
deterministic pass (owners before what they own, scheduling before addresses, addresses before
endpoints, statuses last) reaches the same settled state, and the same inputs always give the
same names, nodes and addresses.
"""

from __future__ import annotations

from labkit.sandbox.cluster.allocation import assign_load_balancer_ips, assign_pod_ips
from labkit.sandbox.cluster.endpoints import sync_endpoints
from labkit.sandbox.cluster.scheduling import schedule_pods
from labkit.sandbox.cluster.statuses import (
    write_ingress_statuses,
    write_pod_statuses,
    write_workload_statuses,
)
from labkit.sandbox.cluster.workload_controllers import (
    collect_garbage,
    sync_daemonsets,
    sync_deployments,
    sync_replicasets,
    sync_statefulsets,
)
from labkit.sandbox.cluster.world import World


def reconcile(world: World) -> None:
    """Run every controller once, in dependency order, so the state is consistent afterwards."""
    ensure_service_accounts(world)
    collect_garbage(world)
    sync_deployments(world)
    collect_garbage(world)
    sync_replicasets(world)
    sync_daemonsets(world)
    sync_statefulsets(world)
    schedule_pods(world)
    assign_pod_ips(world)
    assign_load_balancer_ips(world)
    sync_endpoints(world)
    write_pod_statuses(world)
    write_workload_statuses(world)
    write_ingress_statuses(world)


def ensure_service_accounts(world: World) -> None:
    """Every namespace has a ``default`` ServiceAccount (the service account controller's job)."""
    for ns in world.ordered("Namespace"):
        name = ns["metadata"]["name"]
        if world.find("ServiceAccount", name, "default") is None:
            world.put(
                {
                    "apiVersion": "v1",
                    "kind": "ServiceAccount",
                    "metadata": {"name": "default", "namespace": name},
                }
            )
