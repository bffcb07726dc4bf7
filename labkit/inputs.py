"""Single values a learner or a manifest hands labkit: names, ports, addresses, timeouts.

The name and port formats are the API server's own (k8s.io/apimachinery/pkg/util/validation), so
both backends refuse the same input; the checks for lookups and probes keep anything a learner
types from becoming a path or an option of a command.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Mapping

from labkit.errors import LabError
from labkit.model.addresses import is_ip

LABEL_MAX = 63
SUBDOMAIN_MAX = 253
PORT_NAME_MAX = 15
TIMEOUT_MAX_S = 3600.0
LEARNER_MAX = 100
RECORD_TYPES = ("A", "AAAA", "CNAME", "MX", "NS", "PTR", "SOA", "SRV", "TXT")

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL = re.compile(_LABEL)
_DNS1123_SUBDOMAIN = re.compile(rf"{_LABEL}(\.{_LABEL})*")
_DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_PORT_NAME = re.compile(r"[-a-z0-9]+")
_CONFIG_KEY = re.compile(r"[-._a-zA-Z0-9]+")
_QUERY_LABEL = re.compile(r"[A-Za-z0-9_]([-A-Za-z0-9_]*[A-Za-z0-9_])?")
HAND_NETNS_PATTERN = r"[a-z][a-z0-9-]{0,14}"
"""A hand-made network namespace's name (``ip netns add NAME`` on a node): short, plain, never
an option or a path."""
_HAND_NETNS = re.compile(HAND_NETNS_PATTERN)
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
PATH_MAX = 200
_HTTP_PATH = re.compile(r"/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*")
"""An origin-form request target (RFC 9112 section 3.2.1): an absolute path and an optional
query, printable characters only, never a space or an option."""

_NAME_RULE = (
    "lower case letters, digits and '-', starting and ending with a letter or digit (e.g. "
    "'my-name')"
)


def shown(value: object, limit: int = 40) -> str:
    """A value as one short printable token for a message (control characters escaped)."""
    text = repr(value) if not isinstance(value, str) or not value.isprintable() else value
    return text if len(text) <= limit else text[: limit - 3] + "..."


def dns1123_label(value: str) -> str | None:
    """Why ``value`` is not a DNS-1123 label (namespaces, container names), or None."""
    if len(value) > LABEL_MAX:
        return f"must be no more than {LABEL_MAX} characters"
    if not _DNS1123_LABEL.fullmatch(value):
        return f"must consist of {_NAME_RULE}"
    return None


def dns1123_subdomain(value: str) -> str | None:
    """Why ``value`` is not a DNS-1123 subdomain (most objects' names), or None."""
    if len(value) > SUBDOMAIN_MAX:
        return f"must be no more than {SUBDOMAIN_MAX} characters"
    if not _DNS1123_SUBDOMAIN.fullmatch(value):
        return f"must consist of {_NAME_RULE}, in parts joined by '.'"
    return None


def dns1035_label(value: str) -> str | None:
    """Why ``value`` is not a DNS-1035 label (Service names: a letter first), or None."""
    if len(value) > LABEL_MAX:
        return f"must be no more than {LABEL_MAX} characters"
    if not _DNS1035_LABEL.fullmatch(value):
        return (
            "must consist of lower case letters, digits and '-', starting with a letter and "
            "ending with a letter or digit (e.g. 'my-name')"
        )
    return None


def path_segment(value: str) -> str | None:
    """Why ``value`` cannot be an object name at all (it would not be one URL path segment)."""
    if value in (".", "..") or "/" in value or "%" in value:
        return "may not be '.' or '..' and may not contain '/' or '%'"
    if not value.isprintable():
        return "may not contain control characters"
    return None


def port_number(value: object) -> str | None:
    """Why ``value`` is not a port number (1-65535), or None."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        return f"{shown(value)} is not a port: must be a whole number from 1 to 65535"
    return None


def port_name(value: str) -> str | None:
    """Why ``value`` is not a port name (IANA_SVC_NAME: 1-15 lower case letters, digits, '-')."""
    if not 1 <= len(value) <= PORT_NAME_MAX:
        return f"a port name must be 1 to {PORT_NAME_MAX} characters"
    if not _PORT_NAME.fullmatch(value) or not re.search("[a-z]", value):
        return "a port name must be lower case letters, digits and '-', with at least one letter"
    if value.startswith("-") or value.endswith("-") or "--" in value:
        return "a port name may not begin or end with '-' or hold '--'"
    return None


def port_or_name(value: object) -> str | None:
    """Why ``value`` is neither a port number nor a port name, or None."""
    return port_name(value) if isinstance(value, str) else port_number(value)


def qualified_name(value: str) -> str | None:
    """Why ``value`` is not a label or annotation key (``[prefix/]name``), or None."""
    prefix, slash, name = value.rpartition("/")
    if slash and (not prefix or dns1123_subdomain(prefix)):
        return "the prefix before '/' must be a DNS subdomain such as 'example.com'"
    if not name or len(name) > LABEL_MAX or not _QUALIFIED_NAME.fullmatch(name):
        return (
            f"the name part must be 1 to {LABEL_MAX} letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )
    return None


def label_value(value: str) -> str | None:
    """Why ``value`` is not a label value (empty, or up to 63 letters, digits, '-_.'), or None."""
    if len(value) > LABEL_MAX or not _LABEL_VALUE.fullmatch(value):
        return (
            f"must be empty or up to {LABEL_MAX} letters, digits, '-', '_' or '.', starting and "
            "ending with a letter or digit"
        )
    return None


def config_key(value: str) -> str | None:
    """Why ``value`` is not a ConfigMap or Secret key (it becomes a file name in a volume)."""
    if len(value) > SUBDOMAIN_MAX or not _CONFIG_KEY.fullmatch(value):
        return f"must be 1 to {SUBDOMAIN_MAX} letters, digits, '-', '_' or '.'"
    if value.startswith(".."):
        return "may not be '.' or start with '..'"
    if value == ".":
        return "may not be '.'"
    return None


def cidr(value: str) -> str | None:
    """Why ``value`` is not an address range such as 10.0.0.0/16, or None."""
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return f"{shown(value)} is not a CIDR such as 192.168.5.0/24"
    return None if "/" in value else f"{shown(value)} is not a CIDR: add the prefix length"


def dns_name(value: str) -> str | None:
    """Why ``value`` is not a DNS name to look up (labels of letters, digits, '-', '_'; at most
    253 characters; may end with '.'), or None. Never starts with '-', so never an option."""
    text = value[:-1] if value.endswith(".") else value
    if not text or len(text) > SUBDOMAIN_MAX:
        return f"a DNS name must be 1 to {SUBDOMAIN_MAX} characters"
    labels = text.split(".")
    if any(len(label) > LABEL_MAX or not _QUERY_LABEL.fullmatch(label) for label in labels):
        return (
            f"a DNS name is labels of up to {LABEL_MAX} letters, digits, '-' or '_' joined by '.', "
            "none starting or ending with '-'"
        )
    return None


# --------------------------------------------------------------------------- LabError checks


def check_timeout(value: object, what: str = "timeout") -> float:
    """A timeout in seconds: a finite number above 0 and at most an hour."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not 0 < value <= TIMEOUT_MAX_S
    ):
        raise LabError(
            f"{what} {shown(value)} is not a usable time in seconds.",
            f"Pass {what} as a number of seconds above 0 and at most {TIMEOUT_MAX_S:g}, e.g. 2.",
        )
    return float(value)


