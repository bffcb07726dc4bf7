"""The topology and packet-path pictures on the session labs: the SVG that `dot` draws parses and
names the lab's real addresses, and a probe's path shows the endpoint the DNAT really chose
and, under a policy, the DROP rule that counted the packet."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from labkit.model.objects import name_of, node_internal_ip, pod_ip
from labkit.widgets.packet_path import packet_path
from labkit.widgets.topology import topology

SVG = "{http://www.w3.org/2000/svg}"

DENY_WEB = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: pictures-deny-web, namespace: demo}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
"""


def svg_words(svg: str) -> set[str]:
    """The words of every <text> the SVG draws (it must parse as XML), as `text_words` counts
    them."""
    return text_words(" ".join(t.text or "" for t in ET.fromstring(svg).iter(f"{SVG}text")))


def text_words(text: str) -> set[str]:
    """The text form's words without its structure (arrows, separators, label brackets)."""
    return {w.strip("[]") for w in text.split()} - {"->", "|", ""}


def test_topology_draws_the_real_addresses(any_lab) -> None:
    """kubectl's `get nodes,pods,svc -o wide` columns (pkg/printers/internalversion/printers.go:
    INTERNAL-IP, IP, CLUSTER-IP): every node's and pod's address and every ClusterIP of the
    live lab is in the SVG, and the SVG says exactly what the text form says."""
    pic = topology(any_lab)
    words = svg_words(pic.svg())
    assert words == text_words(pic.text)
    for node in any_lab.get("nodes", namespace=None):
        assert node_internal_ip(node) in words
    for pod in any_lab.get("pods", namespace="demo"):
        assert pod_ip(pod) in words, name_of(pod)
    for svc in any_lab.get("services", namespace="demo"):
        if svc["spec"].get("clusterIP") not in (None, "None"):  # headless, ExternalName
            assert svc["spec"]["clusterIP"] in words


def test_service_probe_shows_the_endpoint_conntrack_saw(kube_proxy_lab) -> None:
    """kube-proxy's KUBE-SEP DNAT (pkg/proxy/iptables/proxier.go, syncProxyRules, ``-j DNAT
    --to-destination``) leaves a conntrack entry whose reply source is the chosen endpoint
    (conntrack-tools' ``conntrack -L``): the picture's endpoint is the pod that answered. The
    source side is the CNI's: Flannel's bridge cni0 (flannel's CNI delegates to the bridge
    plugin), Calico's cali veth with proxy ARP for 169.254.1.1 and a /32 per pod (calico
    cni-plugin pkg/dataplane/linux/dataplane_linux.go, DoNetworking). Not on Cilium: its socket
    LB translates in the client pod, so no node's conntrack holds the DNAT."""
    pic = packet_path(kube_proxy_lab, "demo/client-a", "web", 80, namespace="demo")
    cluster_ip = kube_proxy_lab.get("services", "web", namespace="demo")[0]["spec"]["clusterIP"]
    client = kube_proxy_lab.get("pods", "client-a", namespace="demo")[0]
    chosen = re.search(r"chosen endpoint (\S+):8080 \((\S+)\)", pic.text)
    assert chosen, pic.text
    server = kube_proxy_lab.get("pods", chosen.group(2), namespace="demo")[0]
    assert chosen.group(1) == pod_ip(server)
    assert f"served by {chosen.group(2)}" in pic.text
    assert "seen in conntrack on" in pic.text
    words = svg_words(pic.svg())
    assert words == text_words(pic.text)
    assert {pod_ip(client), f"{cluster_ip}:80", f"{pod_ip(server)}:8080"} <= words
    if kube_proxy_lab.cni == "flannel":
        assert "bridge cni0" in pic.text  # flannel's CNI delegates to the bridge plugin: cni0
    else:  # Calico's veths (cali + a hash) answer ARP for 169.254.1.1; a /32 per pod
        assert re.search(
            r"veth cali\w+ \| host end of eth0 on \S+ \| pod gateway 169.254.1.1 \| "
            r"proxy ARP on",
            pic.text,
        ), pic.text
        assert "a /32 route for the pod" in pic.text


def test_policy_drop_names_the_chain_and_the_policy(calico_lab) -> None:
    """Calico's workload-to-endpoint chain (felix/rules/endpoints.go, ``cali-tw-<iface>``) ends
    in a DROP when no policy passed the packet; its counter rises for the probe, and the
    NetworkPolicy model names the policy that isolates the pod."""
    calico_lab.apply(DENY_WEB)
    try:
        pic = packet_path(calico_lab, "demo/client-a", "demo/web", 80)
    finally:
        calico_lab.delete(DENY_WEB)
    assert "outcome timeout" in pic.text
    assert re.search(r"DROP on \S+ \| chain cali-tw-\S+ \(filter\)", pic.text), pic.text
    assert "demo/pictures-deny-web" in pic.text
    # The DNAT happened before the drop: conntrack shows it when the packet left the node;
    # dropped on the same node, its entry is never confirmed, and the chain's veth tells.
    chosen = re.search(r"chosen endpoint (\S+):8080 \((\S+)\)", pic.text)
    assert chosen, pic.text
    assert pod_ip(calico_lab.get("pods", chosen.group(2), namespace="demo")[0]) == chosen.group(1)
    assert re.search(
        r"seen in conntrack on \S+|the dropping chain cali-tw-\S+ polices the veth", pic.text
    )
    assert svg_words(pic.svg()) == text_words(pic.text)


def test_cilium_service_probe_shows_the_endpoint_its_socket_lb_chose(cilium_lab) -> None:
    """Cilium's socket LB translates a ClusterIP at the client's connect()
    (bpf/bpf_sock.c, __sock4_xlate_fwd; on the sandbox the client pod's own nat OUTPUT chain
    CILIUM_SOCK_LB), so no node's conntrack holds the DNAT: the picture reads the client pod's
    own conntrack (conntrack-tools' ``conntrack -L``) and names the pod that answered."""
    pic = packet_path(cilium_lab, "demo/client-a", "web", 80, namespace="demo")
    chosen = re.search(r"chosen endpoint (\S+):8080 \((\S+)\)", pic.text)
    assert chosen, pic.text
    server = cilium_lab.get("pods", chosen.group(2), namespace="demo")[0]
    assert chosen.group(1) == pod_ip(server)
    assert f"served by {chosen.group(2)}" in pic.text
    assert "seen in conntrack in pod demo/client-a" in pic.text
    assert svg_words(pic.svg()) == text_words(pic.text)
