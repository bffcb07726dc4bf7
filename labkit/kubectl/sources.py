"""What ``-f`` names, read as kubectl reads it: a file, a folder (its ``.json``, ``.yaml`` and
``.yml`` files in lexical order, sub-folders skipped), or ``-`` for stdin. Only the paths the
learner typed are opened; each document keeps its source for kubectl's ``error when creating
"x.yaml"`` lines."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit import apirules, manifests
from labkit.errors import LabError
from labkit.kubectl.flags import KubectlError

EXTENSIONS = (".json", ".yaml", ".yml")
STDIN = "STDIN"
_NOT_YAML = "the manifest text is not valid YAML: "


@dataclass(frozen=True)
class Document:
    """One object read from ``source`` (a path as kubectl names it, or ``STDIN``)."""

    source: str
    doc: dict[str, Any]


def files(typed: str) -> list[str]:
    """The files ``-f typed`` stands for (``-`` for stdin), as kubectl names them."""
    if typed == "-":
        return [STDIN]
    if "://" in typed:
        raise KubectlError(
            f"error: labkit kubectl on the sandbox reads -f from files, folders and - (stdin), "
            f"not URLs such as {typed!r}; download it first, then pass the file"
        )
    path = Path(typed)
    if not path.exists():
        raise KubectlError(f'error: the path "{typed}" does not exist')
    if not path.is_dir():
        return [typed]
    found = sorted(p.name for p in path.iterdir() if p.is_file() and p.name.endswith(EXTENSIONS))
    return [str(path / name) for name in found]


def parse(source: str, text: str) -> list[Document]:
    """The objects in one source's text, or KubectlError with kubectl's parse error."""
    try:
        # The newline keeps manifests.load from reading a one-line text as a path of its own.
        docs = manifests.load(text + "\n")
    except LabError as exc:
        what = exc.what
        if what.startswith(_NOT_YAML):
            what = "error converting YAML to JSON: yaml: " + what.removeprefix(_NOT_YAML)
        what = what.replace("the manifest text", "it")
        raise KubectlError(f"error: error parsing {source}: {what}") from None
    return [Document(source, doc) for doc in docs]


def read(typed: list[str], stdin: Callable[[], str]) -> list[Document]:
    """Every object of every ``-f``, in the order kubectl visits them."""
    documents: list[Document] = []
    for item in typed:
        for source in files(item):
            documents.extend(parse(source, stdin() if source == STDIN else _text(source)))
    return documents


def _text(source: str) -> str:
    try:
        if Path(source).stat().st_size > apirules.REQUEST_MAX_BYTES:
            raise KubectlError(
                f"error: error reading {source}: it is larger than the API server's "
                f"{apirules.REQUEST_MAX_BYTES // (1024 * 1024)} MiB request limit"
            )
        return Path(source).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise KubectlError(f"error: error parsing {source}: it is not UTF-8 text") from None
    except OSError as exc:
        raise KubectlError(f"error: error reading {source}: {exc.strerror}") from None
