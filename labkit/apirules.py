"""Rules the API server enforces that the OpenAPI schema leaves out: names, ports, required pod
specs, label formats and size limits, so both backends refuse the same objects.

``problems(doc)`` lists each broken rule as ``at <field>: <why>`` (the field as kubectl names it,
e.g. ``spec.ports[0].port``). It reads any shape safely: a wrong type is a problem, never a crash.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeGuard

from labkit import inputs
from labkit.model.addresses import is_ip
from labkit.model.dns import poddns

REQUEST_MAX_BYTES = 3 * 1024 * 1024
"""The API server refuses request bodies over 3 MiB."""
DATA_MAX_BYTES = 1024 * 1024
"""ConfigMap and Secret data together may hold at most 1 MiB."""
ANNOTATIONS_MAX_BYTES = 256 * 1024
PROTOCOLS = ("TCP", "UDP", "SCTP")
_PERCENT = re.compile(r"[0-9]+%")

Problems = list[str]
_NAME_RULES: dict[str, Callable[[str], str | None]] = {
    "Namespace": inputs.dns1123_label,
    "Service": inputs.dns1035_label,
    **dict.fromkeys(
        ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"), inputs.path_segment
    ),
}
"""Name formats that differ from the usual DNS-1123 subdomain."""
_POD_SPEC_PATHS = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}


def encoded_size(value: Any, limit: int) -> int:
    """Roughly the bytes ``value`` takes as JSON, counting stops just above ``limit`` (so an
    object built from shared references cannot make this walk explode)."""
    total, stack = 0, [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, Mapping):
            total += 2 + 4 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            total += 2 + len(item)
            stack.extend(item)
        else:
            total += len(str(item).encode("utf-8", "replace")) + 2
    return total


def too_large(doc: Mapping[str, Any]) -> str | None:
    """The problem when ``doc`` is over the request limit (checked first, before any walk that
    would take long on a huge or alias-built object), or None."""
    if encoded_size(doc, REQUEST_MAX_BYTES) > REQUEST_MAX_BYTES:
        return f"at (whole object): larger than the API server's {_mib(REQUEST_MAX_BYTES)} limit"
    return None


def problems(doc: Mapping[str, Any]) -> Problems:
    """Every rule ``doc`` breaks, as ``at <field>: <why>``; [] when the API server would take
    it. Call ``too_large`` first."""
    kind = str(doc.get("kind") or "")
    found: Problems = []
    _metadata(found, kind, doc.get("metadata"), "metadata")
    path = _POD_SPEC_PATHS.get(kind)
    if path is not None:
        _pod_spec_at(found, doc, path, kind)
    rule = _KIND_RULES.get(kind)
    if rule is not None:
        rule(found, doc)
    return found


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):g} MiB"


def _is_map(value: Any) -> TypeGuard[Mapping[str, Any]]:
    return isinstance(value, Mapping)


def _items(found: Problems, value: Any, path: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """``(path[i], item)`` for each mapping in a list field; a wrong shape is a problem."""
    if value is None:
        return
    if not isinstance(value, list):
        found.append(f"at {path}: must be a list")
        return
    for i, item in enumerate(value):
        if _is_map(item):
            yield f"{path}[{i}]", item
        else:
            found.append(f"at {path}[{i}]: must be a mapping")


def _check(found: Problems, path: str, value: Any, rule: Callable[[str], str | None]) -> None:
    """Apply a string rule to a field, when the field is set."""
    if value is None:
        return
    if not isinstance(value, str):
        found.append(f"at {path}: must be text")
        return
    problem = rule(value)
    if problem is not None:
        found.append(f"at {path}: {inputs.shown(value)} {problem}")


def _port(found: Problems, path: str, value: Any, zero_ok: bool = False) -> None:
    if value is None or (zero_ok and value == 0 and not isinstance(value, bool)):
        return
    problem = inputs.port_number(value)
    if problem is not None:
        found.append(f"at {path}: {problem}")


def _port_or_name(found: Problems, path: str, value: Any, zero_ok: bool = False) -> None:
    if isinstance(value, str):
        _check(found, path, value, inputs.port_name)
    else:
        _port(found, path, value, zero_ok)


def _prefix_rule(rule: Callable[[str], str | None]) -> Callable[[str], str | None]:
    """A name rule for generateName, which may end in '-' (the API server's prefix mode)."""

    def check(value: str) -> str | None:
        return rule(value[:-1] + "a" if len(value) > 1 and value.endswith("-") else value)

    return check


# --------------------------------------------------------------------------- metadata


def _metadata(found: Problems, kind: str, meta: Any, path: str) -> None:
    if meta is None:
        return
    if not _is_map(meta):
        found.append(f"at {path}: must be a mapping")
        return
    rule = _NAME_RULES.get(kind, inputs.dns1123_subdomain)
    _check(found, f"{path}.name", meta.get("name"), rule)
    _check(found, f"{path}.generateName", meta.get("generateName"), _prefix_rule(rule))
    _check(found, f"{path}.namespace", meta.get("namespace"), inputs.dns1123_label)
    _labels(found, meta.get("labels"), f"{path}.labels")
    annotations = meta.get("annotations")
    if _is_map(annotations):
        for key in annotations:
            _check(found, f"{path}.annotations", key, inputs.qualified_name)
        if encoded_size(annotations, ANNOTATIONS_MAX_BYTES) > ANNOTATIONS_MAX_BYTES:
            found.append(f"at {path}.annotations: larger than {ANNOTATIONS_MAX_BYTES // 1024} KiB")


def _labels(found: Problems, labels: Any, path: str) -> None:
    if not _is_map(labels):
        return
    for key, value in labels.items():
        _check(found, path, key, inputs.qualified_name)
        if isinstance(value, str):
            _check(found, f"{path}[{inputs.shown(key)}]", value, inputs.label_value)


# --------------------------------------------------------------------------- pods


def _pod_spec_at(found: Problems, doc: Mapping[str, Any], path: tuple[str, ...], kind: str) -> None:
    """Find the pod spec (a workload's template) and check it; a missing one is a problem."""
    node: Any = doc
    for depth, key in enumerate(path):
        node = node.get(key) if _is_map(node) else None
        meta = node.get("metadata") if key == "template" and _is_map(node) else None
        if _is_map(meta):
            _labels(found, meta.get("labels"), f"{_path(path[: depth + 1])}.metadata.labels")
    where = _path(path)
    if not _is_map(node):
        found.append(f"at {where}: required: a {kind} needs a pod spec with containers")
        return
    _pod_spec(found, node, where)


def _path(keys: tuple[str, ...]) -> str:
    return ".".join(keys)


def _pod_spec(found: Problems, spec: Mapping[str, Any], where: str) -> None:
    if not spec.get("containers"):
        found.append(f"at {where}.containers: required: a pod needs at least one container")
    volumes: set[str] = set()
    for vpath, volume in _items(found, spec.get("volumes"), f"{where}.volumes"):
        _check(found, f"{vpath}.name", volume.get("name"), inputs.dns1123_label)
        volumes.add(str(volume.get("name")))
    names: set[str] = set()
    for field in ("initContainers", "containers"):
        for cpath, container in _items(found, spec.get(field), f"{where}.{field}"):
            name = container.get("name")
            if name is None:
                found.append(f"at {cpath}.name: required: every container needs a name")
            _check(found, f"{cpath}.name", name, inputs.dns1123_label)
            if isinstance(name, str) and name in names:
                found.append(f"at {cpath}.name: {inputs.shown(name)} is used twice")
            names.add(str(name))
            if not container.get("image"):
                found.append(f"at {cpath}.image: container {inputs.shown(name)!r} has no image")
            for ppath, port in _items(found, container.get("ports"), f"{cpath}.ports"):
                if port.get("containerPort") is None:
                    found.append(f"at {ppath}.containerPort: required")
                _port(found, f"{ppath}.containerPort", port.get("containerPort"))
                _port(found, f"{ppath}.hostPort", port.get("hostPort"), zero_ok=True)
                _check(found, f"{ppath}.name", port.get("name"), inputs.port_name)
                _protocol(found, f"{ppath}.protocol", port.get("protocol"))
            for mpath, mount in _items(
                found, container.get("volumeMounts"), f"{cpath}.volumeMounts"
            ):
                if str(mount.get("name")) not in volumes:
                    found.append(f"at {mpath}.name: names no volume of this pod")
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                _probe(found, container.get(probe), f"{cpath}.{probe}")
    _pod_identity(found, spec, where)
    _pod_dns(found, spec, where)


def _pod_identity(found: Problems, spec: Mapping[str, Any], where: str) -> None:
    """spec.hostname and spec.subdomain are DNS labels; each hostAlias an IP and DNS subdomains
    (ValidatePodSpec, validateHostAliases)."""
    _check(found, f"{where}.hostname", spec.get("hostname"), inputs.dns1123_label)
    _check(found, f"{where}.subdomain", spec.get("subdomain"), inputs.dns1123_label)
    for apath, alias in _items(found, spec.get("hostAliases"), f"{where}.hostAliases"):
        _check(found, f"{apath}.ip", alias.get("ip"), _address)
        if alias.get("ip") is None:
            found.append(f"at {apath}.ip: required: give the address the names stand for")
        names = alias.get("hostnames")
        for i, name in enumerate(names if isinstance(names, list) else []):
            _check(found, f"{apath}.hostnames[{i}]", name, inputs.dns1123_subdomain)


def _pod_dns(found: Problems, spec: Mapping[str, Any], where: str) -> None:
    """dnsPolicy is one of four, and dnsConfig within the limits kubelet relies on
    (pkg/apis/core/validation: validateDNSPolicy, validatePodDNSConfig)."""
    policy = spec.get("dnsPolicy")
    if policy is not None and policy not in poddns.POLICIES:
        found.append(
            f"at {where}.dnsPolicy: {inputs.shown(policy)} must be one of "
            + ", ".join(poddns.POLICIES)
        )
    config = spec.get("dnsConfig")
    if config is not None and not _is_map(config):
        found.append(f"at {where}.dnsConfig: must be a mapping")
        return
    cpath = f"{where}.dnsConfig"
    if policy == "None" and not (config or {}).get("nameservers"):
        found.append(
            f"at {cpath}.nameservers: required: give at least one nameserver when dnsPolicy is None"
        )
    if config is None:
        return
    servers = _strings(found, config.get("nameservers"), f"{cpath}.nameservers")
    if len(servers) > poddns.MAX_DNS_NAMESERVERS:
        found.append(
            f"at {cpath}.nameservers: must not have more than {poddns.MAX_DNS_NAMESERVERS} "
            "nameservers"
        )
    for i, server in enumerate(servers):
        _check(found, f"{cpath}.nameservers[{i}]", server, _address)
    searches = _strings(found, config.get("searches"), f"{cpath}.searches")
    if len(searches) > poddns.MAX_DNS_SEARCH_PATHS:
        found.append(
            f"at {cpath}.searches: must not have more than {poddns.MAX_DNS_SEARCH_PATHS} "
            "search paths"
        )
    if len(" ".join(searches)) > poddns.MAX_DNS_SEARCH_LIST_CHARS:
        found.append(
            f"at {cpath}.searches: must not have more than {poddns.MAX_DNS_SEARCH_LIST_CHARS} "
            "characters (including spaces) in the search list"
        )
    for i, search in enumerate(searches):
        _check(found, f"{cpath}.searches[{i}]", search.removesuffix("."), inputs.dns1123_subdomain)
    for opath, option in _items(found, config.get("options"), f"{cpath}.options"):
        if not option.get("name"):
            found.append(f"at {opath}.name: required: an option needs a name such as ndots")


def _strings(found: Problems, value: Any, path: str) -> list[str]:
    """A list of strings field ([] when unset); a wrong shape is a problem."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        found.append(f"at {path}: must be a list of text")
        return []
    return value


def _probe(found: Problems, probe: Any, path: str) -> None:
    if not _is_map(probe):
        return
    for handler in ("httpGet", "tcpSocket", "grpc"):
        action = probe.get(handler)
        if _is_map(action):
            port = action.get("port")
            if handler == "grpc":
                _port(found, f"{path}.grpc.port", port)
            else:
                _port_or_name(found, f"{path}.{handler}.port", port)


def _protocol(found: Problems, path: str, value: Any) -> None:
    if value is not None and value not in PROTOCOLS:
        found.append(f"at {path}: {inputs.shown(value)} must be one of {', '.join(PROTOCOLS)}")


# --------------------------------------------------------------------------- other kinds


def _service(found: Problems, doc: Mapping[str, Any]) -> None:
    spec = doc.get("spec")
    if not _is_map(spec):
        return
    ports = list(_items(found, spec.get("ports"), "spec.ports"))
    for path, port in ports:
        if port.get("port") is None:
            found.append(f"at {path}.port: required")
        _port(found, f"{path}.port", port.get("port"))
        _port_or_name(found, f"{path}.targetPort", port.get("targetPort"), zero_ok=True)
        _port(found, f"{path}.nodePort", port.get("nodePort"), zero_ok=True)
        _protocol(found, f"{path}.protocol", port.get("protocol"))
        _check(found, f"{path}.name", port.get("name"), inputs.dns1123_label)
        if len(ports) > 1 and not port.get("name"):
            found.append(f"at {path}.name: required when a Service has more than one port")
    if spec.get("type") == "ExternalName":
        external = spec.get("externalName")
        if not external:
            found.append("at spec.externalName: required for type ExternalName")
        _check(
            found,
            "spec.externalName",
            external.removesuffix(".") if isinstance(external, str) else external,
            inputs.dns1123_subdomain,
        )


def _network_policy(found: Problems, doc: Mapping[str, Any]) -> None:
    spec = doc.get("spec")
    if not _is_map(spec):
        return
    for direction, peers in (("ingress", "from"), ("egress", "to")):
        for rpath, rule in _items(found, spec.get(direction), f"spec.{direction}"):
            for ppath, port in _items(found, rule.get("ports"), f"{rpath}.ports"):
                number, end = port.get("port"), port.get("endPort")
                _port_or_name(found, f"{ppath}.port", number)
                _protocol(found, f"{ppath}.protocol", port.get("protocol"))
                if end is None:
                    continue
                _port(found, f"{ppath}.endPort", end)
                if not isinstance(number, int) or isinstance(number, bool):
                    found.append(f"at {ppath}.endPort: needs a numeric port to start the range")
                elif inputs.port_number(end) is None and end < number:
                    found.append(f"at {ppath}.endPort: {end} is below port {number}")
            for ppath, peer in _items(found, rule.get(peers), f"{rpath}.{peers}"):
                block = peer.get("ipBlock")
                if _is_map(block):
                    _check(found, f"{ppath}.ipBlock.cidr", block.get("cidr"), inputs.cidr)
                    for i, item in enumerate(block.get("except") or []):
                        _check(found, f"{ppath}.ipBlock.except[{i}]", item, inputs.cidr)


def _backend(found: Problems, backend: Any, path: str) -> None:
    service = backend.get("service") if _is_map(backend) else None
    if not _is_map(service):
        return
    _check(found, f"{path}.service.name", service.get("name"), inputs.dns1035_label)
    port = service.get("port")
    if not _is_map(port):
        return
    if (port.get("number") is None) == (port.get("name") is None):
        found.append(f"at {path}.service.port: set exactly one of number and name")
    _port(found, f"{path}.service.port.number", port.get("number"))
    _check(found, f"{path}.service.port.name", port.get("name"), inputs.port_name)


def _ingress(found: Problems, doc: Mapping[str, Any]) -> None:
    spec = doc.get("spec")
    if not _is_map(spec):
        return
    _backend(found, spec.get("defaultBackend"), "spec.defaultBackend")
    for tpath, tls in _items(found, spec.get("tls"), "spec.tls"):
        _check(found, f"{tpath}.secretName", tls.get("secretName"), inputs.dns1123_subdomain)
        hosts = tls.get("hosts")
        for i, host in enumerate(hosts if isinstance(hosts, list) else []):
            _check(found, f"{tpath}.hosts[{i}]", host, _host)
    for rpath, rule in _items(found, spec.get("rules"), "spec.rules"):
        _check(found, f"{rpath}.host", rule.get("host"), _host)
        http = rule.get("http")
        if not _is_map(http):
            continue
        for ppath, item in _items(found, http.get("paths"), f"{rpath}.http.paths"):
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
    for spath, subset in _items(found, doc.get("subsets"), "subsets"):
        for ppath, port in _items(found, subset.get("ports"), f"{spath}.ports"):
            _port(found, f"{ppath}.port", port.get("port"))
        for field in ("addresses", "notReadyAddresses"):
            for apath, address in _items(found, subset.get(field), f"{spath}.{field}"):
                _check(found, f"{apath}.ip", address.get("ip"), _address)


def _endpoint_slice(found: Problems, doc: Mapping[str, Any]) -> None:
    for ppath, port in _items(found, doc.get("ports"), "ports"):
        _port(found, f"{ppath}.port", port.get("port"))
    if doc.get("addressType") == "FQDN":
        return
    for epath, endpoint in _items(found, doc.get("endpoints"), "endpoints"):
        for i, address in enumerate(endpoint.get("addresses") or []):
            _check(found, f"{epath}.addresses[{i}]", address, _address)


def _address(value: str) -> str | None:
    return None if is_ip(value) else "is not an IP address"


def _config_map(found: Problems, doc: Mapping[str, Any]) -> None:
    total = 0
    for field in ("data", "binaryData"):
        data = doc.get(field)
        if not _is_map(data):
            continue
        for key, value in data.items():
            _check(found, field, key, inputs.config_key)
            total += len(str(key)) + len(str(value))
    if total > DATA_MAX_BYTES:
        found.append(f"at data: {total} bytes is over the {_mib(DATA_MAX_BYTES)} limit")


def _secret(found: Problems, doc: Mapping[str, Any]) -> None:
    total = 0
    for field in ("data", "stringData"):
        data = doc.get(field)
        if not _is_map(data):
            continue
        for key, value in data.items():
            _check(found, field, key, inputs.config_key)
            if field == "stringData":
                total += len(str(value).encode())
                continue
            try:
                total += len(base64.b64decode(str(value), validate=True))
            except (binascii.Error, ValueError):
                found.append(f"at data[{inputs.shown(key)}]: not base64 (use stringData for text)")
    if total > DATA_MAX_BYTES:
        found.append(f"at data: {total} bytes is over the {_mib(DATA_MAX_BYTES)} limit")


def _workload(found: Problems, doc: Mapping[str, Any]) -> None:
    spec = doc.get("spec")
    if not _is_map(spec):
        return
    replicas = spec.get("replicas")
    if replicas is not None and (not isinstance(replicas, int) or replicas < 0):
        found.append(f"at spec.replicas: {inputs.shown(replicas)} must be 0 or more")
    for field in ("strategy", "updateStrategy"):
        strategy = spec.get(field)
        rolling = strategy.get("rollingUpdate") if _is_map(strategy) else None
        if not _is_map(rolling):
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


_KIND_RULES: dict[str, Callable[[Problems, Mapping[str, Any]], None]] = {
    "Service": _service,
    **dict.fromkeys(("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"), _workload),
    "NetworkPolicy": _network_policy,
    "Ingress": _ingress,
    "Endpoints": _endpoints,
    "EndpointSlice": _endpoint_slice,
    "ConfigMap": _config_map,
    "Secret": _secret,
}
