"""DNS check: resolve a name through a pod's own resolver and compare with what the cluster's
Services say it should answer, showing every name the resolver tried (search path, ndots).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from labkit.checks.dns_hints import dns_egress_denied, dns_failure_hint
from labkit.checks.pods import missing_pod_hint, one_pod
from labkit.checks.policy import not_enforced_note
from labkit.checks.result import Result, Step, poll, settle_wait
from labkit.checks.stages import Report
from labkit.checks.targets import Target
from labkit.checks.view import ClusterView
from labkit.errors import LabError
from labkit.lab import Lab
from labkit.model.addresses import is_ip
from labkit.model.dns import poddns
from labkit.model.dns.lookup import RecordIndex, ResolverQuery
from labkit.model.dns.names import reverse_name
from labkit.model.dns.resolver import (
    DNS_SERVICE_IP,
    ResolvConf,
    parse_resolv_conf,
    query_order,
)
from labkit.model.objects import name_of, namespace_of, ref_of

RTYPES = ("A", "AAAA", "SRV", "PTR", "CNAME", "TXT")


def normalize(value: str) -> str:
    """One answer in comparable form: lowercase, no trailing dots on names."""
    return " ".join(part.rstrip(".") for part in str(value).strip().lower().split())


def pod_resolv_conf(lab: Lab, pod: Mapping[str, Any]) -> tuple[ResolvConf, str]:
    """The pod's real resolv.conf (read inside the pod), or what kubelet would write."""
    ns = namespace_of(pod)
    try:
        got = lab.exec(name_of(pod), ["cat", "/etc/resolv.conf"], namespace=ns, timeout=5.0)
    except LabError:
        got = None
    if got is not None and got.ok and got.stdout.strip():
        return parse_resolv_conf(got.stdout), "read in the pod"
    spec = pod.get("spec") or {}
    text = poddns.pod_resolv_conf(spec, ns, "", (DNS_SERVICE_IP,))
    return parse_resolv_conf(text), "as kubelet writes it (could not read it)"


def cluster_records(view: ClusterView) -> RecordIndex:
    """The records cluster DNS should serve, built by the model from the cluster's objects."""
    slices = view.optional_listing("endpointslices")
    if slices is None:
        slices = view.listing("endpoints")
    return RecordIndex.from_objects(view.services, slices, view.pods, view.namespaces)


def _candidates(name: str, rtype: str, conf: ResolvConf) -> list[str]:
    if rtype == "PTR":
        try:
            return [reverse_name(name)]
        except ValueError:
            pass
    return query_order(name, conf.search, conf.ndots)


def explain_queries(
    name: str, rtype: str, conf: ResolvConf, index: RecordIndex
) -> tuple[list[ResolverQuery], list[str]]:
    """Every query the resolver sends with the model's reply, and the values it should end with."""
    tried: list[ResolverQuery] = []
    for candidate in _candidates(name, rtype, conf):
        reply = index.lookup(candidate, rtype)
        if reply.rcode == "NOERROR" and reply.answers:
            tried.append(ResolverQuery(candidate, "NOERROR"))
            values = [normalize(r.value) for r in reply.answers if r.rtype == rtype]
            return tried, sorted(values)
        tried.append(
            ResolverQuery(candidate, "NODATA" if reply.rcode == "NOERROR" else reply.rcode)
        )
    return tried, []


def answering_name(tried: Sequence[ResolverQuery]) -> str | None:
    """The name whose query answered with records (the last one tried), or None."""
    return tried[-1].name if tried and tried[-1].rcode == "NOERROR" else None


def queries_evidence(tried: Sequence[ResolverQuery]) -> tuple[str, ...]:
    """``1. web.default.svc.cluster.local -> NOERROR`` lines, one per query."""
    return tuple(f"{i + 1}. {q.name} -> {q.rcode}" for i, q in enumerate(tried))


class WantedAnswer(NamedTuple):
    """The answers a check wants, how to say so, and whether some answer is required."""

    values: list[str]
    wording: str
    must_resolve: bool


def wanted_answers(view: ClusterView, expect: Any, model_values: list[str]) -> WantedAnswer:
    """Read ``expect`` (see :func:`dns_resolves`) into the answers wanted."""
    if expect is None:
        return WantedAnswer(model_values, "the cluster's records", False)
    if expect is True:
        return WantedAnswer(model_values, "an answer, as the cluster's records give", True)
    if expect is False:
        return WantedAnswer([], "no answer", False)
    if isinstance(expect, (list, tuple)):
        return WantedAnswer(_expand_expect(view, expect), "the expected answers", bool(expect))
    raise LabError(
        f"expect={expect!r} cannot be read.",
        "Use None (the model), True, False, or a list of values such as ['10.96.0.10'].",
    )


