"""kubectl describe's text, held against upstream's describer test (kubectl
``pkg/describe/describe_test.go``: TestDescribeNetworkPolicies, in UTC) and against output real
kubectl printed for a NodePort Service; the other describers by their layout rules."""

from __future__ import annotations

from datetime import datetime, timezone

from labkit.printers.describe import describe_node, describe_pod
from labkit.printers.describe_net import (
    describe_endpoints,
    describe_ingress,
    describe_network_policy,
    describe_service,
    slice_endpoints_for_port,
)

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)
PAIR = {"matchLabels": {"id": "pod1", "id2": "pod2"}}
NS_PAIR = {"matchLabels": {"id": "ns1", "id2": "ns2"}}
APP = {"matchLabels": {"id": "app2", "id2": "app3"}}
APP_IN = {**APP, "matchExpressions": [{"key": "foo", "operator": "In", "values": ["bar1", "bar2"]}]}
BLOCK = {"cidr": "192.168.0.0/16", "except": ["192.168.3.0/24", "192.168.4.0/24"]}


def _peers():
    return [
        {"podSelector": PAIR, "namespaceSelector": NS_PAIR},
        {"podSelector": APP},
        {"namespaceSelector": APP},
        {"namespaceSelector": APP_IN},
        {"ipBlock": BLOCK},
    ]


POLICY = {
    "metadata": {
        "name": "network-policy-1",
        "namespace": "default",
        "creationTimestamp": "2017-06-05T04:45:56Z",
    },
    "spec": {
        "podSelector": {
            "matchLabels": {"id1": "app1", "id2": "app2"},
            "matchExpressions": [
                {"key": "foo", "operator": "In", "values": ["bar1", "bar2"]},
                {"key": "foo2", "operator": "NotIn", "values": ["bar1", "bar2"]},
            ],
        },
        "ingress": [
            {"ports": [{"port": 80}, {"port": 82, "protocol": "TCP"}], "from": _peers()},
            {},
        ],
        "egress": [
            {"ports": [{"port": 80}, {"port": 82, "protocol": "TCP"}], "to": _peers()},
            {},
        ],
        "policyTypes": ["Ingress", "Egress"],
    },
}
PEERS_TEXT = """\
      NamespaceSelector: id=ns1,id2=ns2
      PodSelector: id=pod1,id2=pod2
    {w}:
      PodSelector: id=app2,id2=app3
    {w}:
      NamespaceSelector: id=app2,id2=app3
    {w}:
      NamespaceSelector: foo in (bar1,bar2),id=app2,id2=app3
    {w}:
      IPBlock:
        CIDR: 192.168.0.0/16
        Except: 192.168.3.0/24, 192.168.4.0/24
    ----------
    To Port: <any> (traffic allowed to all ports)
"""
EXPECTED_POLICY = (
    """\
Name:         network-policy-1
Namespace:    default
Created on:   2017-06-05 04:45:56 +0000 UTC
Labels:       <none>
Annotations:  <none>
Spec:
  PodSelector:     foo in (bar1,bar2),foo2 notin (bar1,bar2),id1=app1,id2=app2
  Allowing ingress traffic:
    To Port: 80/TCP
    To Port: 82/TCP
    From:
"""
    + PEERS_TEXT.format(w="From")
    + """\
    From: <any> (traffic not restricted by source)
  Allowing egress traffic:
    To Port: 80/TCP
    To Port: 82/TCP
    To:
"""
    + PEERS_TEXT.format(w="To")
    + """\
    To: <any> (traffic not restricted by destination)
  Policy Types: Ingress, Egress
"""
)


def test_describe_network_policy_matches_upstream():
    assert describe_network_policy(POLICY) == EXPECTED_POLICY


