"""``SandboxLab``: the Lab seam over the namespace data plane.

Objects go into the cluster store; the data plane is then reconciled to match it
(:mod:`labkit.sandbox.dataplane`). State lives in ``/run/labkit/<lab>/state.json`` and
its journal (:mod:`labkit.sandbox.state`); changes hold the lab's lifecycle lock and the state
file's lock, so a CLI and a notebook can share one lab. A change that fails midway is rolled
back to the previous state; one whose process died is finished by the next call
(:meth:`SandboxLab.heal`).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, NamedTuple

from labkit import inputs, manifests
from labkit.errors import LabError
from labkit.model.addresses import is_ip
from labkit.model.objects import name_of
from labkit.sandbox import ciliumdbg, handmade, naming, netns_etc
from labkit.sandbox.componentlogs import coredns_log, kube_proxy_log
from labkit.sandbox.confine import Confinement, command_argv, pod_confinement
from labkit.sandbox.fabric import PodNet
from labkit.sandbox.lab_handmade import HandMadeNetns
from labkit.sandbox.lab_outside import OutsideAddresses
from labkit.sandbox.outside_world import node_resolv_conf
from labkit.sandbox.system.addons import COREFILE
from labkit.sandbox.system.control_plane import KUBE_PROXY_IMAGE
from labkit.sandbox.workloads import pod_role
from labkit.values import OUTSIDE, ExecResult, HttpReply, ObjectRef, Probe, split_pod_ref

OUTSIDE_HOSTNAME = "outside"
"""The hostname of commands run in the outside client (the internet, the learner's laptop)."""
log = logging.getLogger("labkit")

RESOLVE_TIMEOUT_S = 1.0
"""The deadline of a whole name lookup (every search-path candidate): the lab's DNS server answers
in milliseconds, so only a dropped query takes this long."""


class ProbeSource(NamedTuple):
    """Where a probe starts: a namespace, the resolv.conf it resolves with, its label, and how a
    command run there is confined."""

    netns: str
    resolv_conf: str | None
    label: str
    confinement: Confinement


class SandboxLab(HandMadeNetns, OutsideAddresses):
    """A running sandbox lab (implements ``labkit.lab.Lab``); namespaces made by hand on its
    nodes and the outside's addresses come from the two classes it builds on."""

    backend = "sandbox"

    def __repr__(self) -> str:
        return f"SandboxLab(name={self.name!r}, cni={self.cni!r})"

    # ---- Lab seam: objects

    def apply(self, manifests_: Any, namespace: str | None = None) -> list[ObjectRef]:
        """Validate and store the objects, then make the data plane match; all or nothing."""
        docs = manifests.load(manifests_)
        if not docs:
            raise LabError(
                "There was nothing to apply (no Kubernetes objects in the input).",
                "Pass a manifest file, YAML text, or a dict with apiVersion, kind and metadata.",
            )
        manifests.validate(docs)
        return self._change(lambda store: store.apply(docs, namespace))

    def delete(self, manifests_or_refs: Any) -> None:
        """Remove objects (given as ObjectRefs, ``kind/name`` strings or manifests) and their
        data plane."""
        refs = self._refs(manifests_or_refs)
        self._change(lambda store: store.delete(refs))

    def _refs(self, items: Any) -> list[ObjectRef]:
        if isinstance(items, ObjectRef):
            return [items]
        if (
            isinstance(items, (list, tuple))
            and items
            and all(isinstance(i, ObjectRef) for i in items)
        ):
            return list(items)
        if (
            isinstance(items, str)
            and "\n" not in items
            and "/" in items
            and ":" not in items
            and not items.endswith((".yaml", ".yml", ".json"))
        ):
            kind, _, rest = items.partition("/")
            ns, name = split_pod_ref(rest)
            kind = manifests.canonical_kind(kind)
            return [ObjectRef(kind, name, ns if manifests.is_namespaced(kind) else None)]
        return [
            ObjectRef(
                manifests.canonical_kind(str(doc.get("kind", ""))),
                name_of(doc),
                manifests.namespace_of(doc),
            )
            for doc in manifests.load(items)
        ]

    def get(
        self,
        kind: str,
        name: str | None = None,
        namespace: str | None = "default",
        selector: str | dict[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """Objects in the Kubernetes JSON shape, status filled in (copies: change them freely)."""
        return self._store().get(kind, name, namespace, selector)

    # ---- Lab seam: running things

    def _pod(self, pod: str, namespace: str = "default") -> tuple[dict[str, Any], PodNet]:
        ns, name = split_pod_ref(pod, namespace)
        found = self._store().get("Pod", name, ns, None)
        net = (self._state().get("pods") or {}).get(f"{ns}/{name}")
        if not found:
            raise LabError(
                f"There is no pod {name!r} in namespace {ns!r} of lab {self.name!r}.",
                f"List the pods with `labkit status --name {self.name}` or "
                "lab.get('pods', namespace=None), and pass 'namespace/name'.",
            )
        if net is None:
            raise LabError(
                f"Pod {ns}/{name} has no network yet (it is not scheduled or has no IP).",
                "Look at its status with lab.get('pod', name, namespace) (e.g. a nodeSelector "
                "no node matches).",
            )
        return found[0], PodNet(**net)

    def exec(
        self,
        pod: str,
        command: str | Sequence[str],
        namespace: str = "default",
        timeout: float = 10.0,
    ) -> ExecResult:
        """Run a command in the pod's network namespace (its node's, for a host-network pod),
        confined like a container (:mod:`labkit.sandbox.confine`)."""
        from labkit.sandbox.netns import run_confined

        timeout = inputs.check_timeout(timeout)
        found, net = self._pod(pod, namespace)
        agent = ciliumdbg.agent_argv(found, command)
        if agent is not None:
            return ciliumdbg.answer(agent, found, self.get)
        self.heal()
        return run_confined(
            net.netns, self._confinement(found, net), command_argv(command), timeout
        )

    def exec_interactive(
        self,
        pod: str,
        argv: Sequence[str],
        namespace: str = "default",
        container: str | None = None,
        tty: bool = True,
    ) -> int:
        """Run ``argv`` in the pod's namespaces, confined as ``exec`` is, with this process's
        terminal; every container of a pod shares its network, so ``container`` only has to be
        one of the pod's."""
        from labkit.sandbox.netns import run_confined_attached

        found, net = self._pod(pod, namespace)
        self._container(found, net, container)
        if ciliumdbg.is_agent_command(found, argv):
            done = ciliumdbg.answer(argv, found, self.get)
            sys.stdout.write(done.stdout)
            sys.stderr.write(done.stderr)
            return done.returncode
        self.heal()
        confinement = self._confinement(found, net)
        return run_confined_attached(
            net.netns, confinement, command_argv(argv), tty and _stdin_tty()
        )

    def logs(self, pod: str, namespace: str = "default", container: str | None = None) -> str:
        """What the pod's server saw, as the agent logged it (agnhost netexec's lines); CoreDNS's
        and kube-proxy's start-up lines; kube-system's other pods are refused: labkit does their
        work and logs nothing."""
        from labkit.sandbox.agent.client import agent_command

        found, net = self._pod(pod, namespace)
        chosen = self._container(found, net, container)
        role = pod_role(found)
        if _is_kube_proxy(found):
            started = datetime.fromisoformat(self._store().born)
            return _text(kube_proxy_log(started, [self._node(net.node).ip]))
        if net.namespace == "kube-system" and role != "dns":
            raise LabError(
                f"The sandbox keeps no log for {net.key}: labkit does that component's work "
                "itself, so nothing ran to print one.",
                "Read what it did instead: `iptables-save` on a node for kube-proxy's rules "
                "(lab.node_exec), `labkit kubectl describe pod` for the others.",
            )
        if not chosen.get("ports"):
            return ""  # the agent serves the ports a container declares: this one has none
        self.heal()
        lines = json.loads(agent_command(str(self.state_dir), f"logs {net.key}"))
        if role == "dns":
            lines = coredns_log(lines, COREFILE, str(chosen.get("image")))
        return _text(lines)

    def _container(self, pod: dict[str, Any], net: PodNet, container: str | None) -> dict[str, Any]:
        """The container named (None: the pod's first, as kubectl picks); one the pod does not
        have is refused."""
        containers = (pod.get("spec") or {}).get("containers") or [{}]
        if container is None:
            return dict(containers[0])
        for found in containers:
            if found.get("name") == container:
                return dict(found)
        raise LabError(
            f"Pod {net.key} has no container {container!r}.",
            f"Use one of its containers: {', '.join(str(c.get('name')) for c in containers)}.",
        )

    def node_exec(
        self, node: str, command: str | Sequence[str], timeout: float = 10.0
    ) -> ExecResult:
        """Run a command in a node's network namespace (``iptables-save``, ``ip route``...),
        confined like a node's shell: its own processes and files, the node's network."""
        from labkit.sandbox.netns import run_confined

        timeout = inputs.check_timeout(timeout)
        n = self._node(node)
        self.heal()
        made = handmade.recorded(self._state()).get(n.name, [])
        shown = tuple((naming.hand_netns(self.name, n.short, m), m) for m in made)
        confinement = Confinement(n.name, node=True, netns=shown)
        return run_confined(n.netns, confinement, command_argv(command), timeout)

    def _source(self, src: str) -> ProbeSource:
        """Where a probe from ``src`` starts: a pod, a node, or OUTSIDE."""
        if src == OUTSIDE:
            return ProbeSource(
                naming.outside_netns(self.name),
                node_resolv_conf(),
                OUTSIDE,
                Confinement(OUTSIDE_HOSTNAME),
            )
        hand = inputs.hand_source(src)
        if hand is not None:
            n, netns = self._hand_netns(*hand)
            return ProbeSource(netns, "", src, Confinement(n.name))
        if "/" not in src:
            for n in self._nodes():
                if src in (n.name, n.netns):
                    return ProbeSource(
                        n.netns, node_resolv_conf(), n.name, Confinement(n.name, node=True)
                    )
        pod, net = self._pod(src)
        resolv = netns_etc.pod_resolv_conf(pod, net.namespace)
        return ProbeSource(net.netns, resolv, net.key, self._confinement(pod, net))

    def _confinement(self, pod: dict[str, Any], net: PodNet) -> Confinement:
        """How the pod's commands are confined; a host-network pod's resolv.conf and hosts are
        written first (kubelet mounts them over its node's)."""
        if not net.host_network:
            return pod_confinement(pod, net)
        folder = netns_etc.write_host_network_etc(self.state_dir, pod, net)
        return pod_confinement(pod, net, str(folder))

    def probe(
        self, src: str, dst: str, port: int, protocol: str = "TCP", timeout: float = 1.0
    ) -> Probe:
        """Connect from inside ``src`` (``ns/name`` or OUTSIDE) to ``dst:port`` and report what
        answered."""
        return self.probe_many([(src, dst, port, protocol)], timeout)[0]

    def probe_many(self, pairs: Iterable[Any], timeout: float = 1.0) -> list[Probe]:
        """Many probes at once: ``(src, dst, port[, protocol])`` tuples or dicts with those keys."""
        from labkit.sandbox.probe import ProbeRequest, probe_many

        timeout = inputs.check_timeout(timeout)
        self.heal()
        requests = []
        for item in pairs:
            src, dst, port, protocol = inputs.check_probe(item)
            source = self._source(src)
            requests.append(
                ProbeRequest(source.netns, dst, port, protocol, source.label, source.resolv_conf)
            )
        return probe_many(requests, timeout)

    def http_request(
        self,
        src: str,
        dst: str,
        port: int,
        method: str = "GET",
        path: str = "/",
        timeout: float = 1.0,
    ) -> HttpReply:
        """One HTTP request from inside ``src`` (a pod, a node or OUTSIDE) to ``dst:port`` (an
        address, a name, or a pod as ``ns/name``)."""
        from labkit.sandbox.http_request import http_request

        timeout = inputs.check_timeout(timeout)
        src, dst, port, _ = inputs.check_probe((src, dst, port))
        method, path = inputs.check_http_request(method, path)
        self.heal()
        source = self._source(src)
        address = self._pod(dst)[1].ip if "/" in dst else dst
        answer = http_request(
            source.netns,
            address,
            port,
            method,
            path,
            timeout,
            src_label=source.label,
            resolv_conf=source.resolv_conf,
        )
        return replace(answer, dst=dst)

    def resolve(self, src: str, name: str, rtype: str = "A") -> list[str]:
        """Answers for ``name`` through the source pod's own resolver (resolv.conf search path,
        ndots)."""
        from labkit.sandbox.netns import run_confined
        from labkit.sandbox.probe import resolve

        name, rtype = inputs.check_lookup(name, rtype)
        source = self._source(src)
        self.heal()
        if rtype == "A":
            # Real queries from the pod's namespace, its search path and ndots, under one
            # deadline: a resolver a policy cuts off answers "no answer" in RESOLVE_TIMEOUT_S.
            answers = resolve(
                source.netns, name, "A", RESOLVE_TIMEOUT_S, resolv_conf=source.resolv_conf
            )
            return list(dict.fromkeys(answers))
        # The reverse name of an address, as `dig -x` builds it; else a search-list lookup. The
        # name is validated and passed with -q, so it can never be read as an option.
        query = (
            ["-x", name] if rtype == "PTR" and is_ip(name) else ["+search", "-t", rtype, "-q", name]
        )
        result = run_confined(
            source.netns,
            source.confinement,
            ["dig", "+short", "+time=2", "+tries=1", *query],
            timeout=10,
        )
        return [
            line.strip().rstrip(".") if rtype in ("CNAME", "PTR", "NS") else line.strip()
            for line in result.stdout.splitlines()
            if line.strip() and not line.startswith(";")
        ]


def _stdin_tty() -> bool:
    """Whether this process's stdin is a terminal."""
    try:
        return sys.stdin.isatty()
    except ValueError:  # closed
        return False


def _text(lines: Sequence[str]) -> str:
    """Log lines as ``kubectl logs`` prints them, one per line."""
    return "".join(f"{line}\n" for line in lines)


def _is_kube_proxy(pod: dict[str, Any]) -> bool:
    """A kube-proxy pod: one whose container runs kube-proxy's image (the DaemonSet's)."""
    containers = (pod.get("spec") or {}).get("containers") or []
    return any(str(c.get("image") or "").startswith(f"{KUBE_PROXY_IMAGE}:") for c in containers)