def _expand_expect(view: ClusterView, expect: Sequence[str]) -> list[str]:
    """Expected values; ``service:ns/name`` stands for that Service's cluster IP(s)."""
    out: list[str] = []
    for item in expect:
        text = str(item)
        if text.startswith("service:"):
            ns, _, svc_name = text[len("service:") :].partition("/")
            if not svc_name:
                ns, svc_name = "default", ns
            svc = view.service(svc_name, ns)
            if svc is None:
                raise LabError(
                    f"expect names {text!r}, but there is no Service {ns}/{svc_name}.",
                    "Name an existing Service as service:namespace/name, or give the address "
                    "itself.",
                )
            spec = svc.get("spec") or {}
            out.extend(
                ip
                for ip in (spec.get("clusterIPs") or [spec.get("clusterIP")])
                if ip and ip != "None"
            )
        else:
            out.append(normalize(text))
    return sorted(out)


def dns_resolves(
    lab: Lab, src: Target, name: str, rtype: str = "A", expect: Any = None, *, wait: float = 3.0
) -> Result:
    """Resolve ``name`` from inside ``src`` and compare with the expected answers.

    ``expect``: None = whatever the cluster's Services say (the model); True = it must resolve
    (and agree with the model); False or [] = it must not resolve; a list of values (IPs, SRV
    text, names; ``service:ns/name`` for a Service's cluster IP) = exactly those answers.
    """
    rtype = str(rtype).upper()
    if rtype not in RTYPES:
        raise LabError(f"Unknown record type {rtype!r}.", f"Use one of {', '.join(RTYPES)}.")
    if not str(name).strip():
        raise LabError(
            "dns_resolves needs a name to resolve.", "Pass e.g. name='my-svc' or 'my-svc.other-ns'."
        )
    view = ClusterView(lab)
    found = one_pod(view, src, "client")
    report = Report("dns_resolves", f"{name} ({rtype}) from {found.shown}", [found.step])
    src_pod = found.usable
    if src_pod is None:
        return report.result(missing_pod_hint("client", found.pod, view.shell))
    conf, origin = pod_resolv_conf(lab, src_pod)
    report.add(
        "the pod's resolver",
        f"search {' '.join(conf.search) or '(none)'}; ndots:{conf.ndots}; "
        f"nameserver {', '.join(conf.nameservers) or '(none)'} ({origin})",
    )
    try:
        tried, model_values = explain_queries(name, rtype, conf, cluster_records(view))
    except ValueError as exc:
        raise LabError(
            f"{name!r} cannot be looked up: {exc}", "Give a DNS name such as 'my-svc.my-namespace'."
        ) from None
    answered = answering_name(tried)
    queries = f"quer{'y' if len(tried) == 1 else 'ies'}"
    report.add(
        "the names the resolver tries, with the cluster's answers (model)",
        f"{answered} answers after {len(tried)} {queries}"
        if answered
        else f"no name answers after {len(tried)} queries",
        None,
        queries_evidence(tried),
    )
    wanted = wanted_answers(view, expect, model_values)
    asked = (
        _candidates(name, rtype, conf)[0] if rtype == "PTR" and is_ip(str(name).strip()) else name
    )

    def observe() -> list[str]:
        return sorted(normalize(v) for v in lab.resolve(ref_of(src_pod), asked, rtype))

    def matches(values: list[str]) -> bool:
        return values == wanted.values and (bool(values) or not wanted.must_resolve)

    dns_denied = "" if lab.capabilities.network_policy else dns_egress_denied(view, src_pod)
    conv = poll(observe, matches, wait=settle_wait(lab, wait if not dns_denied else min(wait, 1.0)))
    report.elapsed_s = conv.elapsed_s
    observed: list[str] = conv.observation
    ok = matches(observed)
    resolved = report.add(
        f"resolve {name} ({rtype}) in {view.names(src_pod)}",
        f"{', '.join(observed) or 'no answer'}; expected {wanted.wording}: "
        f"{', '.join(wanted.values) or 'no answer'} ({conv.describe()})",
        ok if not dns_denied else None,
    )
    if dns_denied:
        # The policies would drop this pod's DNS queries, but nothing enforces them here: what an
        # enforcing cluster would show is "no answer". Grade only when both views agree.
        report.add("may the pod ask kube-dns on 53/UDP (policy model)", f"no: {dns_denied}")
        if ok != matches([]):
            return report.result(
                f"An egress NetworkPolicy on the client would drop its DNS queries ({dns_denied}), "
                "so on a cluster that enforces policies this pod could not resolve any name. "
                "Allow egress to kube-dns on 53/UDP and 53/TCP (namespaceSelector kube-system + "
                "podSelector k8s-app=kube-dns). " + not_enforced_note(lab),
                verdict="partial",
            )
        report.steps[report.steps.index(resolved)] = Step(
            resolved.action, resolved.observed, ok, resolved.evidence
        )
    if ok:
        return report.result()
    hint = dns_failure_hint(view, src_pod, name, observed, wanted.values, model_values, answered)
    if dns_denied:
        hint += (
            " Note: an egress NetworkPolicy would also drop this pod's DNS queries "
            f"({dns_denied}). " + not_enforced_note(lab)
        )
    return report.result(hint, failure="dns" if not observed else None)
