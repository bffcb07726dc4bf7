"""The start-up lines kube-proxy and CoreDNS print, built only from what the sandbox did (pure).

kube-proxy logs through klog at its default verbosity (kubeadm's and Kind's DaemonSet pass no
``-v``): at start ``"Successfully retrieved NodeIPs"`` (cmd/kube-proxy/app/server.go) and ``"Using
iptables Proxier"`` (server_linux.go); it logs each rule sync (``"Syncing iptables rules"``,
``"SyncProxyRules complete"``) only at ``-v=2``, so neither appears here. CoreDNS prints its server
block (``.:53``), the reload plugin's ``Running configuration SHA512`` and its version; the
``linux/amd64, go..., commit`` line names a build the sandbox does not run, so it is left out.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

KUBE_PROXY_PID = 1
"""kube-proxy is its container's first process: klog's thread id column."""
NODE_IPS_AT = "server.go:218"
"""Where kube-proxy logs its node IPs (v1.35.0, as its own log prints it)."""
IPTABLES_PROXIER_AT = "server_linux.go:136"
"""Where kube-proxy logs its iptables mode (v1.35.0, as its own log prints it)."""
GO_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}
"""Characters Go's encoding/json escapes that Python's json does not."""


def klog_line(when: datetime, source: str, message: str, **pairs: str | Sequence[str]) -> str:
    """One klog InfoS line: ``I1206 12:50:02.000000       1 file.go:NN] "message" key="value"``
    (UTC, as in a container; a list value prints as ``["a","b"]``)."""
    stamp = when.astimezone(timezone.utc)
    header = f"I{stamp:%m%d %H:%M:%S}.{stamp.microsecond:06d} {KUBE_PROXY_PID:7d} {source}]"
    fields = "".join(f" {key}={_klog_value(value)}" for key, value in pairs.items())
    return f"{header} {json.dumps(message)}{fields}"


def _klog_value(value: str | Sequence[str]) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    return "[" + ",".join(json.dumps(item) for item in value) + "]"


def kube_proxy_log(started: datetime, node_ips: Sequence[str]) -> list[str]:
    """What kube-proxy in iptables mode prints at default verbosity when it starts on a node
    with ``node_ips``, stamped ``started`` (when the lab was built)."""
    return [
        klog_line(started, NODE_IPS_AT, "Successfully retrieved NodeIPs", NodeIPs=node_ips),
        klog_line(started, IPTABLES_PROXIER_AT, "Using iptables Proxier"),
    ]


def server_blocks(corefile: str) -> list[dict[str, Any]]:
    """The Corefile's server blocks as caddyfile.Parse groups them (keys; tokens by directive,
    each with its line, the file name empty). Takes a Corefile without quotes, comments, escapes
    or imports, as the sandbox's is."""
    if any(mark in corefile for mark in ('"', "`", "#", "\\")):
        raise ValueError("only a Corefile of plain words, braces and newlines can be parsed")
    tokens = [
        {"File": "", "Line": number, "Text": word}
        for number, line in enumerate(corefile.splitlines(), 1)
        for word in line.split()
    ]
    if any(token["Text"] == "import" for token in tokens):
        raise ValueError("a Corefile with imports cannot be parsed here")
    return _server_blocks(tokens)


def corefile_sha512(corefile: str) -> str:
    """The SHA512 CoreDNS's reload plugin prints: over Go's JSON of the server blocks."""
    text = json.dumps(server_blocks(corefile), separators=(",", ":"), ensure_ascii=False)
    for char, escape in GO_JSON_ESCAPES.items():
        text = text.replace(char, escape)
    return hashlib.sha512(text.encode()).hexdigest()


def _server_blocks(tokens: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """caddyfile's parseAll for braced server blocks: keys up to ``{``, then each directive with
    every token up to the next line at nesting 0 (a nested block's braces included)."""
    blocks: list[dict[str, Any]] = []
    at = 0
    while at < len(tokens):
        keys: list[str] = []
        while tokens[at]["Text"] != "{":
            keys.append(tokens[at]["Text"])
            at += 1
        at += 1
        directives: dict[str, list[dict[str, Any]]] = {}
        while tokens[at]["Text"] != "}":
            name = tokens[at]["Text"]
            group = directives.setdefault(name, [])
            group.append(tokens[at])
            at += 1
            nesting = 0
            while True:
                token = tokens[at]
                if token["Text"] == "{":
                    nesting += 1
                elif nesting == 0 and token["Line"] > tokens[at - 1]["Line"]:
                    break
                elif token["Text"] == "}":
                    nesting -= 1
                group.append(token)
                at += 1
        at += 1
        blocks.append({"Keys": keys, "Tokens": dict(sorted(directives.items()))})
    return blocks


def coredns_version(image: str) -> str:
    """CoreDNS's version line for an image ``.../coredns:v1.14.2``: ``CoreDNS-1.14.2``."""
    return "CoreDNS-" + image.rsplit(":", 1)[-1].removeprefix("v")


def coredns_log(served: Sequence[str], corefile: str, image: str) -> list[str]:
    """CoreDNS's log: the server block line the agent logged when it started serving
    (``.:53``), the reload plugin's hash (when the Corefile uses ``reload``), the version, then
    the agent's later lines; nothing before the server started."""
    if not served:
        return []
    reloads = any("reload" in block["Tokens"] for block in server_blocks(corefile))
    reload = f"[INFO] plugin/reload: Running configuration SHA512 = {corefile_sha512(corefile)}"
    return [served[0], *([reload] if reloads else []), coredns_version(image), *served[1:]]
