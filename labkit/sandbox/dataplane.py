"""Making a lab's data plane match its cluster store.

After every change the store says which pods exist where; :meth:`DataPlane.converge` then
records which pods it is about to touch, adds and removes pod namespaces and veths, and tells the
workload agent who serves what (``workloads.json``). While the agent reloads, it runs the
readiness probes (which wait for the agent) and renders every node's iptables rules (policy,
kube-proxy, CNI, host ports; a fragment whose inputs did not change is reused), loading only the
chains that changed since the node's last load (a full sync after a crash).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from labkit.errors import LabError
from labkit.model.objects import name_of, ref_of
from labkit.sandbox import (
    fabric,
    fabric_runner,
    ipsets,
    iptables,
    leftovers,
    naming,
    netns_etc,
    rulediff,
)
from labkit.sandbox.ciliumpods import CiliumPods, PodPolicy
from labkit.sandbox.fabric import Job, NodeNet, PodNet
from labkit.sandbox.fragment_cache import FragmentCache
from labkit.sandbox.healthchecks import (
    health_check_entries,
    load_balancer_targets,
    service_health,
)
from labkit.sandbox.policycache import PolicyCache
from labkit.sandbox.proxy_input_cache import ProxyInputCache
from labkit.sandbox.proxy_rule_cache import ProxyRuleCache
from labkit.sandbox.proxyports import ProxyInputs
from labkit.sandbox.readiness import update_readiness
from labkit.sandbox.state import begin_change
from labkit.sandbox.workloads import (
    host_ports,
    ingress_rules,
    outside_workloads,
    pod_nets,
    served_ingresses,
)
from labkit.sandbox.workloads_json import WorkloadsJson
from labkit.sandbox.workloads_publish import Publisher

if TYPE_CHECKING:
    from labkit.sandbox.store import ClusterStore

T = TypeVar("T")
RULES_DIR = "rules"
"""Per node, the iptables-restore input it last loaded: the base of the next partial sync."""


class StoreView:
    """Read-only lists from a store, fetched once and shared with it (``ClusterStore.peek``):
    nothing here may change them.

    ``refresh()`` after the store changed (e.g. readiness updates)."""

    def __init__(self, store: ClusterStore) -> None:
        self.store = store
        self._lists: dict[str, list[dict[str, Any]]] = {}
        self._derived: dict[str, Any] = {}

    def all(self, kind: str) -> list[dict[str, Any]]:
        """Every object of a kind, in all namespaces."""
        if kind not in self._lists:
            self._lists[kind] = self.store.peek(kind)
        return self._lists[kind]

    def pods(self) -> list[dict[str, Any]]:
        """Every pod, in all namespaces."""
        return self.all("Pod")

    def derived(self, name: str, compute: Callable[[], T]) -> T:
        """``compute()``, computed once per view: what every node's render derives alike from
        the lists (e.g. the policies parsed), shared by the nodes."""
        if name not in self._derived:
            self._derived[name] = compute()
        value: T = self._derived[name]
        return value

    def refresh(self) -> None:
        """Forget the lists and what was derived from them, so the next read sees the store's
        changes."""
        self._lists.clear()
        self._derived.clear()


class DataPlane:
    """The network namespaces, agent and iptables rules of one lab."""

    def __init__(self, lab_name: str, cni: str, state_dir: Path) -> None:
        self.lab_name = lab_name
        self.cni = cni
        self.state_dir = state_dir
        self.fragments = FragmentCache()
        """Each node's policy and kube-proxy rules, rendered again only when their inputs change."""
        self.policy_cache = PolicyCache()
        """On Calico, parsed policies and pods and written Felix chains, kept across passes."""
        self.proxied = ProxyInputCache()
        """kube-proxy's Service ports and endpoints, read again per Service only when it (or its
        slices) changes."""
        self.proxy_rules = ProxyRuleCache()
        """kube-proxy's rules per Service port and node, and each node's merge of them."""
        self.agent_document = WorkloadsJson()
        """The agent's workloads.json, each pod's entry and each Service's and pod's DNS records
        derived and encoded again only when it (a Service: or its slices) changes."""
        self.publisher = Publisher(state_dir)
        """workloads.json and the agent's reloads of it."""
        self._loaded: dict[str, _Loaded] = {}
        """Per node namespace, the rules and ipsets this process last loaded (the text, parsed),
        so a partial sync parses only the new ruleset while the record still says the same."""
        self.cilium_pods = CiliumPods(state_dir / RULES_DIR)
        """On Cilium, each pod's socket LB and policy: what it holds, loaded as deltas."""

    def nodes(self, store: ClusterStore) -> list[NodeNet]:
        """The store's nodes as the data plane knows them (namespace, address, pod range)."""
        return fabric.node_nets(self.lab_name, self.cni, store.nodes())

    def converge(
        self,
        store: ClusterStore,
        built: dict[str, PodNet],
        outside: Mapping[str, Any],
        routed: Sequence[NodeNet] | None,
    ) -> None:
        """Make the data plane match ``store``; ``built`` (what exists) is updated as work is
        done, so a failure leaves it true. ``outside`` is the state's outside addresses and
        ports; ``routed`` the nodes as the data plane last made them (their IPAM blocks routed);
        None after a crash: every block's route and every node's rules are written whole again
        (a full sync), where otherwise only the chains that changed are. The pods it touches are
        recorded first (the caller's save ends that record)."""
        nodes = self.nodes(store)
        if self.cni == "calico":
            fabric_runner.run_stages(
                [fabric.block_routes_plan(routed, nodes)], "route Calico's IPAM blocks"
            )
        view = StoreView(store)
        wanted = pod_nets(self.lab_name, self.cni, view.pods(), nodes)
        gone = [net for key, net in built.items() if wanted.get(key) != net]
        new = [net for key, net in wanted.items() if built.get(key) != net]
        begin_change(self.state_dir, [net.key for net in (*gone, *new)])
        if any(net.key in wanted for net in gone):
            # A pod rebuilt under the same name: the agent must let go of the old namespace first.
            kept = {k: v for k, v in built.items() if k in wanted and wanted[k] == v}
            self.publish(view, kept, outside)
        if gone:
            self._remove_pods(gone, nodes, built)
        if new:
            for net in new:
                built[net.key] = net
            pods = {ref_of(pod): pod for pod in view.pods()}
            for net in new:
                if not net.host_network:
                    netns_etc.write_pod_etc(net, pods[net.key])
            fabric_runner.run_stages(
                fabric.pods_add_plan(self.cni, new, nodes), "add pod network namespaces"
            )
        # the agent reloads while the rules are rendered and loaded (readiness probes wait for
        # it); a reload failure is the error raised, as if it had been awaited at once (a rules
        # failure beside it stays as that error's context)
        reload = self.publisher.send(self.workloads(view, wanted, outside))
        try:
            if update_readiness(store, view.pods(), wanted, nodes, reload.wait):
                view.refresh()
                reload = self.publisher.send(self.workloads(view, wanted, outside), reload.text)
            self._load_rules(view, nodes, wanted, full=routed is None)
        finally:
            reload.wait()
        self._route_load_balancers(view, nodes)

    def restore(
        self,
        store: ClusterStore,
        built: Mapping[str, PodNet],
        touched: set[str] | None,
        outside: Mapping[str, Any],
    ) -> tuple[dict[str, PodNet], list[str]]:
        """Converge to ``store`` from whatever a killed command left: the pods it was touching
        (``touched``, None when no change was under way) and those whose namespace is gone are
        rebuilt; pod namespaces, veths and /etc/netns entries ``built`` does not hold are removed
        first. Returns what is built now, and what was removed."""
        kept = {
            key: net
            for key, net in leftovers.intact(self.lab_name, built).items()
            if key not in (touched or set())
        }
        removed = leftovers.remove_untracked(self.lab_name, self.nodes(store), kept)
        if touched is not None:
            removed += leftovers.outside_routes(self.lab_name, outside.get("addresses") or [])
        self.converge(store, kept, outside, None)
        return kept, removed

    def _remove_pods(
        self, gone: list[PodNet], nodes: list[NodeNet], built: dict[str, PodNet]
    ) -> None:
        fabric_runner.run_stages(
            fabric.pods_remove_plan(gone, nodes), "remove pods", ignore_errors=True
        )
        left = set(fabric_runner.list_netns()) & {n.netns for n in gone if not n.host_network}
        if left:
            raise LabError(
                f"Could not remove the namespaces of {len(left)} pod(s): "
                f"{', '.join(sorted(left))}.",
                f"Run `labkit down --name {self.lab_name}` and bring the lab up again.",
            )
        netns_etc.remove_pod_etc(n.netns for n in gone if not n.host_network)
        for net in gone:
            if not net.host_network:  # a pod's rules record and policy (Cilium's)
                (self.state_dir / RULES_DIR / net.netns).unlink(missing_ok=True)
                self.cilium_pods.policies.pop(net.netns, None)
        netns_etc.remove_host_network_etc(self.state_dir, (n for n in gone if n.host_network))
        for net in gone:
            built.pop(net.key, None)

    def publish(
        self, view: StoreView, nets: Mapping[str, PodNet], outside: Mapping[str, Any]
    ) -> None:
        """Write workloads.json for these pods and make the agent serve exactly that
        (``Publisher.send``), waiting for its answer."""
        self.publisher.send(self.workloads(view, nets, outside)).wait()

    def workloads(
        self, view: StoreView, nets: Mapping[str, PodNet], outside: Mapping[str, Any]
    ) -> str:
        """The agent's document for these pods, as ``workloads.json``'s text: what each serves,
        DNS records, Ingress routes, the outside's workloads and kube-proxy's health checks."""
        services = view.all("Service")
        slices = view.all("EndpointSlice")
        pods = view.pods()
        routes = ingress_rules(served_ingresses(view.all("Ingress")), services)
        scenario_ports = outside.get("ports") if outside.get("addresses") else None
        sections: dict[str, Any] = {
            "ingress": routes.rules,
            "tls_hosts": routes.tls_hosts,
            "dns_namespaces": sorted(name_of(ns) for ns in view.all("Namespace")),
            "health_checks": health_check_entries(
                service_health(services, slices, lambda: _proxied(view, self.proxied)),
                self.nodes(view.store),
            ),
        }
        if self.cni == "cilium":  # Hubble's flow logs (nodes and pods), Cilium's HTTP rules
            from labkit.sandbox.l7grants import l7_grants

            sources = [(n.netns, n.name) for n in self.nodes(view.store)]
            sources += [(net.netns, net.node) for net in nets.values() if not net.host_network]
            sections["flow_sources"] = [{"netns": ns, "node": node} for ns, node in sources]
            policies = [*view.all("CiliumNetworkPolicy"), *view.all("NetworkPolicy")]
            sections["l7_grants"] = l7_grants(policies, pods, nets, view.all("Namespace"))
        return self.agent_document.text(
            pods,
            nets,
            services,
            slices,
            outside_workloads(self.lab_name, scenario_ports or []),
            sections,
        )

    def render_rules(
        self, view: StoreView, node: NodeNet, wanted: Mapping[str, PodNet]
    ) -> tuple[iptables.Ruleset, dict[str, list[str]]]:
        """The complete ruleset of one node (policy (Calico), kube-proxy, CNI, hostPorts), and
        the ipsets its policy rules match."""
        from labkit.sandbox.proxyrules import render_proxy_chains

        cluster_cidr = fabric.CLUSTER_CIDRS[self.cni]
        node_objects = view.all("Node")
        this_node = next(n for n in node_objects if name_of(n) == node.name)
        fragments: list[iptables.Fragment | iptables.Chains] = [iptables.kubelet_rules()]
        sets: dict[str, list[str]] = {}
        local = {k: v for k, v in wanted.items() if v.node == node.name}
        pods = view.pods()
        if self.cni == "calico":
            from labkit.sandbox.policyrules import PolicyInputs, render_policy_rules

            def shared() -> PolicyInputs:
                return view.derived(
                    "policy inputs",
                    lambda: PolicyInputs(
                        pods, view.all("Namespace"), view.all("NetworkPolicy"), self.policy_cache
                    ),
                )

            iface_of = {
                (v.namespace, v.name): v.iface for v in local.values() if not v.host_network
            }
            policy = self.fragments.render(
                node.name,
                render_policy_rules,
                node.name,
                pods,
                view.all("Namespace"),
                view.all("NetworkPolicy"),
                iface_of,
                (),
                ipsets.available(),
                shared=shared,
            )
            fragments.append(policy.chains)
            sets = policy.ipsets
        if self.cni == "cilium":
            from labkit.sandbox.ciliumlb import cilium_node_rules

            fragments.append(self._socket_lb(view, node))
            fragments.append(
                self.fragments.render(
                    node.name,
                    cilium_node_rules,
                    this_node,
                    view.all("Service"),
                    view.all("EndpointSlice"),
                    node.pod_cidr,
                    shared=lambda: _proxied(view, self.proxied),
                )
            )
        else:
            fragments.append(
                self.fragments.render(
                    node.name,
                    render_proxy_chains,
                    this_node,
                    node_objects,
                    view.all("Service"),
                    view.all("EndpointSlice"),
                    cluster_cidr,
                    shared=lambda: _proxied(view, self.proxied),
                    cache=self.proxy_rules,
                )
            )
        if self.cni == "flannel":
            fragments.append(iptables.flannel_rules(node.pod_cidr, cluster_cidr))
        elif self.cni == "calico":
            fragments.append(iptables.calico_nat_rules(cluster_cidr))
        fragments.append(iptables.hostport_rules(host_ports(pods, local)))
        return iptables.compose_ruleset(fragments), sets

    def _socket_lb(self, view: StoreView, node: NodeNet) -> iptables.Chains:
        """Cilium's client-side Service translation for the pods of ``node`` (and the node),
        rendered again only for the Service ports that changed."""
        from labkit.sandbox.ciliumlb import socket_lb_rules

        return self.fragments.render(
            node.name,
            socket_lb_rules,
            node.name,
            view.all("Node"),
            view.all("Service"),
            view.all("EndpointSlice"),
            shared=lambda: _proxied(view, self.proxied),
            cache=self.cilium_pods.lb_ports,
        )

    def render_pod_rules(
        self, view: StoreView, node: NodeNet, pods: Mapping[str, PodNet]
    ) -> dict[str, PodPolicy]:
        """The endpoint policy of each pod of ``node`` in ``pods``, by namespace, with Hubble's log
        of what it let in (with Cilium's socket LB, ``_socket_lb``, the pod's ruleset), rendered
        again only where it changed."""
        return self.cilium_pods.render(view, node, pods)

    def _route_load_balancers(self, view: StoreView, nodes: list[NodeNet]) -> None:
        """Point each LoadBalancer address, in the outside namespace, at the node its load
        balancer sends traffic to (for externalTrafficPolicy Local: one whose health check
        answers 200)."""
        checks = service_health(
            view.all("Service"), view.all("EndpointSlice"), lambda: _proxied(view, self.proxied)
        )
        targets = load_balancer_targets(checks, nodes, fabric.lb_addresses())
        job = Job(naming.outside_netns(self.lab_name)).ip(
            *(f"route replace {a}/32 via {node.ip} dev eth0" for a, node in targets.items())
        )
        fabric_runner.run_stages([[job]], "route the LoadBalancer addresses")

    def _load_rules(
        self, view: StoreView, nodes: list[NodeNet], wanted: Mapping[str, PodNet], full: bool
    ) -> None:
        """Render each node's rules and load them; a node's load (``iptables-restore`` and
        ``ipset``, processes of their own) starts as soon as its rules are rendered, beside the
        render of the next node."""
        (self.state_dir / RULES_DIR).mkdir(exist_ok=True)
        with ThreadPoolExecutor(max_workers=max(1, len(nodes))) as pool:
            loads = [
                pool.submit(
                    self._sync_rules, node.netns, *self.render_rules(view, node, wanted), full
                )
                for node in nodes
            ]
            for load in loads:
                load.result()
        if self.cni == "cilium":
            for node in nodes:
                self.cilium_pods.sync(
                    node.netns,
                    self._socket_lb(view, node),
                    self.render_pod_rules(view, node, wanted),
                    full,
                )

    def _sync_rules(
        self, netns: str, rules: iptables.Ruleset, sets: dict[str, list[str]], full: bool
    ) -> None:
        """Load a node's ruleset: its ipsets first (the rules match them), then the rules, whole
        when ``full`` or when what the node holds is unknown, else only the chains that changed
        since the last load (``iptables-restore --noflush``), and only the sets whose members
        changed; stale sets once no rule uses them."""
        record = self.state_dir / RULES_DIR / netns
        set_record = record.with_name(f"{netns}.ipsets")
        use_sets = ipsets.available()
        set_text = ipsets.restore_text(sets) if use_sets else ""
        known = self._loaded.pop(netns, None)
        held = None if full or not set_record.exists() else set_record.read_text()
        if held != set_text:
            set_record.unlink(missing_ok=True)
            changed = sets
            if known is not None and held is not None and known.set_text == held:
                # The node holds what this process last loaded: no need to ask ipset.
                changed = {name: v for name, v in sets.items() if known.sets.get(name) != v}
                stale = [name for name in known.sets if name not in sets]
            else:
                stale = [n for n in ipsets.ours(netns) if n not in sets] if use_sets else []
            if use_sets and changed:
                ipsets.run(netns, ["restore"], ipsets.restore_text(changed))
        else:
            stale = []
        text = self._sync_tables(netns, rules, full, known)
        if stale:
            ipsets.run(netns, ["restore"], ipsets.restore_text({}, stale))
        if use_sets:
            _write_record(set_record, set_text)
        self._loaded[netns] = _Loaded(text, rules, set_text, sets)

    def _sync_tables(
        self, netns: str, rules: iptables.Ruleset, full: bool, known: _Loaded | None = None
    ) -> str:
        """Load a namespace's iptables rules: whole when ``full`` or when what it holds is
        unknown, else only the chains that changed since its last load (``known``: what this
        process last loaded there, which saves parsing the record again). The record keeps the
        complete input (what a full sync or a crash's recovery reads); returns it."""
        record = self.state_dir / RULES_DIR / netns
        before = None if full or not record.exists() else record.read_text()
        text = iptables.restore_input(rules)
        if before != text:
            record.unlink(missing_ok=True)  # unknown until this load succeeds
            if before is None:
                iptables.restore(netns, text)
            else:
                old = known.rules if known is not None and known.text == before else None
                delta = rulediff.partial_restore(old or rulediff.parse_restore(before), rules)
                iptables.restore(netns, delta, noflush=True)
            _write_record(record, text)
        return text


class _Loaded(NamedTuple):
    """What this process last loaded into a node: the rules (text and parsed) and the ipsets
    (``ipset restore`` text and members)."""

    text: str
    rules: iptables.Ruleset
    set_text: str
    sets: dict[str, list[str]]


def _write_record(path: Path, text: str) -> None:
    """Replace a record of what a node holds in one step (never half-written)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _proxied(view: StoreView, cache: ProxyInputCache) -> ProxyInputs:
    """The Service ports and endpoints kube-proxy reads, once per view for every node's rules
    and health checks (from ``cache``: only changed Services are read again)."""
    return view.derived(
        "proxy inputs", lambda: cache.inputs(view.all("Service"), view.all("EndpointSlice"))
    )
