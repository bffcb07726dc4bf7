"""CiliumNetworkPolicy (cilium.io/v2), L3/L4, as NetworkPolicy semantics.

* :mod:`.schema` is the JSON schema the API server checks a CiliumNetworkPolicy against (the
  subset of Cilium's CRD the lab knows);
* :mod:`.translate` turns one into NetworkPolicy-shaped documents that :mod:`..netpol` answers,
  so both kinds of policy share one model of who may talk to whom.
"""
