"""DNS check: resolve a name through a pod's own resolver and compare with what the cluster's
Services say it should answer, showing every name the resolver tried (search path, ndots).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

from labkit.checks.connectivity import missing_pod_hint, open_on_pod
from labkit.checks.policy import model_verdict, not_enforced_note
from labkit.checks.result import Result, Step, failure_hint, make_result, poll
from labkit.checks.targets import (
    Target,
    get_service,
    service_endpoints,
)
from labkit.errors import LabError
from labkit.lab import Lab
from labkit.model import dns as dnsmodel
from labkit.model.addresses import is_ip
from labkit.model.objects import (
    labels_of,
    meta,
    pod_phase,
    ref_of,
)
from labkit.model.selectors import equality_selector_matches

RTYPES = ("A", "AAAA", "SRV", "PTR", "CNAME", "TXT")


def normalize(value: str) -> str:
    """One answer in comparable form: lowercase, no trailing dots on names."""
    return " ".join(part.rstrip(".") for part in str(value).strip().lower().split())


def pod_resolv_conf(lab: Lab, pod: Mapping[str, Any]) -> tuple[dnsmodel.ResolvConf, str]:
    """The pod's real resolv.conf (read inside the pod), or what kubelet would write."""
    ns = meta(pod).get("namespace") or "default"
    try:
        got = lab.exec(
            str(meta(pod).get("name")), ["cat", "/etc/resolv.conf"], namespace=ns, timeout=5.0
        )
    except LabError:
        got = None
    if got is not None and got.ok and got.stdout.strip():
        return dnsmodel.parse_resolv_conf(got.stdout), "read in the pod"
    return dnsmodel.parse_resolv_conf(
        dnsmodel.render_resolv_conf(ns)
    ), "as kubelet writes it (could not read it)"


def cluster_records(lab: Lab) -> dnsmodel.RecordIndex:
    """The records cluster DNS should serve, built by the model from the lab's objects."""
    services = lab.get("services", namespace=None)
    try:
        slices = lab.get("endpointslices", namespace=None)
    except LabError:
        slices = lab.get("endpoints", namespace=None)
    return dnsmodel.RecordIndex.from_objects(
        services, slices, lab.get("pods", namespace=None), lab.get("namespaces", namespace=None)
    )


def _candidates(name: str, rtype: str, conf: dnsmodel.ResolvConf) -> list[str]:
    if rtype == "PTR":
        try:
            return [dnsmodel.reverse_name(name)]
        except ValueError:
            pass
    return dnsmodel.query_order(name, conf.search, conf.ndots)


def explain_queries(
    name: str, rtype: str, conf: dnsmodel.ResolvConf, index: dnsmodel.RecordIndex
) -> tuple[list[tuple[str, str]], list[str]]:
    """Every query the resolver sends with the model's reply, and the values it should end with."""
    tried: list[tuple[str, str]] = []
    for candidate in _candidates(name, rtype, conf):
        reply = index.lookup(candidate, rtype)
        if reply.rcode == "NOERROR" and reply.answers:
            tried.append((candidate, "NOERROR"))
            values = [normalize(r.value) for r in reply.answers if r.rtype == rtype]
            return tried, sorted(values)
        tried.append((candidate, "NODATA" if reply.rcode == "NOERROR" else reply.rcode))
    return tried, []


