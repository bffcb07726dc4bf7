"""Kind backend: real Kind clusters with Flannel, Calico or Cilium (see ``labkit.kind.backend``).

Modules: ``pins`` (versions), ``options`` (accepted modes), ``config`` (cluster configs), ``cni``
(installers as data), ``actions`` and ``plan`` (the dry-run plan), ``execute``, ``exits`` and
``readiness`` (carrying it out, removing a half-built cluster on every way out), ``cluster`` (the
one module that drives the kind CLI), ``detect`` (what an existing cluster runs), ``objects`` and
``crds`` (apply, get and delete through the API), ``lab`` (the Lab: exec, probes, lookups),
``probe`` (probe commands and their output), ``doctor`` (host checks).
"""
