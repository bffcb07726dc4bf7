"""The API server's rules for a pod spec (a Pod's, or a workload's template): containers and
their ports, volumes, probes, hostname and hostAliases, DNS settings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from labkit import inputs
from labkit.apirules.fields import (
    Problems,
    address_problem,
    check_labels,
    check_port,
    check_port_or_name,
    check_protocol,
    check_text,
    each_item,
    is_map,
    text_list,
)
from labkit.model.dns import poddns


def check_pod_spec_at(
    found: Problems, doc: Mapping[str, Any], path: tuple[str, ...], kind: str
) -> None:
    """Find the pod spec (a workload's template) and check it; a missing one is a problem."""
    node: Any = doc
    for depth, key in enumerate(path):
        node = node.get(key) if is_map(node) else None
        meta = node.get("metadata") if key == "template" and is_map(node) else None
        if is_map(meta):
            check_labels(found, meta.get("labels"), f"{_path(path[: depth + 1])}.metadata.labels")
    where = _path(path)
    if not is_map(node):
        found.append(f"at {where}: required: a {kind} needs a pod spec with containers")
        return
    _pod_spec(found, node, where)


def _path(keys: tuple[str, ...]) -> str:
    return ".".join(keys)


def _pod_spec(found: Problems, spec: Mapping[str, Any], where: str) -> None:
    if not spec.get("containers"):
        found.append(f"at {where}.containers: required: a pod needs at least one container")
    volumes: set[str] = set()
    for vpath, volume in each_item(found, spec.get("volumes"), f"{where}.volumes"):
        check_text(found, f"{vpath}.name", volume.get("name"), inputs.dns1123_label)
        volumes.add(str(volume.get("name")))
    names: set[str] = set()
    for field in ("initContainers", "containers"):
        for cpath, container in each_item(found, spec.get(field), f"{where}.{field}"):
            name = container.get("name")
            if name is None:
                found.append(f"at {cpath}.name: required: every container needs a name")
            check_text(found, f"{cpath}.name", name, inputs.dns1123_label)
            if isinstance(name, str) and name in names:
                found.append(f"at {cpath}.name: {inputs.shown(name)} is used twice")
            names.add(str(name))
            if not container.get("image"):
                found.append(f"at {cpath}.image: container {inputs.shown(name)!r} has no image")
            for ppath, port in each_item(found, container.get("ports"), f"{cpath}.ports"):
                if port.get("containerPort") is None:
                    found.append(f"at {ppath}.containerPort: required")
                check_port(found, f"{ppath}.containerPort", port.get("containerPort"))
                check_port(found, f"{ppath}.hostPort", port.get("hostPort"), zero_ok=True)
                check_text(found, f"{ppath}.name", port.get("name"), inputs.port_name)
                check_protocol(found, f"{ppath}.protocol", port.get("protocol"))
            for mpath, mount in each_item(
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
    check_text(found, f"{where}.hostname", spec.get("hostname"), inputs.dns1123_label)
    check_text(found, f"{where}.subdomain", spec.get("subdomain"), inputs.dns1123_label)
    for apath, alias in each_item(found, spec.get("hostAliases"), f"{where}.hostAliases"):
        check_text(found, f"{apath}.ip", alias.get("ip"), address_problem)
        if alias.get("ip") is None:
            found.append(f"at {apath}.ip: required: give the address the names stand for")
        names = alias.get("hostnames")
        for i, name in enumerate(names if isinstance(names, list) else []):
            check_text(found, f"{apath}.hostnames[{i}]", name, inputs.dns1123_subdomain)


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
    if config is not None and not is_map(config):
        found.append(f"at {where}.dnsConfig: must be a mapping")
        return
    cpath = f"{where}.dnsConfig"
    if policy == "None" and not (config or {}).get("nameservers"):
        found.append(
            f"at {cpath}.nameservers: required: give at least one nameserver when dnsPolicy is None"
        )
    if config is None:
        return
    servers = text_list(found, config.get("nameservers"), f"{cpath}.nameservers")
    if len(servers) > poddns.MAX_DNS_NAMESERVERS:
        found.append(
            f"at {cpath}.nameservers: must not have more than {poddns.MAX_DNS_NAMESERVERS} "
            "nameservers"
        )
    for i, server in enumerate(servers):
        check_text(found, f"{cpath}.nameservers[{i}]", server, address_problem)
    searches = text_list(found, config.get("searches"), f"{cpath}.searches")
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
        check_text(
            found, f"{cpath}.searches[{i}]", search.removesuffix("."), inputs.dns1123_subdomain
        )
    for opath, option in each_item(found, config.get("options"), f"{cpath}.options"):
        if not option.get("name"):
            found.append(f"at {opath}.name: required: an option needs a name such as ndots")


def _probe(found: Problems, probe: Any, path: str) -> None:
    if not is_map(probe):
        return
    for handler in ("httpGet", "tcpSocket", "grpc"):
        action = probe.get(handler)
        if is_map(action):
            port = action.get("port")
            if handler == "grpc":
                check_port(found, f"{path}.grpc.port", port)
            else:
                check_port_or_name(found, f"{path}.{handler}.port", port)