def _expand_expect(lab: Lab, expect: Sequence[str]) -> list[str]:
    """Expected values; ``service:ns/name`` stands for that Service's cluster IP(s)."""
    out = []
    for item in expect:
        text = str(item)
        if text.startswith("service:"):
            ns, _, svc_name = text[len("service:") :].partition("/")
            if not svc_name:
                ns, svc_name = "default", ns
            svc = get_service(lab, svc_name, ns)
            if svc is None:
                raise LabError(
                    f"expect names {text!r}, but there is no Service {ns}/{svc_name}.",
                    "Name an existing Service as service:namespace/name, or give the address itself.",
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
    names, src_pod, steps, shown = open_on_pod(lab, src, "client")
    subject = f"{name} ({rtype}) from {shown}"
    if not steps[0].ok:
        return make_result("dns_resolves", subject, steps, hint=missing_pod_hint("client", src_pod))
    conf, origin = pod_resolv_conf(lab, src_pod)
    steps.append(
        Step(
            "the pod's resolver",
            f"search {' '.join(conf.search) or '(none)'}; ndots:{conf.ndots}; "
            f"nameserver {', '.join(conf.nameservers) or '(none)'} ({origin})",
            None,
        )
    )
    index = cluster_records(lab)
    try:
        tried, model_values = explain_queries(name, rtype, conf, index)
    except ValueError as exc:
        raise LabError(
            f"{name!r} cannot be looked up: {exc}", "Give a DNS name such as 'my-svc.my-namespace'."
        ) from None
    answered = tried[-1][0] if tried and tried[-1][1] == "NOERROR" else None
    steps.append(
        Step(
            "the names the resolver tries, with the cluster's answers (model)",
            (
                f"{answered} answers after {len(tried)} quer{'y' if len(tried) == 1 else 'ies'}"
                if answered
                else f"no name answers after {len(tried)} queries"
            ),
            None,
            tuple(f"{i + 1}. {q} -> {rc}" for i, (q, rc) in enumerate(tried)),
        )
    )

    if expect is None:
        wanted, wording = model_values, "the cluster's records"
    elif expect is True:
        wanted, wording = model_values, "an answer, as the cluster's records give"
    elif expect is False:
        wanted, wording = [], "no answer"
    elif isinstance(expect, (list, tuple)):
        wanted, wording = _expand_expect(lab, expect), "the expected answers"
    else:
        raise LabError(
            f"expect={expect!r} cannot be read.",
            "Use None (the model), True, False, or a list of values such as ['10.96.0.10'].",
        )
    must_resolve = expect is True or (isinstance(expect, (list, tuple)) and bool(expect))

    asked = (
        _candidates(name, rtype, conf)[0] if rtype == "PTR" and is_ip(str(name).strip()) else name
    )

    def observe() -> list[str]:
        return sorted(normalize(v) for v in lab.resolve(ref_of(src_pod), asked, rtype))

    def matches(values: list[str]) -> bool:
        return values == wanted and (bool(values) or not must_resolve)

    enforced = lab.capabilities.network_policy
    dns_denied = "" if enforced else dns_egress_denied(lab, src_pod)
    conv = poll(observe, matches, wait=wait if not dns_denied else min(wait, 1.0))
    observed: list[str] = conv.observation
    ok = matches(observed)
    steps.append(
        Step(
            f"resolve {name} ({rtype}) in {names(src_pod)}",
            f"{', '.join(observed) or 'no answer'}; expected {wording}: {', '.join(wanted) or 'no answer'} "
            f"({conv.describe()})",
            ok if not dns_denied else None,
        )
    )
    if dns_denied:
        # The policies would drop this pod's DNS queries, but nothing enforces them here: what an
        # enforcing cluster would show is "no answer". Grade only when both views agree.
        steps.append(
            Step("may the pod ask kube-dns on 53/UDP (policy model)", f"no: {dns_denied}", None)
        )
        enforced_view_ok = matches([])
        if ok != enforced_view_ok:
            return make_result(
                "dns_resolves",
                subject,
                steps,
                verdict="partial",
                elapsed_s=conv.elapsed_s,
                hint=(
                    f"An egress NetworkPolicy on the client would drop its DNS queries ({dns_denied}), so on a "
                    "cluster that enforces policies this pod could not resolve any name. Allow egress to "
                    "kube-dns on 53/UDP and 53/TCP (namespaceSelector kube-system + podSelector "
                    "k8s-app=kube-dns). " + not_enforced_note(lab)
                ),
            )
        steps[-2] = Step(steps[-2].action, steps[-2].observed, ok, steps[-2].evidence)
    if ok:
        return make_result("dns_resolves", subject, steps, elapsed_s=conv.elapsed_s)
    hint = dns_failure_hint(lab, src_pod, name, observed, wanted, model_values, answered)
    if dns_denied:
        hint += (
            f" Note: an egress NetworkPolicy would also drop this pod's DNS queries ({dns_denied}). "
            + not_enforced_note(lab)
        )
    return make_result(
        "dns_resolves",
        subject,
        steps,
        failure="dns" if not observed else None,
        hint=hint,
        elapsed_s=conv.elapsed_s,
    )


def dns_failure_hint(
    lab: Lab,
    src_pod: Mapping[str, Any],
    name: str,
    observed: list[str],
    wanted: list[str],
    model_values: list[str],
    answered: str | None,
) -> str:
    """The likely mistake behind a DNS answer that differs: namespace, spelling, egress policy, stale DNS."""
    src_ns = meta(src_pod).get("namespace") or "default"
    if not observed and model_values:
        blocked = _dns_blocked(lab, src_pod)
        if blocked:
            return (
                f"The cluster has records for this name but the pod got no answer: an egress NetworkPolicy "
                f"on the client drops its DNS queries ({blocked}). Allow egress to kube-dns on 53/UDP and "
                "53/TCP (namespaceSelector kube-system + podSelector k8s-app=kube-dns)."
            )
        return (
            "The cluster has records for this name but the pod got no answer: check that the DNS pods are "
            "Running and that the kube-dns Service has endpoints (`kubectl -n kube-system get "
            "endpoints kube-dns`)."
        )
    if not observed:
        label = name.rstrip(".").split(".")[0].lower()
        pointed = namespace_of_name(name, src_ns)
        services = lab.get("services", namespace=None)
        same_name = sorted(
            (s for s in services if meta(s).get("name") == label),
            key=lambda s: str(meta(s).get("namespace")),
        )
        if same_name:
            return _elsewhere_hint(lab, name, label, pointed, src_ns, same_name)
        close = near_names(
            label,
            [(str(meta(s).get("name")), str(meta(s).get("namespace"))) for s in services],
            pointed,
        )
        if close:
            return (
                f"Nothing is called {label!r}; did you mean {', '.join(close)}? Service names come from "
                "metadata.name (`kubectl get svc -A`)."
            )
        return failure_hint("dns")
    if not wanted:
        return (
            f"The name resolves ({', '.join(observed)}) although it should not: a Service or record with "
            "this name exists. Check `kubectl get svc -A` for what answers it."
        )
    if answered and observed == model_values:
        return (
            f"The name resolves to {', '.join(observed)} (via {answered}), not to {', '.join(wanted)}. With "
            f"ndots:5 a short name is tried in the client's namespace ({src_ns}) first: qualify it with the "
            "target's namespace (name.namespace) so the search path reaches the right Service."
        )
    if not _is_addresses(observed):
        return f"The answers {', '.join(observed)} differ from {', '.join(wanted)}; compare the Service's ports and names."
    return (
        "The DNS answer differs from what the Services say: cluster DNS is stale or the pod asks another "
        "server. Compare the pod's nameserver with the kube-dns ClusterIP and the records with "
        "`kubectl get svc,endpointslices`."
    )


def namespace_of_name(name: str, client_namespace: str) -> str:
    """The namespace a Service name points into: its second label (``svc.ns``, ``svc.ns.svc...``),
    or the client's own namespace for a short name."""
    parts = [p for p in name.rstrip(".").lower().split(".") if p]
    return parts[1] if len(parts) >= 2 else client_namespace


def near_names(
    label: str, services: Sequence[tuple[str, str]], namespace: str, n: int = 3
) -> list[str]:
    """Service names a learner probably meant by ``label``, best first: names that contain it or
    that it contains (``auth`` for ``auth-service``), then names sharing its first word
    (``auth-svc``), then names spelled alike; only the best kind found is returned. A name that
    lives in another namespace than ``namespace`` is shown as ``name.ns``."""
    where: dict[str, list[str]] = {}
    for svc_name, ns in services:
        if svc_name != label:
            where.setdefault(svc_name, []).append(ns)
    candidates = sorted(where)
    head = label.split("-")[0]
    contained = [
        c for c in candidates if min(len(c), len(label)) >= 3 and (c in label or label in c)
    ]
    same_word = [c for c in candidates if len(head) >= 3 and c.split("-")[0] == head]
    for tier in (
        sorted(contained, key=lambda c: (abs(len(c) - len(label)), c)),
        sorted(same_word, key=lambda c: (abs(len(c) - len(label)), c)),
        difflib.get_close_matches(label, candidates, n=n),
    ):
        if tier:
            return [c if namespace in where[c] else f"{c}.{sorted(where[c])[0]}" for c in tier[:n]]
    return []


def _elsewhere_hint(
    lab: Lab,
    name: str,
    label: str,
    pointed: str,
    src_ns: str,
    same_name: Sequence[Mapping[str, Any]],
) -> str:
    """The name points at a namespace without that Service, but one exists elsewhere: say which
    of those Services has ready endpoints (worth pointing at) and why the others have none."""
    namespaces = [str(meta(s).get("namespace")) for s in same_name]
    text = (
        f"No Service {label!r} exists in namespace {pointed}, where {name} points, but one exists in "
        f"namespace {', '.join(namespaces)}."
    )
    if "." not in name.rstrip("."):
        text += f" A short name only searches the client's own namespace ({src_ns})."
    pods = lab.get("pods", namespace=None)
    usable: list[str] = []
    for svc in same_name:
        ns = str(meta(svc).get("namespace"))
        spec = svc.get("spec") or {}
        if spec.get("type") == "ExternalName" or any(
            e.ready for e in service_endpoints(lab, label, ns)
        ):
            usable.append(ns)
            continue
        selector = spec.get("selector") or {}
        homes = sorted(
            {
                str(meta(p).get("namespace"))
                for p in pods
                if selector
                and equality_selector_matches(selector, labels_of(p))
                and meta(p).get("namespace") != ns
                and pod_phase(p) not in ("Succeeded", "Failed")
            }
        )
        text += f" The Service {label}.{ns} has no ready endpoints"
        if homes:
            sel = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
            text += (
                f": the pods its selector {sel} matches run in {', '.join(homes)}, and a Service only "
                "selects pods in its own namespace"
            )
        elif selector:
            text += " (no Running pod matches its selector)"
        text += "."
    if usable:
        where = ", ".join(f"{label}.{ns}" for ns in usable)
        text += (
            f" The Service with ready endpoints is in {', '.join(usable)}: write {where} (or the full "
            f"{label}.{usable[0]}.svc.cluster.local), or create the Service in {pointed}."
        )
    elif pointed in {str(meta(p).get("namespace")) for p in pods}:
        text += (
            f" Create the Service in {pointed}, next to the pods it should select "
            "(`kubectl get pods -n " + pointed + " --show-labels`)."
        )
    else:
        text += " Pointing at it would not help yet: fix the Service first (run service_health)."
    return text


def _is_addresses(values: Sequence[str]) -> bool:
    return all(is_ip(v) for v in values)


def _dns_blocked(lab: Lab, src_pod: Mapping[str, Any]) -> str:
    """The model's reason when enforced policies block the pod from every cluster DNS pod on 53/UDP."""
    if not lab.capabilities.network_policy:
        return ""
    return dns_egress_denied(lab, src_pod)


def dns_egress_denied(lab: Lab, src_pod: Mapping[str, Any]) -> str:
    """The policy model's reason when the pod may not reach any kube-dns endpoint on 53/UDP (else ""),
    whether or not this lab enforces policies."""
    pods = {meta(p).get("name"): p for p in lab.get("pods", namespace="kube-system")}
    reasons = []
    for ep in service_endpoints(lab, "kube-dns", "kube-system"):
        pod = pods.get(ep.pod)
        if pod is None or not ep.ready:
            continue
        verdict = model_verdict(lab, src_pod, pod, 53, "UDP")
        if verdict is None or verdict.allowed:
            return ""
        reasons.append(verdict.reason)
    return sorted(reasons)[0] if reasons else ""
