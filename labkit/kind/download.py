"""Downloading a pinned file: through a ``.part`` file that takes the target's place only once
its SHA-256 matches (the CNI plugins tarball `labkit up` caches, every file `labkit pack` packs)."""

from __future__ import annotations

import hashlib
import shutil
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from labkit.errors import LabError

TIMEOUT_S = 120


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(
    url: str,
    target: Path,
    sha256: str | None,
    again: str,
    opener: Callable[..., Any] = urllib.request.urlopen,
) -> None:
    """Download ``url`` to ``target``; a pinned ``sha256`` that differs removes the download and
    raises. ``again`` is how to retry (e.g. "run `labkit pack` again"), for the LabError's fix."""
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    try:
        with opener(url, timeout=TIMEOUT_S) as response, open(part, "wb") as out:
            shutil.copyfileobj(response, out)
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise LabError(
            f"Could not download {url}: {exc}.",
            f"Check the internet connection (or proxy settings), then {again}.",
        ) from None
    if sha256 and (got := sha256_of(part)) != sha256:
        part.unlink(missing_ok=True)
        raise LabError(
            f"The file downloaded from {url} does not match its pinned SHA-256 (got {got}).",
            f"{again[:1].upper()}{again[1:]}; if it keeps failing, the download is being altered "
            "on the way (proxy) or upstream changed the file: do not use it.",
        )
    part.replace(target)
