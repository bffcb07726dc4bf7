"""Probes on Kind: what runs inside a pod's network namespace, and how its output is read.

A probe from a pod runs in a long-lived ephemeral container (agnhost) added to that pod: it
shares the pod's network namespace and resolv.conf, so it sees exactly what the pod sees,
whatever the pod's own image contains. `agnhost connect` classifies the connection (it prints
TIMEOUT / REFUSED / DNS / OTHER); then curl asks the server for /hostname and /clientip on one
keep-alive connection (UDP: datagrams "hostname" and "clientip" from one socket); an answer
other than 200 is kept as the probe's HTTP status, so a 403 from Cilium's proxy reads as the
sandbox's does.
A probe from OUTSIDE runs the same script with `docker exec` in the lab's outside container on
the kind network (`labkit.kind.hostcontainers`).
"""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass
from typing import Any, NamedTuple

from labkit.kind import pins
from labkit.model.ciliuml7 import refusal_words

PROBE_CONTAINER = "labkit-probe"
DIG_TIMEOUT_S = 2

PROBE_SCRIPT = r"""
dst=$1 port=$2 t=$3 tint=$4 maxt=$5 proto=$6
agn=${AGNHOST:-/agnhost}
case $dst in *:*) hp="[$dst]:$port" ;; *) hp="$dst:$port" ;; esac
if [ "$proto" = UDP ]; then
  msg=$("$agn" connect --protocol=udp --udp-data=hostname --timeout="${t}s" "$hp" 2>&1); rc=$?
  printf '@@CONNECT %s %s\n' "$rc" "$(printf %s "$msg" | tr '\n' ' ')"
  [ "$rc" -eq 0 ] || exit 0
  exec 3<>"/dev/udp/$dst/$port" || exit 0
  s=$EPOCHREALTIME
  printf hostname >&3
  h=$(timeout "$tint" dd bs=65535 count=1 <&3 2>/dev/null | tr '\n' ' ')
  e=$EPOCHREALTIME
  printf clientip >&3
  c=$(timeout "$tint" dd bs=65535 count=1 <&3 2>/dev/null | tr '\n' ' ')
  printf '@@UDP %s %s\n@@HOSTNAME %s\n@@CLIENTIP %s\n' "$s" "$e" "$h" "$c"
else
  msg=$("$agn" connect --timeout="${t}s" "$hp" 2>&1); rc=$?
  printf '@@CONNECT %s %s\n' "$rc" "$(printf %s "$msg" | tr '\n' ' ')"
  [ "$rc" -eq 0 ] || exit 0
  curl -sS --noproxy '*' --fail-early --connect-timeout "$t" --max-time "$maxt" \
    -w '\n@@HTTP %{exitcode} %{time_connect} %{http_code}\n' \
    "http://$hp/hostname" "http://$hp/clientip" 2>&1
fi
exit 0
""".strip()


REQUEST_SCRIPT = r"""
dst=$1 port=$2 t=$3 maxt=$4 method=$5 path=$6
agn=${AGNHOST:-/agnhost}
case $dst in *:*) hp="[$dst]:$port" ;; *) hp="$dst:$port" ;; esac
msg=$("$agn" connect --timeout="${t}s" "$hp" 2>&1); rc=$?
printf '@@CONNECT %s %s\n' "$rc" "$(printf %s "$msg" | tr '\n' ' ')"
[ "$rc" -eq 0 ] || exit 0
curl -sS -g --noproxy '*' --connect-timeout "$t" --max-time "$maxt" -X "$method" \
  -w '\n@@HTTP %{exitcode} %{time_connect} %{http_code}\n' "http://$hp$path" 2>&1
exit 0
""".strip()
"""One request with a method and path of the caller's choosing: `agnhost connect` classifies the
connection as the probe does, then curl sends the request and prints the status it got."""


@dataclass(frozen=True)
class Reading:
    """The part of a Probe that comes from running it: outcome, latency, who answered, what it
    saw."""

    outcome: str
    latency_s: float | None = None
    served_by: str | None = None
    client_ip: str | None = None
    detail: str = ""
    http_status: int | None = None


# --------------------------------------------------------------------------- the probe container


def ephemeral_container() -> dict[str, Any]:
    """The ephemeral container labkit adds once to a source pod (agnhost idling with `pause`)."""
    return {
        "name": PROBE_CONTAINER,
        "image": pins.AGNHOST_IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "args": ["pause"],
        "stdin": False,
        "tty": False,
    }


