"""The API server's rules for Services, NetworkPolicies, Ingresses, Endpoints and
EndpointSlices, ConfigMaps and Secrets, and workloads' replicas and rollout strategies."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from typing import Any

from labkit import inputs
from labkit.apirules.fields import (
    Problems,
    address_problem,
    check_port,
    check_port_or_name,
    check_protocol,
    check_text,
    each_item,
    is_map,
    mib,
)

DATA_MAX_BYTES = 1024 * 1024
"""ConfigMap and Secret data together may hold at most 1 MiB."""
_PERCENT = re.compile(r"[0-9]+%")


def _service(found: Problems, doc: Mapping[str, Any]) -> None:
    spec = doc.get("spec")
    if not is_map(spec):
        return
    ports = list(each_item(found, spec.get("ports"), "spec.ports"))
    for path, port in ports:
        if port.get("port") is None:
            found.append(f"at {path}.port: required")
        check_port(found, f"{path}.port", port.get("port"))
        check_port_or_name(found, f"{path}.targetPort", port.get("targetPort"), zero_ok=True)
        check_port(found, f"{path}.nodePort", port.get("nodePort"), zero_ok=True)
        check_protocol(found, f"{path}.protocol", port.get("protocol"))
        check_text(found, f"{path}.name", port.get("name"), inputs.dns1123_label)
        if len(ports) > 1 and not port.get("name"):
            found.append(f"at {path}.name: required when a Service has more than one port")
    if spec.get("type") == "ExternalName":
        external = spec.get("externalName")
        if not external:
            found.append("at spec.externalName: required for type ExternalName")
        check_text(
            found,
            "spec.externalName",
            external.removesuffix(".") if isinstance(external, str) else external,
            inputs.dns1123_subdomain,
        )


def _network_policy(found: Problems, doc: Mapping[str, Any]) -> None:
    spec = doc.get("spec")
    if not is_map(spec):
        return
    for direction, peers in (("ingress", "from"), ("egress", "to")):
        for rpath, rule in each_item(found, spec.get(direction), f"spec.{direction}"):
            for ppath, port in each_item(found, rule.get("ports"), f"{rpath}.ports"):
                number, end = port.get("port"), port.get("endPort")
                check_port_or_name(found, f"{ppath}.port", number)
                check_protocol(found, f"{ppath}.protocol", port.get("protocol"))
                if end is None:
                    continue
                check_port(found, f"{ppath}.endPort", end)
                if not isinstance(number, int) or isinstance(number, bool):
                    found.append(f"at {ppath}.endPort: needs a numeric port to start the range")
                elif inputs.port_number(end) is None and end < number:
                    found.append(f"at {ppath}.endPort: {end} is below port {number}")
            for ppath, peer in each_item(found, rule.get(peers), f"{rpath}.{peers}"):
                block = peer.get("ipBlock")
                if is_map(block):
                    check_text(found, f"{ppath}.ipBlock.cidr", block.get("cidr"), inputs.cidr)
                    for i, item in enumerate(block.get("except") or []):
                        check_text(found, f"{ppath}.ipBlock.except[{i}]", item, inputs.cidr)


def _backend(found: Problems, backend: Any, path: str) -> None:
    service = backend.get("service") if is_map(backend) else None
    if not is_map(service):
        return
    check_text(found, f"{path}.service.name", service.get("name"), inputs.dns1035_label)
    port = service.get("port")
    if not is_map(port):
        return
    if (port.get("number") is None) == (port.get("name") is None):
        found.append(f"at {path}.service.port: set exactly one of number and name")
    check_port(found, f"{path}.service.port.number", port.get("number"))
    check_text(found, f"{path}.service.port.name", port.get("name"), inputs.port_name)


def _ingress(found: Problems, doc: Mapping[str, Any]) -> None:
    spec = doc.get("spec")
    if not is_map(spec):
        return
    _backend(found, spec.get("defaultBackend"), "spec.defaultBackend")
    for tpath, tls in each_item(found, spec.get("tls"), "spec.tls"):
        check_text(found, f"{tpath}.secretName", tls.get("secretName"), inputs.dns1123_subdomain)
        hosts = tls.get("hosts")
        for i, host in enumerate(hosts if isinstance(hosts, list) else []):
            check_text(found, f"{tpath}.hosts[{i}]", host, _host)
    for rpath, rule in each_item(found, spec.get("rules"), "spec.rules"):
        check_text(found, f"{rpath}.host", rule.get("host"), _host)
        http = rule.get("http")
        if not is_map(http):
            continue
        for ppath, item in each_item(found, http.get("paths"), f"{rpath}.http.paths"):
            text = item.get("path")
            if item.get("pathType") in ("Exact", "Prefix") and not (
                isinstance(text, str) and text.startswith("/")
            ):
                found.append(f"at {ppath}.path: must be an absolute path such as /api")
            _backend(found, item.get("backend"), f"{ppath}.backend")


def _host(value: str) -> str | None:
    """An Ingress host: empty (every host) or a DNS subdomain, optionally behind ``*.``."""
    return inputs.dns1123_subdomain(value.removeprefix("*.")) if value else None


def _endpoints(found: Problems, doc: Mapping[str, Any]) -> None:
    for spath, subset in each_item(found, doc.get("subsets"), "subsets"):
        for ppath, port in each_item(found, subset.get("ports"), f"{spath}.ports"):
            check_port(found, f"{ppath}.port", port.get("port"))
        for field in ("addresses", "notReadyAddresses"):
            for apath, address in each_item(found, subset.get(field), f"{spath}.{field}"):
                check_text(found, f"{apath}.ip", address.get("ip"), address_problem)


def _endpoint_slice(found: Problems, doc: Mapping[str, Any]) -> None:
    for ppath, port in each_item(found, doc.get("ports"), "ports"):
        check_port(found, f"{ppath}.port", port.get("port"))
    if doc.get("addressType") == "FQDN":
        return
    for epath, endpoint in each_item(found, doc.get("endpoints"), "endpoints"):
        for i, address in enumerate(endpoint.get("addresses") or []):
            check_text(found, f"{epath}.addresses[{i}]", address, address_problem)


def _config_map(found: Problems, doc: Mapping[str, Any]) -> None:
    total = 0
    for field in ("data", "binaryData"):
        data = doc.get(field)
        if not is_map(data):
            continue
        for key, value in data.items():
            check_text(found, field, key, inputs.config_key)
            total += len(str(key)) + len(str(value))
    if total > DATA_MAX_BYTES:
        found.append(f"at data: {total} bytes is over the {mib(DATA_MAX_BYTES)} limit")


def _secret(found: Problems, doc: Mapping[str, Any]) -> None:
    total = 0
    for field in ("data", "stringData"):
        data = doc.get(field)
        if not is_map(data):
            continue
        for key, value in data.items():
            check_text(found, field, key, inputs.config_key)
            if field == "stringData":
                total += len(str(value).encode())
                continue
            try:
                total += len(base64.b64decode(str(value), validate=True))
            except (binascii.Error, ValueError):
                found.append(f"at data[{inputs.shown(key)}]: not base64 (use stringData for text)")
    if total > DATA_MAX_BYTES:
        found.append(f"at data: {total} bytes is over the {mib(DATA_MAX_BYTES)} limit")


def _workload(found: Problems, doc: Mapping[str, Any]) -> None:
    spec = doc.get("spec")
    if not is_map(spec):
        return
    replicas = spec.get("replicas")
    if replicas is not None and (not isinstance(replicas, int) or replicas < 0):
        found.append(f"at spec.replicas: {inputs.shown(replicas)} must be 0 or more")
    for field in ("strategy", "updateStrategy"):
        strategy = spec.get(field)
        rolling = strategy.get("rollingUpdate") if is_map(strategy) else None
        if not is_map(rolling):
            continue
        for key in ("maxSurge", "maxUnavailable"):
            value = rolling.get(key)
            if isinstance(value, str) and not _PERCENT.fullmatch(value):
                found.append(
                    f"at spec.{field}.rollingUpdate.{key}: {inputs.shown(value)} must be a "
                    "number or a percentage such as 25%"
                )
            elif isinstance(value, int) and value < 0:
                found.append(f"at spec.{field}.rollingUpdate.{key}: must be 0 or more")


KIND_RULES: dict[str, Callable[[Problems, Mapping[str, Any]], None]] = {
    "Service": _service,
    **dict.fromkeys(("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"), _workload),
    "NetworkPolicy": _network_policy,
    "Ingress": _ingress,
    "Endpoints": _endpoints,
    "EndpointSlice": _endpoint_slice,
    "ConfigMap": _config_map,
    "Secret": _secret,
}
"""Each kind's own rules; metadata and pod specs are checked for every kind first."""
