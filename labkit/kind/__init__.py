"""Kind backend: real Kind clusters with Flannel, Calico or Cilium (see ``labkit.kind.backend``).

Modules: ``pins`` (versions), ``options`` (accepted modes), ``config`` (cluster configs), ``cni``
(installers as data), ``plan`` (the dry-run plan), ``execute`` (carrying it out), ``cluster``
(pytest-kind's KindCluster), ``lab`` (the Lab), ``probe`` (probe commands and their output),
``doctor`` (host checks).
"""
