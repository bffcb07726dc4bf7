"""Cluster DNS as Kubernetes defines it: the records a cluster serves and how a pod's resolver
asks. Pure, no I/O; one room per piece:

* :mod:`.names`: DNS names as the records spell them (``fqdn``, ``reverse_name``, ``dashed``);
* :mod:`.poddns`: ``pod_resolv_conf``, the resolv.conf kubelet writes for a pod's
  ``dnsPolicy`` and ``dnsConfig`` (its merge rules and limits);
* :mod:`.resolver`, the pod side: ``parse_resolv_conf`` (how glibc reads it) and ``query_order``
  (the names glibc's stub resolver tries, in order, for one lookup);
* :mod:`.records`, the server's data: ``records`` turns Services, EndpointSlices and Pods into
  the resource records of the Kubernetes DNS specification (github.com/kubernetes/dns,
  docs/specification.md, schema 1.1.0 as CoreDNS serves it);
* :mod:`.lookup`, the server's answers: ``RecordIndex.lookup`` answers one question as CoreDNS's
  kubernetes plugin does (NXDOMAIN vs NODATA as its parser decides, CNAME chasing, matching
  case-insensitively, owners spelled as asked), and ``explain_lookup`` replays every query the
  resolver makes for a name, so a check can show a learner why ``my-svc`` resolved (or did not)
  and how many queries it took;
* :mod:`.loadbalance`, CoreDNS's loadbalance plugin: ``shuffle_answer`` reorders a reply's
  addresses with an injected random source.

Names in records are lowercase, fully qualified, with a trailing dot. Bad input raises
``ValueError`` with a sentence saying what is wrong (this package may not import
``labkit.errors``).
"""
