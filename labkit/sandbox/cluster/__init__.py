"""The sandbox's pure cluster state: what an API server and its controllers would make of it.

Nothing here touches the system; ``labkit.sandbox.store.ClusterStore`` is the front door.
- ``world``: the state dict and its accessors; small hashing and naming helpers
- ``admission``, ``service_admission``: what the API server checks and defaults on apply
- ``podspecs``: the pod spec defaults the API server and admission fill in
- ``reconcile``: the controller loop, in dependency order
- ``workload_controllers``: Deployments, ReplicaSets, DaemonSets, StatefulSets, garbage collector
- ``scheduling``: node filters (taints, affinity, host ports) and binding
- ``allocation``: ClusterIPs, NodePorts, pod IPs (IPAM), LoadBalancer IPs
- ``endpoints``: Endpoints and EndpointSlices
- ``statuses``: what kubelets and controllers write back into status
"""
