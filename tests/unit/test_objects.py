"""Object accessors (pure): every field read one way, and what each returns when it is missing."""

from __future__ import annotations

import pytest

from labkit.model.objects import (
    SERVICE_NAME_LABEL,
    ContainerPort,
    EndpointPort,
    ServiceEndpoint,
    container_ports,
    endpoints_from_endpoints,
    endpoints_from_slices,
    is_host_network,
    labels_of,
    meta,
    name_of,
    named_container_port,
    namespace_of,
    node_internal_ip,
    pick_service_port,
    pod_ip,
    pod_node,
    pod_phase,
    pod_ready,
    ref_of,
    stamp_of,
    strip_port,
)

POD = {
    "metadata": {"name": "web-1", "namespace": "prod", "labels": {"app": "web", "v": 2}},
    "spec": {
        "nodeName": "worker",
        "containers": [
            {
                "name": "main",
                "ports": [
                    {"containerPort": 80, "name": "http"},
                    {"containerPort": 53, "name": "dns", "protocol": "udp"},
                    {"name": "no-number"},
                ],
            },
            {"name": "sidecar", "ports": [{"containerPort": 9090}]},
            {"name": "bare"},
        ],
    },
    "status": {
        "podIP": "10.244.1.5",
        "phase": "Running",
        "conditions": [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Ready", "status": "True"},
        ],
    },
}

# --------------------------------------------------------------------------- metadata


def test_metadata_accessors_read_the_object() -> None:
    assert meta(POD)["name"] == "web-1"
    assert name_of(POD) == "web-1"
    assert namespace_of(POD) == "prod"
    assert labels_of(POD) == {"app": "web", "v": "2"}
    assert ref_of(POD) == "prod/web-1"


@pytest.mark.parametrize("obj", [{}, {"metadata": None}, {"metadata": {}}])
def test_metadata_accessors_when_fields_are_missing(obj: dict) -> None:
    assert meta(obj) == {}
    assert name_of(obj) == ""
    assert namespace_of(obj) == "default"
    assert namespace_of(obj, "kube-system") == "kube-system"
    assert labels_of(obj) == {}
    assert ref_of(obj) == "default/None"


def test_namespace_of_prefers_the_objects_own_namespace_over_the_default() -> None:
    assert namespace_of(POD, "kube-system") == "prod"


# --------------------------------------------------------------------------- pods


def test_pod_accessors_read_status_and_spec() -> None:
    assert pod_ip(POD) == "10.244.1.5"
    assert pod_phase(POD) == "Running"
    assert pod_node(POD) == "worker"
    assert pod_ready(POD) is True
    assert is_host_network(POD) is False
    assert is_host_network({"spec": {"hostNetwork": True}}) is True


@pytest.mark.parametrize("pod", [{}, {"spec": None, "status": None}, {"spec": {}, "status": {}}])
def test_pod_accessors_when_fields_are_missing(pod: dict) -> None:
    assert pod_ip(pod) is None
    assert pod_phase(pod) == "Unknown"
    assert pod_node(pod) is None
    assert pod_ready(pod) is False
    assert is_host_network(pod) is False
    assert container_ports(pod) == []
    assert named_container_port(pod, "http") is None


def test_pod_ip_treats_an_empty_address_as_none() -> None:
    assert pod_ip({"status": {"podIP": ""}}) is None


@pytest.mark.parametrize(
    "conditions, ready",
    [
        ([{"type": "Ready", "status": "False"}], False),
        ([{"type": "Ready", "status": True}], True),
        ([{"type": "ContainersReady", "status": "True"}], False),
        ([], False),
    ],
)
def test_pod_ready_reads_only_the_ready_condition(conditions: list, ready: bool) -> None:
    assert pod_ready({"status": {"conditions": conditions}}) is ready


def test_container_ports_in_declaration_order_with_protocol_and_container() -> None:
    ports = container_ports(POD)
    assert ports == [
        ContainerPort(80, "TCP", "http"),
        ContainerPort(53, "UDP", "dns"),
        ContainerPort(9090, "TCP", None),
    ]
    assert [p.container for p in ports] == ["main", "main", "sidecar"]


def test_container_port_equality_ignores_the_container() -> None:
    assert ContainerPort(80, "TCP", "http", "a") == ContainerPort(80, "TCP", "http", "b")
    assert hash(ContainerPort(80, container="a")) == hash(ContainerPort(80, container="b"))
    assert ContainerPort(80) == ContainerPort(80, "TCP", None, None)


def test_named_container_port_matches_name_and_protocol() -> None:
    assert named_container_port(POD, "http") == 80
    assert named_container_port(POD, "dns", "UDP") == 53
    assert named_container_port(POD, "dns") is None  # declared for UDP only
    assert named_container_port(POD, "metrics") is None


# --------------------------------------------------------------------------- services


@pytest.mark.parametrize(
    "address, ip",
    [
        ("10.0.0.1:5555", "10.0.0.1"),
        ("[fd00::1]:80", "fd00::1"),
        ("10.0.0.1", "10.0.0.1"),
        ("fd00::1", "fd00::1"),
        ("  10.0.0.1:80 ", "10.0.0.1"),
        ("", None),
        (None, None),
    ],
)
def test_strip_port(address: str | None, ip: str | None) -> None:
    assert strip_port(address) == ip


SERVICE = {
    "spec": {
        "ports": [
            {"name": "http", "port": 80, "targetPort": 8080},
            {"name": "admin", "port": 9000},
        ]
    }
}