def check_port(value: object, what: str = "port") -> int:
    """A port number 1-65535 (a string of digits is read as one)."""
    number = int(value) if isinstance(value, str) and value.isdigit() and len(value) < 6 else value
    problem = port_number(number)
    if problem is not None:
        raise LabError(f"{what}: {problem}.", f"Pass {what} as a number such as 80 or 8080.")
    assert isinstance(number, int)
    return number


def check_lookup(name: object, rtype: object = "A") -> tuple[str, str]:
    """A name (or, for PTR, an address) and record type that are safe to look up."""
    kind = str(rtype).upper() if isinstance(rtype, str) else ""
    if kind not in RECORD_TYPES:
        raise LabError(
            f"rtype {shown(rtype)} is not a DNS record type labkit looks up.",
            f"Use one of: {', '.join(RECORD_TYPES)}.",
        )
    if not isinstance(name, str):
        raise LabError(
            f"name {shown(name)} is not a DNS name.", "Pass the name as text, e.g. 'web.shop'."
        )
    problem = None if kind == "PTR" and is_ip(name) else dns_name(name)
    if problem is not None:
        raise LabError(
            f"name {shown(name)} cannot be looked up: {problem}.",
            "Pass a DNS name such as 'web', 'web.shop' or 'web.shop.svc.cluster.local'"
            + (" (or an address for PTR)." if kind == "PTR" else "."),
        )
    return name, kind


def check_destination(dst: object, what: str = "dst") -> str:
    """A probe's destination: an IP address, a DNS name, or a pod as ``namespace/name``."""
    text = dst if isinstance(dst, str) else ""
    if isinstance(dst, str) and "/" in dst:
        ns, _, name = dst.partition("/")
        bad = dns1123_label(ns) or dns1123_subdomain(name)
    else:
        bad = None if is_ip(text) else dns_name(text)
    if bad is not None:
        raise LabError(
            f"{what} {shown(dst)} is not an address, a DNS name or a pod: {bad}.",
            "Pass an IP address, a name such as 'web.shop', or a pod as 'namespace/name'.",
        )
    return text


