"""Network namespaces made by hand on a Kind node (``lab.netns_add``): the ``ip netns`` commands
``docker exec`` runs in the node container, as argv lists whose validated name is always a
positional argument, and the probe that runs from such a namespace.

A Kind node has no agnhost, so the probe script's ``agnhost connect`` is played by a bash
function: ``/dev/tcp`` under ``timeout``, printing TIMEOUT or bash's own error text, which
:func:`labkit.kind.probe.classify_connect` reads as agnhost's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from labkit.inputs import HAND_NETNS_PATTERN, check_hand_netns
from labkit.kind import probe as probes

_LISTED = re.compile(rf"({HAND_NETNS_PATTERN})(?: \(id: \d+\))?")

CONNECT_FUNCTION = r"""
labkit_connect() {
  local t=1 hp= a
  for a in "$@"; do
    case $a in
      --timeout=*) t=${a#--timeout=}; t=${t%s} ;;
      connect|--protocol=*|--udp-data=*) ;;
      *) hp=$a ;;
    esac
  done
  [ "$proto" = UDP ] && return 0
  local h=${hp%:*} p=${hp##*:} out rc
  h=${h#[}; h=${h%]}
  out=$(timeout "$t" bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$h" "$p" 2>&1); rc=$?
  [ "$rc" -eq 124 ] && { echo TIMEOUT; return 1; }
  [ "$rc" -eq 0 ] || { printf '%s\n' "$out"; return 1; }
}
AGNHOST=labkit_connect
""".strip()
"""Stands in for ``agnhost connect`` in :data:`labkit.kind.probe.PROBE_SCRIPT` (UDP has no
connection to make, so it only lets the datagrams go)."""


def add_argv(node: str, name: str) -> list[str]:
    """``docker exec NODE ip netns add NAME``."""
    return ["docker", "exec", node, "ip", "netns", "add", check_hand_netns(name)]


def delete_argv(node: str, name: str) -> list[str]:
    """``docker exec NODE ip netns delete NAME``."""
    return ["docker", "exec", node, "ip", "netns", "delete", check_hand_netns(name)]


def list_argv(node: str) -> list[str]:
    """``docker exec NODE ip netns list``."""
    return ["docker", "exec", node, "ip", "netns", "list"]


def exec_argv(node: str, name: str, argv: Sequence[str]) -> list[str]:
    """``docker exec NODE ip netns exec NAME ARGV...``."""
    return ["docker", "exec", node, "ip", "netns", "exec", check_hand_netns(name), *argv]


def probe_argv(
    node: str, name: str, dst: str, port: int, protocol: str = "TCP", timeout: float = 1.0
) -> list[str]:
    """The pod probe script, run from namespace ``name`` on the node with bash's connect."""
    bash, flag, body, *args = probes.probe_command(dst, port, protocol, timeout)
    return exec_argv(node, name, [bash, flag, f"{CONNECT_FUNCTION}\n{body}", *args])


def parse_list(output: str) -> list[str]:
    """The hand-made names in ``ip netns list`` output (``hand (id: 0)``); the CNI's own
    ``cni-<uuid>`` namespaces never fit the name pattern, so they are left out."""
    found = (_LISTED.fullmatch(line.strip()) for line in output.splitlines())
    return sorted(m.group(1) for m in found if m)