def ephemeral_patch() -> dict[str, Any]:
    """Strategic-merge patch for the pod's ephemeralcontainers subresource."""
    return {"spec": {"ephemeralContainers": [ephemeral_container()]}}


def probe_container_state(pod: dict[str, Any]) -> str:
    """``absent``, ``running``, ``waiting: <reason>`` or ``terminated: <reason>`` for the probe
    container."""
    names = [c.get("name") for c in (pod.get("spec") or {}).get("ephemeralContainers") or []]
    if PROBE_CONTAINER not in names:
        return "absent"
    for st in (pod.get("status") or {}).get("ephemeralContainerStatuses") or []:
        if st.get("name") != PROBE_CONTAINER:
            continue
        state = st.get("state") or {}
        if "running" in state:
            return "running"
        if "terminated" in state:
            return f"terminated: {state['terminated'].get('reason') or 'exited'}"
        if "waiting" in state:
            return f"waiting: {state['waiting'].get('reason') or 'starting'}"
    return "waiting: not started yet"


# --------------------------------------------------------------------------- commands


def probe_command(dst: str, port: int, protocol: str = "TCP", timeout: float = 1.0) -> list[str]:
    """argv run in the probe container: bash with the probe script and its arguments."""
    protocol = protocol.upper()
    if protocol not in ("TCP", "UDP"):
        raise ValueError(f"protocol must be TCP or UDP, not {protocol!r}")
    t = f"{timeout:g}"
    whole = f"{2 * timeout + 2:g}"
    return [
        "bash",
        "-c",
        PROBE_SCRIPT,
        "labkit-probe",
        dst,
        str(int(port)),
        t,
        str(max(1, math.ceil(timeout))),
        whole,
        protocol,
    ]


def request_command(dst: str, port: int, method: str, path: str, timeout: float) -> list[str]:
    """argv run in the probe container for one HTTP request (``method`` and ``path`` already
    checked by ``labkit.inputs.check_http_request``: they are arguments, never options)."""
    return [
        "bash",
        "-c",
        REQUEST_SCRIPT,
        "labkit-request",
        dst,
        str(int(port)),
        f"{timeout:g}",
        f"{timeout + 1:g}",
        method,
        path,
    ]


def resolve_command(name: str, rtype: str = "A") -> list[str]:
    """argv for a lookup through the pod's resolver (search list and ndots from its resolv.conf);
    ``-q`` makes the name a query even if it began with '-'."""
    return [
        "dig",
        "+search",
        "+short",
        f"+time={DIG_TIMEOUT_S}",
        "+tries=1",
        "-t",
        rtype.upper(),
        "-q",
        name,
    ]


# --------------------------------------------------------------------------- reading output


def classify_connect(message: str) -> str:
    """Outcome from `agnhost connect`'s error prefix (TIMEOUT, REFUSED, DNS, OTHER, UNKNOWN)."""
    text = message.strip()
    low = text.lower()
    if text.startswith("TIMEOUT"):
        return "timeout"
    if text.startswith("REFUSED"):
        return "refused"
    if text.startswith("DNS"):
        return "dns"
    if any(s in low for s in ("no route to host", "network is unreachable", "host is unreachable")):
        return "unreachable"
    if "connection refused" in low:
        return "refused"
    if "i/o timeout" in low or "timed out" in low:
        return "timeout"
    return "error"


def client_host(answer: str) -> str | None:
    """The IP in a /clientip answer (``10.244.1.5:41234`` or ``[fd00::5]:41234``); None if it is not
    one."""
    text = answer.strip()
    host = text.rsplit(":", 1)[0].strip("[]") if ":" in text else text
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def hostname_answer(body: str) -> str | None:
    """A /hostname answer is one token (a pod name); anything else is some other server's page."""
    text = body.strip()
    return text if text and len(text.split()) == 1 and len(text) <= 253 else None


_CONNECT = re.compile(r"^@@CONNECT (\d+) ?(.*)$", re.M)
_HTTP = re.compile(r"\n?@@HTTP (\d+) ([0-9.]+) (\d{3})\n?")


