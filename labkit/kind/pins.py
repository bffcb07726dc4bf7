"""Pinned versions, images, URLs and checksums of everything the Kind backend installs.

Read from upstream release notes and manifests (late 2026); bump them together and re-check
these facts when you do:
- kind v0.32.0, node image `kindest/node:v1.36.1` pinned by digest; kubeadm v1beta4, so
  `kubeadmConfigPatches` stay unversioned. Defaults: podSubnet 10.244.0.0/16, serviceSubnet
  10.96.0.0/16; `disableDefaultCNI: true` leaves nodes NotReady until a CNI runs.
- Flannel v0.28.9 needs the full CNI plugin set (kind ships no `bridge`) and br_netfilter; it
  does not enforce NetworkPolicy.
- Calico v3.32.1 through tigera-operator: `kubectl create` (not `apply`) the CRDs, the operator,
  then custom resources whose pool matches kind's podSubnet; ready when every `tigerastatus` is
  Available.
- Cilium 1.20.0 through Helm (`ipam.mode=kubernetes`; with kube-proxy mode `none`,
  `kubeProxyReplacement=true` and the API server's host and port).
- ingress-nginx is retired (March 2026): Ingress uses a maintained controller
  (cloud-provider-kind's). Multi-node Kind needs raised inotify limits; `labkit doctor` checks.
- cloud-provider-kind v0.11.1 (its image since v0.4.0 is on registry.k8s.io): one instance
  watches every Kind cluster on the host (it lists them every 30 s), gives LoadBalancer Services
  an Envoy container each (status ipMode: Proxy, Envoy dialling the nodes' nodePorts) and serves
  Ingresses of its IngressClass `cloud-provider-kind` (the default class) through a Gateway.
- Each CNI's images (what `labkit pack` saves): kube-flannel.yml at v0.28.9 (flannel and
  flannel-cni-plugin); Calico v3.32.1's tigera-operator.yaml runs operator v1.42.3, whose
  pkg/components/calico.go pins the v3.32.1 images on quay.io (images.go CalicoRegistry); with
  the v1 CRDs it runs the aggregated apiserver, not the webhooks; Cilium chart 1.20.0 renders
  the agent, operator-generic and the Envoy DaemonSet, each by tag and digest.
"""

from __future__ import annotations

KIND_VERSION = "v0.32.0"
KIND_MIN_VERSION = (0, 32, 0)

NODE_IMAGE = (
    "kindest/node:v1.36.1@sha256:3489c7674813ba5d8b1a9977baea8a6e553784dab7b84759d1014dbd78f7ebd5"
)
"""kind v0.32.0's default node image; its release notes require pinning by this digest."""

KUBERNETES_MINOR = 36

FLANNEL_VERSION = "v0.28.9"
FLANNEL_MANIFEST_URL = f"https://raw.githubusercontent.com/flannel-io/flannel/{FLANNEL_VERSION}/Documentation/kube-flannel.yml"

CNI_PLUGINS_VERSION = "v1.9.1"
CNI_PLUGINS_SHA256 = {
    "amd64": "b98f74a0f8522f0a83867178729c1aa70f2158f90c45a2ca8fa791db1c76b303",
    "arm64": "56171987d3947707c3563db2f4001bccaf50fd63468611b9f3cbecb1375ee7ec",
}
"""Checksums of cni-plugins-linux-<arch>-v1.9.1.tgz, as pinned by Flannel's own kind e2e suite."""


def cni_plugins_url(arch: str) -> str:
    """Release tarball of the containernetworking plugins for one CPU architecture."""
    return (
        "https://github.com/containernetworking/plugins/releases/download/"
        f"{CNI_PLUGINS_VERSION}/cni-plugins-linux-{arch}-{CNI_PLUGINS_VERSION}.tgz"
    )


