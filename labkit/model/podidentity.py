"""Who a pod is to itself: the hostname and domain kubelet gives it
(GeneratePodHostNameAndDomain) and the /etc/hosts it writes for it (managedHostsFileContent,
hostsEntriesFromHostAliases), both in kubernetes pkg/kubelet/kubelet_pods.go."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from labkit.model.dns.names import CLUSTER_DOMAIN

HOSTNAME_MAX = 63
"""truncatePodHostnameIfNeeded: a hostname longer than a DNS label is cut to 63 characters."""

MANAGED_HOSTS_HEADER = (
    "# Kubernetes-managed hosts file.\n"
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "fe00::0\tip6-mcastprefix\n"
    "fe00::1\tip6-allnodes\n"
    "fe00::2\tip6-allrouters\n"
)


def pod_hostname(name: str, spec_hostname: str | None = None) -> str:
    """``spec.hostname``, else the pod's name; over 63 characters it is cut and loses the ``-``
    or ``.`` the cut leaves at its end."""
    hostname = spec_hostname or name
    if len(hostname) <= HOSTNAME_MAX:
        return hostname
    return hostname[:HOSTNAME_MAX].rstrip("-.")


def pod_host_domain(
    namespace: str, subdomain: str | None, cluster_domain: str = CLUSTER_DOMAIN
) -> str:
    """``<subdomain>.<namespace>.svc.<cluster domain>`` for a pod with ``spec.subdomain``, else
    empty."""
    return f"{subdomain}.{namespace}.svc.{cluster_domain}" if subdomain else ""


def host_alias_lines(aliases: Iterable[Mapping[str, Any]]) -> str:
    """The ``hostAliases`` block: a blank line, a comment, then ``<ip>\\t<names, tab-separated>``
    per alias (nothing when there are none)."""
    lines = [
        f"{alias.get('ip', '')}\t" + "\t".join(str(n) for n in alias.get("hostnames") or ())
        for alias in aliases
    ]
    if not lines:
        return ""
    return "\n# Entries added by HostAliases.\n" + "".join(f"{line}\n" for line in lines)


def managed_hosts_file(
    ips: Sequence[str],
    hostname: str,
    domain: str = "",
    aliases: Iterable[Mapping[str, Any]] = (),
) -> str:
    """The /etc/hosts kubelet writes into a pod: localhost and IPv6 lines, each pod IP with
    ``<hostname>.<domain>\\t<hostname>`` (or just the hostname), then the host aliases."""
    names = f"{hostname}.{domain}\t{hostname}" if domain else hostname
    return (
        MANAGED_HOSTS_HEADER + "".join(f"{ip}\t{names}\n" for ip in ips) + host_alias_lines(aliases)
    )


def pod_hosts_file(
    pod: Mapping[str, Any], ips: Sequence[str], cluster_domain: str = CLUSTER_DOMAIN
) -> str:
    """A (non host-network) pod's /etc/hosts from its object and IPs."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    return managed_hosts_file(
        ips,
        pod_hostname(str(meta.get("name") or ""), spec.get("hostname")),
        pod_host_domain(str(meta.get("namespace") or ""), spec.get("subdomain"), cluster_domain),
        spec.get("hostAliases") or (),
    )
