"""The sandbox backend: a Kubernetes-shaped data plane built from real Linux network namespaces.

Nodes, pods, the underlay switch and an "outside" client are named namespaces (``lk-<lab>-*``);
Flannel (bridge + VXLAN) or Calico (routed veths, enforced policy) connect the pods; kube-proxy's
iptables rules, cluster DNS and an agent that serves every pod's ports make it behave like a
Kind cluster. Entry points live in ``labkit.sandbox.backend`` (up, attach, down, names).
"""
