"""What an offline pack holds for the pinned versions and where each thing lies in it, and the plan
that gathers it (`labkit pack DIR`) as data.

Each image is saved for one platform (`docker image save --platform`): an archive of a whole
multi-platform index holds only the pulled platform's blobs under Docker's containerd image store,
and `kind load` (`ctr images import --all-platforms`) then fails on the first missing digest
(kubernetes-sigs/kind#3795, docker/cli#5476).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from labkit.errors import LabError
from labkit.kind import pins
from labkit.kind.actions import Download, PlanStep, Run
from labkit.values import CNIS

PLATFORMS = ("linux/amd64", "linux/arm64")
MANIFEST = "pack.json"
CHART_DIR = "charts"


@dataclass(frozen=True)
class PackImage:
    """One pinned image: on the host's Docker (node image, containers beside the lab) and/or
    loaded into the nodes (pods' images)."""

    ref: str
    host: bool
    nodes: bool

    @property
    def tag(self) -> str:
        """The reference without its digest: what the archive carries and what is run."""
        return self.ref.split("@", 1)[0]

    @property
    def file(self) -> str:
        """The archive's path inside the pack."""
        return "images/" + self.tag.replace("/", "_").replace(":", "_") + ".tar"


@dataclass(frozen=True)
class PackFile:
    """One downloaded file and its path inside the pack (``sha256`` when upstream's is pinned)."""

    url: str
    file: str
    sha256: str | None = None


def validate_platform(platform: str) -> str:
    """The platform when it is one a pack can hold, else a LabError naming them."""
    if platform not in PLATFORMS:
        raise LabError(
            f"Unknown platform {platform!r} for a pack.",
            f"Use --platform {' or '.join(PLATFORMS)} (the architecture of the Docker engine "
            "that will run the lab).",
        )
    return platform


def validate_cnis(cnis: tuple[str, ...]) -> tuple[str, ...]:
    """The CNIs in canonical order; a LabError for none or an unknown one."""
    unknown = [c for c in cnis if c not in CNIS]
    if unknown or not cnis:
        raise LabError(
            f"A pack is made for {', '.join(CNIS)}; got {', '.join(cnis) or 'none'}.",
            "Use --cni flannel|calico|cilium, or --all.",
        )
    return tuple(c for c in CNIS if c in cnis)


def images(cnis: tuple[str, ...]) -> list[PackImage]:
    """Every image a lab with one of ``cnis`` runs: node image, cloud-provider-kind, agnhost (the
    outside client and the probe pods), and each CNI's pinned images."""
    found = [
        PackImage(pins.NODE_IMAGE, host=True, nodes=False),
        PackImage(pins.CLOUD_PROVIDER_KIND_IMAGE, host=True, nodes=False),
        PackImage(pins.AGNHOST_IMAGE, host=True, nodes=True),
    ]
    for cni in cnis:
        found += [PackImage(ref, host=False, nodes=True) for ref in pins.CNI_IMAGES[cni]]
    return found


def _manifest_file(url: str) -> str:
    return "manifests/" + PurePosixPath(url).name


def files(cnis: tuple[str, ...], arch: str) -> list[PackFile]:
    """Every file a lab with one of ``cnis`` downloads (manifests, Flannel's CNI plugins)."""
    found: list[PackFile] = []
    if "flannel" in cnis:
        tarball = f"cni-plugins-linux-{arch}-{pins.CNI_PLUGINS_VERSION}.tgz"
        found.append(
            PackFile(
                pins.cni_plugins_url(arch), f"cni-plugins/{tarball}", pins.CNI_PLUGINS_SHA256[arch]
            )
        )
        found.append(PackFile(pins.FLANNEL_MANIFEST_URL, _manifest_file(pins.FLANNEL_MANIFEST_URL)))
    if "calico" in cnis:
        found += [
            PackFile(url, _manifest_file(url))
            for url in (pins.CALICO_CRDS_URL, pins.CALICO_OPERATOR_URL)
        ]
    return found


def chart_file() -> str:
    """The Cilium chart's path inside the pack."""
    return f"{CHART_DIR}/{pins.CILIUM_CHART_FILE}"


def required_files(cni: str, arch: str) -> list[str]:
    """Every path a lab with ``cni`` needs in the pack: image archives, downloads, the chart."""
    needed = [i.file for i in images((cni,))] + [f.file for f in files((cni,), arch)]
    return needed + ([chart_file()] if cni == "cilium" else [])


def local_sources(pack: str, cni: str, arch: str) -> dict[str, str]:
    """Manifest URL -> its copy in the pack, for the installers."""
    return {f.url: f"{pack}/{f.file}" for f in files((cni,), arch)}


def pack_steps(pack: str, cnis: tuple[str, ...], platform: str) -> list[PlanStep]:
    """The plan of `labkit pack`: pull and save each image for one platform, download the files,
    `helm pull` the pinned Cilium chart."""
    steps: list[PlanStep] = []
    for image in images(cnis):
        actions = [Run(("docker", "pull", "--platform", platform, image.ref))]
        if image.ref != image.tag:
            actions.append(Run(("docker", "tag", image.ref, image.tag)))
        save = ("docker", "image", "save", "--platform", platform)
        actions.append(Run((*save, "--output", f"{pack}/{image.file}", image.tag)))
        steps.append(PlanStep(f"Save {image.tag} ({platform})", tuple(actions)))
    arch = platform.split("/")[1]
    for f in files(cnis, arch):
        steps.append(
            PlanStep(f"Download {f.file}", (Download(f.url, f"{pack}/{f.file}", f.sha256),))
        )
    if "cilium" in cnis:
        helm = (
            "helm", "pull", "cilium", "--repo", pins.CILIUM_CHART_REPO,
            "--version", pins.CILIUM_VERSION, "--destination", f"{pack}/{CHART_DIR}",
        )  # fmt: skip
        steps.append(PlanStep(f"Pull the Cilium chart {pins.CILIUM_VERSION}", (Run(helm),)))
    return steps
