"""The agent's per-pod log (pure): agnhost netexec's lines for UDP requests (HTTP's are in
test_agnhost_netexec.py), Go's date stamp, the bound on lines per pod, and forgetting deleted
pods."""

from __future__ import annotations

from labkit.sandbox.agent.netexec import netexec_udp_log
from labkit.sandbox.agent.podlog import LINES_PER_POD, PodLogs, go_log_stamp


def test_udp_datagrams_are_logged_as_agnhost_netexec_logs_them():
    peer = ("10.244.1.5", 40000)
    assert netexec_udp_log(b"hostname\n", peer) == "Sending udp hostName response"
    assert netexec_udp_log(b"echo Hi", peer) == "Echoing hi to UDP client 10.244.1.5:40000"
    assert (
        netexec_udp_log(b"clientip", peer) == "Sending clientip back to UDP client 10.244.1.5:40000"
    )
    assert (
        netexec_udp_log(b"what", peer) == "Unknown UDP command received from 10.244.1.5:40000: what"
    )
    assert netexec_udp_log(b"  ", peer) is None


def test_lines_carry_gos_stamp_and_each_pod_keeps_a_bounded_log():
    assert go_log_stamp(0) == "1970/01/01 00:00:00"
    logs = PodLogs(clock=lambda: 86400.0)
    logs.record("demo/web", ".:53", stamped=False)
    for i in range(LINES_PER_POD + 5):
        logs.recorder("demo/web")(f"GET /{i}")
    lines = logs.lines("demo/web")
    assert len(lines) == LINES_PER_POD
    assert lines[0] == "1970/01/02 00:00:00 GET /5" and lines[-1].endswith(
        f"GET /{LINES_PER_POD + 4}"
    )
    assert logs.lines("demo/other") == []


def test_a_deleted_pod_is_forgotten():
    logs = PodLogs(clock=lambda: 0.0)
    logs.record("demo/a", "x")
    logs.record("demo/b", "y")
    logs.keep_only(["demo/b"])
    assert logs.lines("demo/a") == [] and logs.lines("demo/b") == ["1970/01/01 00:00:00 y"]
