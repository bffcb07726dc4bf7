"""NetworkPolicy semantics as the Kubernetes API defines them, with the reason behind every verdict.

The rooms:

* :mod:`.policies` checks NetworkPolicy dicts and applies the API server's defaults
  (:func:`~.policies.parse_policy`), raising :class:`~.policies.PolicyError` on bad input;
* :mod:`.endpoints` turns Pod dicts (or outside addresses) into the two ends of a flow;
* :mod:`.verdicts` answers one flow (``src -> dst:port/protocol``) and explains it: which policy
  rule allowed it on each side, or which policies isolate the pod with no rule that matches;
* :mod:`.truthtable` answers every pair of a set of pods for a few ports at once, using
  bitmasks (one Python int per row), so 1,000 x 1,000 pairs take a fraction of a second. It
  renders like Cyclonus (rows = from, columns = to, ``.`` allowed, ``X`` blocked).

Semantics, and the choices made where Kubernetes leaves them to the network plugin:

* A pod is *isolated for ingress* when any policy in its namespace selects it and lists
  ``Ingress`` in ``policyTypes``; likewise for egress. A flow needs egress allowed at the source
  **and** ingress allowed at the destination; the allowed set of an isolated pod is the union of
  the rules of every policy that selects it (policies never deny, they only add).
* ``policyTypes`` defaults as the API server does: ``Ingress`` always, plus ``Egress`` when the
  spec has a non-empty ``egress`` list (``egress: []`` without ``policyTypes`` stays ingress-only).
* A rule with an absent or empty ``from``/``to`` matches every peer; an absent or empty ``ports``
  matches every port and protocol. So ``ingress: [{}]`` allows everything, while ``ingress: []``
  (or no ``ingress`` key) with ``Ingress`` in ``policyTypes`` denies everything.
* A peer with only ``podSelector`` means pods of the *policy's* namespace; only
  ``namespaceSelector`` means every pod of the matching namespaces (``{}`` = all namespaces); both
  in one peer means pods matching the pod selector *and* living in a matching namespace, while
  two separate peers are OR-ed. Namespaces always carry ``kubernetes.io/metadata.name``.
* ``ipBlock`` (with ``except``) matches addresses. Kubernetes says it is meant for addresses
  outside the cluster and leaves pod IPs to the plugin; like Calico we match pod IPs by CIDR too.
* Ports: a number (with optional ``endPort`` range), a name, or absent (every port of that
  protocol); protocol TCP (default), UDP or SCTP. A named port resolves against the
  *destination* pod's containerPorts, pod by pod, so it matches nothing at a destination outside
  the cluster (egress to an ``ipBlock`` address with a named port reaches no external host).
* A pod always reaches itself: its own traffic never leaves its network namespace (loopback),
  and Kubernetes documents that policies cannot block it.
* ``hostNetwork`` pods use their node's address: no policy selects them and pod/namespace
  selectors never match them as peers; ``ipBlock`` matches their address like any other.

Invalid input raises ``PolicyError`` (``what`` and ``fix``, like ``labkit.errors.LabError``,
which this layer may not import) before anything is evaluated.
"""