def test_describe_network_policy_says_what_it_does_not_govern():
    deny = {
        "metadata": {"name": "deny", "namespace": "shop"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    }
    text = describe_network_policy(deny)
    assert (
        "  PodSelector:     <none> (Allowing the specific traffic to all pods in this namespace)\n"
        in text
    )
    assert "    <none> (Selected pods are isolated for ingress connectivity)\n" in text
    assert "  Not affecting egress traffic\n" in text
    ranged = {
        "metadata": {"name": "r", "namespace": "shop"},
        "spec": {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [{"ports": [{"port": 32000, "endPort": 32768}]}],
        },
    }
    assert "    To Port Range: 32000-32768/TCP\n" in describe_network_policy(ranged)


SERVICE = {
    "metadata": {"name": "short-app-port", "namespace": "default"},
    "spec": {
        "selector": {"components": "frontend"},
        "type": "NodePort",
        "ipFamilyPolicy": "SingleStack",
        "ipFamilies": ["IPv4"],
        "clusterIP": "10.110.44.54",
        "clusterIPs": ["10.110.44.54"],
        "ports": [{"port": 3000, "targetPort": 80, "protocol": "TCP", "nodePort": 31200}],
        "sessionAffinity": "None",
        "externalTrafficPolicy": "Cluster",
        "internalTrafficPolicy": "Cluster",
    },
}
SLICE = {
    "ports": [{"port": 80, "protocol": "TCP"}],
    "endpoints": [{"addresses": ["10.244.0.3"], "conditions": {"ready": True}}],
}


def test_describe_service_matches_real_kubectl():
    assert describe_service(SERVICE, [SLICE]) == (
        "Name:                     short-app-port\n"
        "Namespace:                default\n"
        "Labels:                   <none>\n"
        "Annotations:              <none>\n"
        "Selector:                 components=frontend\n"
        "Type:                     NodePort\n"
        "IP Family Policy:         SingleStack\n"
        "IP Families:              IPv4\n"
        "IP:                       10.110.44.54\n"
        "IPs:                      10.110.44.54\n"
        "Port:                     <unset>  3000/TCP\n"
        "TargetPort:               80/TCP\n"
        "NodePort:                 <unset>  31200/TCP\n"
        "Endpoints:                10.244.0.3:80\n"
        "Session Affinity:         None\n"
        "External Traffic Policy:  Cluster\n"
        "Internal Traffic Policy:  Cluster\n"
        "Events:                   <none>\n"
    )


def test_service_endpoints_are_per_port_ready_only_three_then_more():
    named = {
        "ports": [{"name": "http", "port": 8080}, {"name": "metrics", "port": 9090}],
        "endpoints": [
            {"addresses": [f"10.0.0.{i}"], "conditions": {"ready": i != 5}} for i in range(1, 7)
        ],
    }
    assert slice_endpoints_for_port([named], "http") == (
        "10.0.0.1:8080,10.0.0.2:8080,10.0.0.3:8080 + 2 more..."
    )
    assert slice_endpoints_for_port([named], "other") == ""
    assert slice_endpoints_for_port([], "http") == "<none>"


def test_describe_endpoints_lists_each_subset():
    text = describe_endpoints(
        {
            "metadata": {"name": "web", "namespace": "default"},
            "subsets": [
                {
                    "addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}],
                    "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                }
            ],
        }
    )
    assert text == (
        "Name:         web\n"
        "Namespace:    default\n"
        "Labels:       <none>\n"
        "Annotations:  <none>\n"
        "Subsets:\n"
        "  Addresses:          10.0.0.1,10.0.0.2\n"
        "  NotReadyAddresses:  <none>\n"
        "  Ports:\n"
        "    Name  Port  Protocol\n"
        "    ----  ----  --------\n"
        "    http  8080  TCP\n"
        "\n"
        "Events:  <none>\n"
    )


def test_describe_ingress_lists_rules_with_backends_and_endpoints():
    ingress = {
        "metadata": {"name": "test", "namespace": "default", "annotations": {"a": "b"}},
        "spec": {
            "ingressClassName": "labkit",
            "rules": [
                {
                    "host": "foo.bar.com",
                    "http": {
                        "paths": [
                            {
                                "path": "/foo",
                                "backend": {
                                    "service": {"name": "service1", "port": {"number": 80}}
                                },
                            },
                            {
                                "path": "/bar",
                                "backend": {"service": {"name": "gone", "port": {"name": "http"}}},
                            },
                        ]
                    },
                }
            ],
        },
        "status": {"loadBalancer": {"ingress": [{"ip": "178.91.123.132"}]}},
    }
    service1 = {"metadata": {"name": "service1"}, "spec": {"ports": [{"port": 80}]}}
    text = describe_ingress(ingress, {"service1": service1}, {"service1": [SLICE]})
    assert text == (
        "Name:             test\n"
        "Labels:           <none>\n"
        "Namespace:        default\n"
        "Address:          178.91.123.132\n"
        "Ingress Class:    labkit\n"
        "Default backend:  <default>\n"
        "Rules:\n"
        "  Host         Path  Backends\n"
        "  ----         ----  --------\n"
        "  foo.bar.com\n"
        "               /foo   service1:80 (10.244.0.3:80)\n"
        '               /bar   <error: services "gone" not found>\n'
        "Annotations:   a: b\n"
        "Events:        <none>\n"
    )


POD = {
    "metadata": {
        "name": "web",
        "namespace": "default",
        "labels": {"app": "web", "tier": "front"},
        "ownerReferences": [{"kind": "ReplicaSet", "name": "web-abc", "controller": True}],
    },
    "spec": {
        "nodeName": "kind-worker",
        "containers": [
            {"name": "web", "image": "nginx", "ports": [{"containerPort": 80, "protocol": "TCP"}]}
        ],
        "tolerations": [
            {
                "key": "node.kubernetes.io/not-ready",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            }
        ],
    },
    "status": {
        "phase": "Running",
        "hostIP": "172.18.0.3",
        "podIP": "10.244.1.2",
        "podIPs": [{"ip": "10.244.1.2"}],
        "startTime": "2026-01-01T00:00:04Z",
        "qosClass": "BestEffort",
        "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [
            {
                "name": "web",
                "ready": True,
                "restartCount": 0,
                "state": {"running": {"startedAt": "2026-01-01T00:00:05Z"}},
            }
        ],
    },
}


def test_describe_pod_has_kubectls_fields_in_order():
    lines = describe_pod(POD).splitlines()
    assert lines[:13] == [
        "Name:             web",
        "Namespace:        default",
        "Priority:         0",
        "Service Account:  default",
        "Node:             kind-worker/172.18.0.3",
        "Start Time:       Thu, 01 Jan 2026 00:00:04 +0000",
        "Labels:           app=web",
        "                  tier=front",
        "Annotations:      <none>",
        "Status:           Running",
        "IP:               10.244.1.2",
        "IPs:",
        "  IP:           10.244.1.2",
    ]
    assert lines[13] == "Controlled By:  ReplicaSet/web-abc"
    assert "    Port:           80/TCP" in lines
    assert "    State:          Running" in lines
    assert "      Started:      Thu, 01 Jan 2026 00:00:05 +0000" in lines
    # the conditions table and the fields after it form one tabwriter block, as in kubectl
    assert lines[lines.index("Conditions:") :] == [
        "Conditions:",
        "  Type           Status",
        "  Ready          True",
        "Volumes:         <none>",
        "QoS Class:       BestEffort",
        "Node-Selectors:  <none>",
        "Tolerations:     node.kubernetes.io/not-ready:NoExecute op=Exists for 300s",
        "Events:          <none>",
    ]


def test_describe_node_lists_conditions_addresses_and_its_pods():
    node = {
        "metadata": {
            "name": "kind-worker",
            "labels": {"node-role.kubernetes.io/worker": ""},
            "creationTimestamp": "2026-05-31T00:00:00Z",
        },
        "spec": {"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24"]},
        "status": {
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "ok"}
            ],
            "addresses": [{"type": "InternalIP", "address": "172.18.0.3"}],
            "capacity": {"pods": "110", "cpu": "2"},
            "nodeInfo": {"kubeletVersion": "v1.36.1"},
        },
    }
    text = describe_node(
        node,
        [{**POD, "metadata": {**POD["metadata"], "creationTimestamp": "2026-05-31T23:00:00Z"}}],
        NOW,
    )
    lines = text.splitlines()
    assert lines[:2] == ["Name:               kind-worker", "Roles:              worker"]
    assert "  InternalIP:  172.18.0.3" in lines
    assert lines[lines.index("Capacity:") + 1 :][:2] == ["  cpu:   2", "  pods:  110"]
    assert "PodCIDRs:                     10.244.1.0/24" in lines
    assert any(
        line.startswith("Non-terminated Pods:") and line.endswith("(1 in total)") for line in lines
    )
    assert lines[-2].split() == [
        "default",
        "web",
        "0",
        "(0%)",
        "0",
        "(0%)",
        "0",
        "(0%)",
        "0",
        "(0%)",
        "60m",
    ]