CALICO_VERSION = "v3.32.1"
_CALICO_BASE = f"https://raw.githubusercontent.com/projectcalico/calico/{CALICO_VERSION}/manifests"
CALICO_CRDS_URL = f"{_CALICO_BASE}/v1_crd_projectcalico_org.yaml"
CALICO_OPERATOR_URL = f"{_CALICO_BASE}/tigera-operator.yaml"
CALICO_CUSTOM_RESOURCES_URL = f"{_CALICO_BASE}/custom-resources.yaml"
"""Upstream's example resources; labkit renders its own copy with the pool CIDR set from
podSubnet."""

CILIUM_VERSION = "1.20.0"
CILIUM_CHART_REPO = "https://helm.cilium.io/"

CLOUD_PROVIDER_KIND_VERSION = "v0.11.1"
CLOUD_PROVIDER_KIND_IMAGE = (
    f"registry.k8s.io/cloud-provider-kind/cloud-controller-manager:{CLOUD_PROVIDER_KIND_VERSION}"
)
"""The container its README documents (`docker run --network kind -v /var/run/docker.sock:...`)."""
CLOUD_PROVIDER_KIND_INGRESS_CLASS = "cloud-provider-kind"
"""The IngressClass it creates and serves (pkg/ingress/controller.go, IngressClassName)."""

AGNHOST_IMAGE = "registry.k8s.io/e2e-test-images/agnhost:2.66.1"
"""Probe image: curl, dig, bash, and `agnhost connect` (prints TIMEOUT / REFUSED / DNS)."""


# --------------------------------------------------------------------------- images (labkit pack)

FLANNEL_IMAGES = (
    f"ghcr.io/flannel-io/flannel:{FLANNEL_VERSION}",
    "ghcr.io/flannel-io/flannel-cni-plugin:v1.9.1-flannel3",
)
"""The images kube-flannel.yml at the pinned tag runs (the DaemonSet and its install-cni-plugin
init container)."""

TIGERA_OPERATOR_IMAGE = "quay.io/tigera/operator:v1.42.3"
"""The operator tigera-operator.yaml of Calico v3.32.1 deploys."""
CALICO_COMPONENT_IMAGES = (
    "node", "cni", "pod2daemon-flexvol", "kube-controllers", "typha", "apiserver", "goldmane",
    "whisker", "whisker-backend", "csi", "node-driver-registrar",
)  # fmt: skip
"""The quay.io/calico images the operator runs for the Installation, APIServer, Goldmane and
Whisker resources labkit creates (what `operator --print-images=list` lists for Calico OSS)."""
CALICO_IMAGES = (
    TIGERA_OPERATOR_IMAGE,
    *(f"quay.io/calico/{name}:{CALICO_VERSION}" for name in CALICO_COMPONENT_IMAGES),
)

CILIUM_IMAGES = (
    "quay.io/cilium/cilium:v1.20.0"
    "@sha256:383968cd5e8873f7976fa76aa6196045643558f4cc9518a207b9335cb24a0e93",
    "quay.io/cilium/operator-generic:v1.20.0"
    "@sha256:80744a8cc7c91c2f9e6347629406844eb35d79b30a732c6d41c15b17232a74f3",
    "quay.io/cilium/cilium-envoy:v1.37.5-1782911245-7cffc778c923f68a77954a53b1a98d6b5353f004"
    "@sha256:583057dd4f7d54cd41efff3c413aa0b148ac201f522e2c3336851fa89c78b039",
)
"""The agent, the generic operator and the Envoy DaemonSet (envoy.enabled defaults to true) of
chart 1.20.0's values.yaml (image, operator.image, envoy.image), as its release notes list them."""
CILIUM_CHART_FILE = f"cilium-{CILIUM_VERSION}.tgz"
"""The file `helm pull cilium --repo ... --version` writes."""

CNI_IMAGES = {"flannel": FLANNEL_IMAGES, "calico": CALICO_IMAGES, "cilium": CILIUM_IMAGES}
"""Every image a CNI's pods run, per CNI: what `labkit pack` saves and `up --pack` loads."""
