"""kube-proxy's and CoreDNS's start-up lines on the sandbox (pure): klog's exact header, the
messages kube-proxy prints at default verbosity, and the hash CoreDNS's reload plugin prints,
checked against the values real CoreDNS printed for kubeadm's Corefiles."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from labkit.sandbox.componentlogs import (
    coredns_log,
    coredns_version,
    corefile_sha512,
    klog_line,
    kube_proxy_log,
    server_blocks,
)
from labkit.sandbox.system.addons import COREDNS_IMAGE, COREFILE

BORN = datetime(2026, 12, 6, 12, 50, 2, tzinfo=timezone.utc)
# What CoreDNS 1.9.3 printed for kubeadm's Corefile of the time, and what CoreDNS 1.12.0 to
# 1.14.6 print for kubeadm's current one (the sandbox's: since kubernetes/kubernetes#128359 its
# cache block disables cluster.local), both copied from real pods' logs.
KUBEADM_OLD_SHA512 = (
    "591cf328cccc12bc490481273e738df59329c62c0b729d94e8b61db9961c2fa5f"
    "046dd37f1cf888b953814040d180f52594972691cd6ff41be96639138a43908"
)
KUBEADM_NEW_SHA512 = (
    "1b226df79860026c6a52e67daa10d7f0d57ec5b023288ec00c5e05f93523c894"
    "564e15b91770d3a07ae1cfbe861d15b37d4a0027e69c546ab112970993a3b03b"
)
KUBEADM_NEW_CACHE = (
    "    cache 30 {\n"
    "       disable success cluster.local\n"
    "       disable denial cluster.local\n"
    "    }\n"
)


def test_klog_lines_have_klogs_header_and_quoted_pairs():
    assert klog_line(
        BORN, "server.go:218", "Successfully retrieved NodeIPs", NodeIPs=["a", "b"]
    ) == (
        'I1206 12:50:02.000000       1 server.go:218] "Successfully retrieved NodeIPs" '
        'NodeIPs=["a","b"]'
    )
    later = BORN.replace(month=1, day=2, microsecond=7) + timedelta(hours=1)
    assert klog_line(later, "x.go:1", "m", ipFamily="IPv4") == (
        'I0102 13:50:02.000007       1 x.go:1] "m" ipFamily="IPv4"'
    )


def test_klog_stamps_utc_whatever_the_zone_given():
    paris = BORN.astimezone(timezone(timedelta(hours=1)))
    assert klog_line(paris, "x.go:1", "m").startswith("I1206 12:50:02.000000 ")


def test_kube_proxy_prints_its_node_ips_then_its_mode_at_the_labs_birth():
    assert kube_proxy_log(BORN, ["172.18.0.3"]) == [
        'I1206 12:50:02.000000       1 server.go:218] "Successfully retrieved NodeIPs" '
        'NodeIPs=["172.18.0.3"]',
        'I1206 12:50:02.000000       1 server_linux.go:136] "Using iptables Proxier"',
    ]


def test_the_reload_hash_is_the_one_coredns_prints_for_the_same_corefile():
    assert corefile_sha512(COREFILE) == KUBEADM_NEW_SHA512
    old = COREFILE.replace(KUBEADM_NEW_CACHE, "    cache 30\n")
    assert corefile_sha512(old) == KUBEADM_OLD_SHA512


def test_server_blocks_group_tokens_by_directive_with_nested_blocks():
    blocks = server_blocks(".:53 {\n    errors\n    health {\n       lameduck 5s\n    }\n}\n")
    assert blocks == [
        {
            "Keys": [".:53"],
            "Tokens": {
                "errors": [{"File": "", "Line": 2, "Text": "errors"}],
                "health": [
                    {"File": "", "Line": 3, "Text": "health"},
                    {"File": "", "Line": 3, "Text": "{"},
                    {"File": "", "Line": 4, "Text": "lameduck"},
                    {"File": "", "Line": 4, "Text": "5s"},
                    {"File": "", "Line": 5, "Text": "}"},
                ],
            },
        }
    ]


@pytest.mark.parametrize(
    "text", ['. {\n  hosts "x"\n}\n', ". {\n  log # q\n}\n", ". {\n import a\n}\n"]
)
def test_a_corefile_this_parser_cannot_read_is_refused_not_misread(text):
    with pytest.raises(ValueError):
        corefile_sha512(text)


def test_coredns_prints_its_block_hash_and_version_after_the_server_started():
    assert coredns_version(COREDNS_IMAGE) == "CoreDNS-1.14.2"
    assert coredns_log([".:53"], COREFILE, COREDNS_IMAGE) == [
        ".:53",
        f"[INFO] plugin/reload: Running configuration SHA512 = {KUBEADM_NEW_SHA512}",
        "CoreDNS-1.14.2",
    ]
    assert coredns_log([], COREFILE, COREDNS_IMAGE) == []


def test_without_the_reload_plugin_there_is_no_hash_line():
    assert coredns_log([".:53", "later"], ".:53 {\n    errors\n}\n", "coredns:v1.2.3") == [
        ".:53",
        "CoreDNS-1.2.3",
        "later",
    ]
