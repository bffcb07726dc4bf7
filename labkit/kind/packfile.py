"""An offline pack's folder and its pack.json: every file with its sha256, every image with its
digest and platform; checked before `labkit up --pack` changes anything."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from labkit.errors import LabError
from labkit.kind import pack as contents
from labkit.kind.download import sha256_of

FORMAT = 1


def _repack_fix(folder: Path, cni: str, platform: str) -> str:
    return (
        f"On a connected machine run `labkit pack {folder} --cni {cni} --platform {platform}`, "
        "then copy the whole folder here."
    )


def validate_dir(folder: Path) -> Path:
    """The folder `labkit pack` writes into: new, empty, or an existing pack (never another
    folder's files)."""
    if folder.exists() and not folder.is_dir():
        raise LabError(f"{folder} is a file, not a folder.", "Name a new or empty folder.")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / contents.MANIFEST).is_file():
        raise LabError(
            f"{folder} holds other files and no {contents.MANIFEST}.",
            "Name a new or empty folder (or an existing pack, to add to it).",
        )
    return folder


def write(
    folder: Path,
    platform: str,
    cnis: tuple[str, ...],
    image_digests: dict[str, str],
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write pack.json from what lies in ``folder``, keeping a previous pack's entries (the caller
    has checked it is for the same platform); returns it."""
    files = {f["path"]: f for f in (previous or {}).get("files", [])}
    image_entries = {i["tag"]: i for i in (previous or {}).get("images", [])}
    arch = platform.split("/")[1]
    for image in contents.images(cnis):
        image_entries[image.tag] = {
            "ref": image.ref,
            "tag": image.tag,
            "file": image.file,
            "platform": platform,
            "digest": image_digests[image.tag],
        }
    paths = [i.file for i in contents.images(cnis)] + [f.file for f in contents.files(cnis, arch)]
    if "cilium" in cnis:
        paths.append(contents.chart_file())
    for path in paths:
        files[path] = {"path": path, "sha256": sha256_of(folder / path)}
    data = {
        "format": FORMAT,
        "platform": platform,
        "cnis": sorted(set(cnis) | set((previous or {}).get("cnis", []))),
        "files": sorted(files.values(), key=lambda f: f["path"]),
        "images": sorted(image_entries.values(), key=lambda i: i["tag"]),
    }
    (folder / contents.MANIFEST).write_text(json.dumps(data, indent=2) + "\n")
    return data


def read(folder: Path) -> dict[str, Any] | None:
    """A pack's pack.json, or None when the folder has none or it is not a pack manifest."""
    try:
        data = json.loads((folder / contents.MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == FORMAT else None


def check(folder: Path, cni: str, platform: str) -> None:
    """Refuse a pack that lacks anything a ``cni`` lab on ``platform`` needs: pack.json, an image
    for this platform, a file, or a file whose sha256 differs."""
    fix = _repack_fix(folder, cni, platform)
    data = read(folder)
    if data is None:
        raise LabError(f"{folder} has no readable {contents.MANIFEST}, so it is no pack.", fix)
    if data.get("platform") != platform:
        raise LabError(
            f"The pack in {folder} is for {data.get('platform')}, and Docker here runs {platform}.",
            fix,
        )
    listed_images = {i.get("tag"): i for i in data.get("images", []) if isinstance(i, dict)}
    for image in contents.images((cni,)):
        entry = listed_images.get(image.tag)
        if entry is None or entry.get("platform") != platform or not entry.get("digest"):
            raise LabError(f"The pack in {folder} lacks image {image.tag} for {platform}.", fix)
    listed_files = {
        f.get("path"): f.get("sha256") for f in data.get("files", []) if isinstance(f, dict)
    }
    arch = platform.split("/")[1]
    for path in contents.required_files(cni, arch):
        if path not in listed_files or not (folder / path).is_file():
            raise LabError(f"The pack in {folder} lacks {path}.", fix)
        if sha256_of(folder / path) != listed_files[path]:
            raise LabError(
                f"{folder / path} does not match the sha256 in {contents.MANIFEST} (damaged or "
                "changed since it was packed).",
                fix,
            )