def test_pick_service_port_by_number_name_or_first() -> None:
    assert pick_service_port(SERVICE, None) == {"name": "http", "port": 80, "targetPort": 8080}
    assert pick_service_port(SERVICE, 9000) == {"name": "admin", "port": 9000}
    assert pick_service_port(SERVICE, "9000") == {"name": "admin", "port": 9000}
    assert pick_service_port(SERVICE, "admin") == {"name": "admin", "port": 9000}
    assert pick_service_port(SERVICE, 81) is None
    assert pick_service_port(SERVICE, "metrics") is None


def test_pick_service_port_returns_a_copy() -> None:
    picked = pick_service_port(SERVICE, "http")
    assert picked is not None
    picked["port"] = 1
    assert SERVICE["spec"]["ports"][0]["port"] == 80


@pytest.mark.parametrize("service", [{}, {"spec": None}, {"spec": {"ports": []}}])
def test_pick_service_port_without_ports(service: dict) -> None:
    assert pick_service_port(service, None) is None
    assert pick_service_port(service, 80) is None


def slice_of(endpoints: list, ports: list | None = None) -> dict:
    return {
        "kind": "EndpointSlice",
        "metadata": {"name": "web-abc", "labels": {SERVICE_NAME_LABEL: "web"}},
        "ports": ports if ports is not None else [{"name": "http", "port": 8080}],
        "endpoints": endpoints,
    }


def test_endpoints_from_slices_reads_every_field() -> None:
    got = endpoints_from_slices(
        [
            slice_of(
                [
                    {
                        "addresses": ["10.244.2.7"],
                        "conditions": {"ready": False},
                        "targetRef": {"kind": "Pod", "name": "web-2", "namespace": "prod"},
                        "nodeName": "worker2",
                        "hostname": "web-2",
                    },
                    {"addresses": ["10.244.1.5"]},
                ],
                ports=[{"name": "http", "port": 8080}, {"port": 53, "protocol": "UDP"}, {}],
            )
        ]
    )
    ports = (
        EndpointPort("http", 8080, "TCP"),
        EndpointPort(None, 53, "UDP"),
        EndpointPort(None, 0, "TCP"),
    )
    assert got == [
        ServiceEndpoint("10.244.1.5", None, None, None, True, ports),  # unknown readiness: ready
        ServiceEndpoint("10.244.2.7", "web-2", "prod", "worker2", False, ports, "web-2"),
    ]
    assert got[0].hostname is None


def test_endpoints_from_slices_one_per_address_sorted_and_deduplicated() -> None:
    got = endpoints_from_slices(
        [
            slice_of([{"addresses": ["10.0.0.9", "10.0.0.2"], "conditions": {"ready": True}}]),
            slice_of([{"addresses": ["10.0.0.9"], "conditions": {"ready": False}}]),
        ]
    )
    assert [(e.ip, e.ready) for e in got] == [("10.0.0.2", True), ("10.0.0.9", False)]


@pytest.mark.parametrize("slices", [[], [{}], [slice_of([])], [slice_of([{"addresses": []}])]])
def test_endpoints_from_slices_when_nothing_is_listed(slices: list) -> None:
    assert endpoints_from_slices(slices) == []


def test_endpoints_from_endpoints_reads_ready_and_not_ready_addresses() -> None:
    obj = {
        "kind": "Endpoints",
        "subsets": [
            {
                "addresses": [
                    {
                        "ip": "10.244.1.5",
                        "nodeName": "worker",
                        "hostname": "db-0",
                        "targetRef": {"name": "db-0", "namespace": "prod"},
                    }
                ],
                "notReadyAddresses": [{"ip": "10.244.1.4"}],
                "ports": [{"name": "sql", "port": 5432}],
            }
        ],
    }
    ports = (EndpointPort("sql", 5432, "TCP"),)
    assert endpoints_from_endpoints(obj) == [
        ServiceEndpoint("10.244.1.4", None, None, None, False, ports),
        ServiceEndpoint("10.244.1.5", "db-0", "prod", "worker", True, ports, "db-0"),
    ]


@pytest.mark.parametrize("obj", [{}, {"subsets": None}, {"subsets": [{}]}])
def test_endpoints_from_endpoints_when_nothing_is_listed(obj: dict) -> None:
    assert endpoints_from_endpoints(obj) == []


# --------------------------------------------------------------------------- nodes


def test_node_internal_ip() -> None:
    node = {
        "status": {
            "addresses": [
                {"type": "Hostname", "address": "worker"},
                {"type": "InternalIP", "address": "172.18.0.3"},
            ]
        }
    }
    assert node_internal_ip(node) == "172.18.0.3"


@pytest.mark.parametrize(
    "node",
    [{}, {"status": None}, {"status": {"addresses": [{"type": "Hostname", "address": "w"}]}}],
)
def test_node_internal_ip_when_missing(node: dict) -> None:
    assert node_internal_ip(node) is None


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({"metadata": {"uid": "u1", "resourceVersion": "7"}}, ("u1", "7")),
        ({"metadata": {"uid": "u1", "resourceVersion": 7}}, ("u1", "7")),
        ({"metadata": {"uid": "u1"}}, None),
        ({"metadata": {"resourceVersion": "7"}}, None),
        ({"metadata": {"uid": "", "resourceVersion": "7"}}, None),
        ({"metadata": None}, None),
        ({}, None),
        ("not an object", None),
        (None, None),
    ],
)
def test_an_objects_stamp_is_its_uid_and_resource_version_or_none(obj, expected):
    """API concepts, "Resource versions": the server changes resourceVersion whenever the object
    changes, so (uid, resourceVersion) names one content; without both there is no stamp."""
    assert stamp_of(obj) == expected
