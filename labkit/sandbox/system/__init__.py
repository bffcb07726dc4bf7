"""The system objects of a fresh Kind cluster, one module per family: ``core`` (namespaces, the
``kubernetes`` Service, shared builders), ``control_plane`` (static pods, kube-proxy), ``cni``
(Flannel or Calico) and ``addons`` (CoreDNS, the ingress controller).
``labkit.sandbox.bootstrap.system_manifests`` lists them all in creation order."""
