"""Kind backend: real Kind clusters with Flannel, Calico or Cilium (see ``labkit.kind.backend``).

Modules: ``pins`` (versions), ``options`` (accepted modes), ``config`` (cluster configs), ``cni``
(installers as data), ``actions`` and ``plan`` (the dry-run plan), ``execute`` and ``readiness``
(carrying it out), ``cluster`` (pytest-kind's KindCluster), ``detect`` (what an existing cluster
runs), ``objects`` (apply, get and delete through the API), ``lab`` (the Lab: exec, probes,
lookups), ``probe`` (probe commands and their output), ``doctor`` (host checks).
"""