def check_ref(name: object, namespace: object = None) -> None:
    """An object's name and namespace (either may be None) as a Kind lab puts them in an API
    path: one path segment each, never '..' or '/'."""
    bad = (
        name is not None
        and (not isinstance(name, str) or not name or path_segment(name) is not None),
        namespace is not None
        and (not isinstance(namespace, str) or dns1123_label(namespace) is not None),
    )
    if any(bad):
        what = f"name {shown(name)}" if bad[0] else f"namespace {shown(namespace)}"
        raise LabError(
            f"The object {what} is not a Kubernetes name.",
            "Use the names `kubectl get` shows: lower case letters, digits, '-' and '.'.",
        )


def check_probe(item: object) -> tuple[str, str, int, str]:
    """One probe of a batch, checked: ``(src, dst, port[, protocol])`` or a dict with those
    keys -> ``(src, dst, port, protocol)``."""
    if isinstance(item, Mapping):
        fields = [item.get("src"), item.get("dst"), item.get("port"), item.get("protocol", "TCP")]
    elif isinstance(item, (tuple, list)) and len(item) in (3, 4):
        fields = [*item, "TCP"][:4]
    else:
        raise LabError(
            f"A probe must be (src, dst, port[, protocol]), not {shown(item)}.",
            "Pass tuples such as ('default/client', 'web', 80) or dicts with those keys.",
        )
    src, dst, port, protocol = fields
    if not isinstance(src, str) or not src:
        raise LabError(
            f"src {shown(src)} is not a pod, a node, a hand-made namespace or OUTSIDE.",
            "Pass the source as 'namespace/name', a node name, 'node:netns' or labkit.OUTSIDE.",
        )
    hand_source(src)  # a 'node:netns' source is refused here when its name is not one
    return src, check_destination(dst), check_port(port), check_protocol(protocol)


def check_http_request(method: object, path: object) -> tuple[str, str]:
    """An HTTP method and an origin-form target (``GET``, ``/hostname``) safe to send."""
    if not isinstance(method, str) or method.upper() not in HTTP_METHODS:
        raise LabError(
            f"method {shown(method)} is not an HTTP method labkit sends.",
            f"Use one of: {', '.join(HTTP_METHODS)}.",
        )
    if not isinstance(path, str) or len(path) > PATH_MAX or not _HTTP_PATH.fullmatch(path):
        raise LabError(
            f"path {shown(path)} is not a request path.",
            f"Give a path that starts with '/', without spaces, at most {PATH_MAX} characters "
            "(e.g. '/hostname' or '/echo?msg=hi').",
        )
    return method.upper(), path


def check_hand_netns(name: object) -> str:
    """The name of a network namespace a learner makes on a node (``hand``, ``pod-a``)."""
    if not isinstance(name, str) or not _HAND_NETNS.fullmatch(name):
        raise LabError(
            f"{shown(repr(name))} cannot name a hand-made network namespace.",
            "Use 1-15 lower-case letters, digits or '-', starting with a letter (e.g. 'hand').",
        )
    return name


def hand_source(src: str) -> tuple[str, str] | None:
    """``"node:netns"`` (a probe from a hand-made namespace) -> ``(node, netns)``; None for
    any other source."""
    if ":" not in src:
        return None
    node, _, name = src.partition(":")
    if dns1123_subdomain(node) is not None:
        raise LabError(
            f"src {shown(src)} does not start with a node name.",
            "Pass a hand-made namespace as 'node:netns', e.g. 'netlab-worker:hand'.",
        )
    return node, check_hand_netns(name)


def check_protocol(value: object) -> str:
    """A probe's protocol, TCP or UDP (any case)."""
    protocol = value.upper() if isinstance(value, str) else ""
    if protocol not in ("TCP", "UDP"):
        raise LabError(f"protocol {shown(value)} is not TCP or UDP.", "Pass 'TCP' or 'UDP'.")
    return protocol


def check_learner(name: object) -> str:
    """A learner's name for the progress file: one line of printable text."""
    if (
        not isinstance(name, str)
        or not name.strip()
        or not name.isprintable()
        or len(name) > LEARNER_MAX
    ):
        raise LabError(
            f"The learner name {shown(name)} cannot be recorded: it must be 1 to {LEARNER_MAX} "
            "printable characters on one line.",
            "Pass a plain name such as --learner ada (no newlines or control characters).",
        )
    return name