def test_describe_pod_shows_where_each_variable_comes_from():
    container = {
        "name": "app",
        "image": "agnhost",
        "env": [
            {"name": "MODE", "value": "fast"},
            {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "DB", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "db"}}},
            {
                "name": "PW",
                "valueFrom": {"secretKeyRef": {"name": "s", "key": "pw", "optional": True}},
            },
        ],
    }
    pod = {**POD, "spec": {**POD["spec"], "containers": [container]}}
    lines = describe_pod(pod).splitlines()
    start = lines.index("    Environment:")
    assert lines[start + 1 : start + 7] == [
        "      MODE:       fast",
        "      NODE_NAME:   (v1:spec.nodeName)",
        "      POD:        web (v1:metadata.name)",
        "      APP:        web (v1:metadata.labels['app'])",
        "      DB:         <set to the key 'db' of config map 'cfg'>  Optional: false",
        "      PW:         <set to the key 'pw' in secret 's'>        Optional: true",
    ]


def test_describe_pod_lists_mounts_and_volumes_as_real_kubectl_does():
    """Held against real kubectl's describe of a pod with an emptyDir shared by two containers
    (``Mounts:`` by path, ``(rw)``/``(ro)``; the volume block aligned with ``QoS Class``)."""
    logs = {"name": "logs", "mountPath": "/var/log/app"}
    app = {**POD["spec"]["containers"][0], "volumeMounts": [logs, {**logs, "mountPath": "/b"}]}
    reader = {"name": "reader", "image": "agnhost", "volumeMounts": [{**logs, "readOnly": True}]}
    extra = [
        {"name": "cfg", "configMap": {"name": "web-config"}},
        {"name": "token", "secret": {"secretName": "web-token", "optional": True}},
        {"name": "host", "hostPath": {"path": "/etc/kubernetes/pki", "type": "Directory"}},
        {"name": "disk", "persistentVolumeClaim": {"claimName": "data"}},
    ]
    spec = {
        **POD["spec"],
        "containers": [app, reader],
        "volumes": [{"name": "logs", "emptyDir": {}}],
    }
    lines = describe_pod({**POD, "spec": spec}).splitlines()
    mounts = [i for i, line in enumerate(lines) if line == "    Mounts:"]
    assert [lines[i + 1 : i + 3] for i in mounts] == [
        ["      /b from logs (rw)", "      /var/log/app from logs (rw)"],
        ["      /var/log/app from logs (ro)", "Conditions:"],
    ]
    assert lines[lines.index("Volumes:") :] == [
        "Volumes:",
        "  logs:",
        "    Type:        EmptyDir (a temporary directory that shares a pod's lifetime)",
        "    Medium:",  # real kubectl pads it; labkit trims trailing blanks everywhere
        "    SizeLimit:   <unset>",
        "QoS Class:       BestEffort",
        "Node-Selectors:  <none>",
        "Tolerations:     node.kubernetes.io/not-ready:NoExecute op=Exists for 300s",
        "Events:          <none>",
    ]
    spec = {**spec, "volumes": extra}
    lines = describe_pod({**POD, "spec": spec}).splitlines()
    assert lines[lines.index("Volumes:") : lines.index("QoS Class:       BestEffort")] == [
        "Volumes:",
        "  cfg:",
        "    Type:      ConfigMap (a volume populated by a ConfigMap)",
        "    Name:      web-config",
        "    Optional:  false",
        "  token:",
        "    Type:        Secret (a volume populated by a Secret)",
        "    SecretName:  web-token",
        "    Optional:    true",
        "  host:",
        "    Type:          HostPath (bare host directory volume)",
        "    Path:          /etc/kubernetes/pki",
        "    HostPathType:  Directory",
        "  disk:",
        "  <unknown>",
    ]
