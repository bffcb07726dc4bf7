"""kube-proxy's iptables mode, read back: ``iptables-save`` text -> service ports and endpoints.

kube-proxy (iptables mode) writes one chain family per service port: ``KUBE-SERVICES`` matches
the cluster IP (and load balancer / external IPs) and jumps to ``KUBE-SVC-<hash>`` (or
``KUBE-SVL-<hash>`` for a Local internal policy); ``KUBE-NODEPORTS`` and load balancer IPs go
through ``KUBE-EXT-<hash>`` (and ``KUBE-FW-<hash>`` with source ranges); the service chain picks
a ``KUBE-SEP-<hash>`` with chained ``-m statistic --probability`` rules; each ``KUBE-SEP`` DNATs
to one pod. A service port without endpoints only gets a REJECT rule in the filter table.

The rooms: :mod:`.chains` names chains the way kube-proxy does (so the sandbox's renderer can
share the names); :mod:`.iptables` splits ``iptables-save`` text (a whole dump, one table, or
the lines ``grep`` kept) into rules; :mod:`.assemble` follows the chains into
:class:`~.serviceports.ServicePort` objects; :mod:`.serviceports` holds those results and
formats a short table for people. Stdlib only, no I/O.
"""
