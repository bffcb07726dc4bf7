"""Carry out `labkit pack DIR`: run the pack plan (docker pull/save, downloads, helm pull), read
each image's digest, and write pack.json. Needs Docker and the network; tests fake both."""

from __future__ import annotations

import subprocess
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from labkit.errors import LabError
from labkit.kind import pack as contents
from labkit.kind import packfile, tools
from labkit.kind.actions import Download, Run
from labkit.kind.download import download

Runner = Callable[..., subprocess.CompletedProcess[str]]
PACK_TIMEOUT_S = 1800.0
"""One `docker pull` of the ~1 GB node image on a slow link."""


def make_pack(
    folder: Path,
    cnis: Sequence[str],
    platform: str,
    *,
    run: Runner = tools.run,
    opener: Callable[..., Any] = urllib.request.urlopen,
    say: Callable[[str], None] = lambda line: None,
) -> dict[str, Any]:
    """Gather a pack for ``cnis`` on ``platform`` into ``folder`` and write its pack.json."""
    chosen = contents.validate_cnis(tuple(cnis))
    contents.validate_platform(platform)
    packfile.validate_dir(folder)
    previous = packfile.read(folder)
    if previous is not None and previous.get("platform") != platform:
        raise LabError(
            f"{folder} is a pack for {previous.get('platform')}, not {platform}.",
            "Name another folder for the other platform.",
        )
    for sub in ("images", "manifests", "cni-plugins", contents.CHART_DIR):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for step in contents.pack_steps(str(folder), chosen, platform):
        say(step.title)
        for action in step.actions:
            if isinstance(action, Download):
                download(
                    action.url, Path(action.path), action.sha256, "run `labkit pack` again", opener
                )
            elif isinstance(action, Run):
                run(list(action.argv), timeout=PACK_TIMEOUT_S)
    digests = {}
    for image in contents.images(chosen):
        proc = run(["docker", "image", "inspect", "--format", "{{.Id}}", image.tag], timeout=120)
        digests[image.tag] = proc.stdout.strip()
    return packfile.write(folder, platform, chosen, digests, previous)