def parse_probe_output(text: str, protocol: str = "TCP") -> Reading:
    """Read what the probe script printed into an outcome and the server's answers."""
    match = _CONNECT.search(text)
    if not match:
        first = (text.strip().splitlines() or ["the probe printed nothing"])[0]
        return Reading("error", detail=f"probe did not run: {first}")
    if int(match.group(1)) != 0:
        message = match.group(2).strip()
        return Reading(classify_connect(message), detail=message)
    rest = text[match.end() :]
    if protocol.upper() == "UDP":
        return _parse_udp(rest)
    return _parse_tcp(rest)


class Transfer(NamedTuple):
    """One of curl's HTTP exchanges: the body, then what its ``-w`` line reported."""

    body: str
    curl_exit: int
    connect_s: float
    http_status: str


def _parse_tcp(rest: str) -> Reading:
    parts = _HTTP.split(rest.lstrip("\n"))
    transfers = [
        Transfer(parts[i], int(parts[i + 1]), float(parts[i + 2]), parts[i + 3])
        for i in range(0, len(parts) - 3, 4)
    ]
    if not transfers:
        return Reading(
            "connected", detail="connected; no HTTP exchange was recorded: " + rest.strip()[:200]
        )
    hostname, *others = transfers
    latency = hostname.connect_s if hostname.connect_s > 0 else None
    served_by = hostname_answer(hostname.body) if hostname.http_status == "200" else None
    client_ip = None
    if others and others[0].http_status == "200":
        client_ip = client_host(others[0].body)
    code = hostname.curl_exit
    if code == 0 and hostname.http_status not in ("200", "000"):
        status = int(hostname.http_status)
        words = refusal_words("/hostname", status, hostname.body)
        return Reading("connected", latency, None, None, f"connected; {words}", status)
    detail = "" if code == 0 else f"connected; the server did not answer HTTP (curl exit {code})"
    return Reading("connected", latency, served_by, client_ip, detail)


def _parse_udp(rest: str) -> Reading:
    fields = {}
    for line in rest.splitlines():
        if line.startswith("@@"):
            key, _, value = line[2:].partition(" ")
            fields[key] = value
    latency = None
    try:
        start, end = (float(x) for x in fields.get("UDP", "").split())
        latency = max(0.0, end - start)
    except ValueError:
        pass
    served_by = hostname_answer(fields.get("HOSTNAME", ""))
    client_ip = (
        client_host(fields.get("CLIENTIP", "")) if fields.get("CLIENTIP", "").strip() else None
    )
    detail = "" if served_by else "connected; the server did not answer the hostname datagram"
    return Reading("connected", latency, served_by, client_ip, detail)


_IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")


def parse_dig(output: str, rtype: str = "A") -> list[str]:
    """Answers from `dig +short`: addresses for A/AAAA (CNAME hops dropped), every line
    otherwise."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip() and not ln.startswith(";")]
    rtype = rtype.upper()
    if rtype == "A":
        return [ln for ln in lines if _IPV4.match(ln)]
    if rtype == "AAAA":
        return [ln for ln in lines if ":" in ln and not ln.endswith(".")]
    return lines


def dig_failed(output: str, returncode: int) -> bool:
    """Whether dig reached no DNS server at all (as opposed to a name that does not exist)."""
    return (
        returncode == 9
        or "no servers could be reached" in output
        or "connection timed out" in output
    )


class RequestReading(NamedTuple):
    """What the request script printed, read: the connection's end, the status and the body
    (None and "" when no answer came), and words for anything unusual."""

    outcome: str
    status: int | None = None
    body: str = ""
    detail: str = ""


def parse_request_output(text: str) -> RequestReading:
    """Read the request script's output: `agnhost connect`'s verdict, then curl's answer (status
    000 means the connection was made but nothing answered in time)."""
    match = _CONNECT.search(text)
    if not match:
        first = (text.strip().splitlines() or ["the request printed nothing"])[0]
        return RequestReading("error", detail=f"request did not run: {first}")
    if int(match.group(1)) != 0:
        message = match.group(2).strip()
        return RequestReading(classify_connect(message), detail=message)
    parts = _HTTP.split(text[match.end() :].lstrip("\n"))
    if len(parts) < 5:
        return RequestReading("connected", detail="connected; curl reported no answer")
    body, curl_exit, code = parts[0].strip(), int(parts[1]), parts[3]
    if code == "000":
        return RequestReading(
            "connected", detail=f"connected; no HTTP answer (curl exit {curl_exit})"
        )
    return RequestReading("connected", int(code), body)
