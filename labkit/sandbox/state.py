"""A sandbox lab's state on disk and its locks.

``/run/labkit/<lab>/state.json`` holds everything a lab is (its CNI, phase, the cluster store,
the pods' networks, the outside addresses), and ``state.journal`` what changed since
(``statejournal``): a change appends what it changed, and the whole state is rewritten when the
journal has grown to a quarter of it. Writers hold two locks: the lab's lifecycle lock (one
``up``, ``down`` or change at a time, across processes and threads) and an ``fcntl`` lock on the
state folder; readers need neither, since the whole state is replaced atomically and a journal
line counts only once complete.

A change first records which pods it is about to touch (``changing.json``, the intent), and the
save that ends it removes that record: one found later means a command died midway and the data
plane may differ from the state, which the next command repairs before anything else.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

from labkit.errors import LabError
from labkit.sandbox import statejournal
from labkit.sandbox.fabric import PodNet

LAB_STATE_FORMAT = 1
"""The version of ``state.json``'s layout; a file of another version is refused."""
STATE_FILE = "state.json"
JOURNAL_FILE = "state.journal"
COMPACT_AT = 4
"""The journal is folded into a new ``state.json`` rather than grow past 1/COMPACT_AT of it."""
LOCK_FILE = "lock"
CHANGE_FILE = "changing.json"
REPAIRING = "repairing"
"""The phase of a built lab whose namespaces ``up`` is building again from its state."""
KUBE_PROXY_MODE = "iptables"
"""The only kube-proxy mode the sandbox models (its kernel has no IPVS)."""
KUBE_PROXY_REPLACED = "none"
"""The mode of a lab whose CNI replaces kube-proxy (Cilium with ``kubeProxyReplacement``)."""


def kube_proxy_mode_for(cni: str) -> str:
    """The kube-proxy mode a sandbox lab of this CNI runs: none (replaced) for Cilium."""
    return KUBE_PROXY_REPLACED if cni == "cilium" else KUBE_PROXY_MODE


# --------------------------------------------------------------------------- the state document


def wall_clock() -> datetime:
    """The time now, in UTC: what the sandbox's API server stamps objects with, as a real one
    does, so that kubectl's ages are true."""
    return datetime.now(timezone.utc)


def created_at(created: float) -> datetime:
    """A lab's creation time (``time.time()`` when ``up`` made it) as a UTC time, which its
    nodes and system objects carry."""
    return datetime.fromtimestamp(created, timezone.utc)


def building_state(
    lab_name: str, cni: str, store: Mapping[str, Any], created: float
) -> dict[str, Any]:
    """The first state of a lab made at ``created`` (``time.time()``), written before its
    namespaces exist, so that ``down`` finds whatever a failed or killed ``up`` leaves."""
    return {
        "format": LAB_STATE_FORMAT,
        "name": lab_name,
        "cni": cni,
        "kube_proxy_mode": kube_proxy_mode_for(cni),
        "phase": "building",
        "created": created,
        "store": dict(store),
        "pods": {},
    }


def lab_uid(state: Mapping[str, Any]) -> str:
    """The lab's identity, from its name and the moment ``up`` first wrote its state: the same
    for the lab's whole life, new when it is taken down and built again under the same name."""
    return str(
        uuid.uuid5(uuid.NAMESPACE_URL, f"labkit-sandbox:{state['name']}:{state['created']!r}")
    )


def with_data_plane(
    state: Mapping[str, Any], store: Mapping[str, Any], built: Mapping[str, PodNet]
) -> dict[str, Any]:
    """A copy of ``state`` recording a store and the pod networks built for it; a pod whose
    network ``state`` already records keeps that very record, which the journal then passes
    over by identity (issue 18)."""
    recorded = state.get("pods") or {}
    pods = {}
    for key, net in sorted(built.items()):
        fields = dict(vars(net))  # ``asdict`` of its flat fields, without the deep copy
        before = recorded.get(key)
        pods[key] = before if before == fields else fields
    return {**state, "store": dict(store), "pods": pods, "updated": time.time()}


def built_pods(state: Mapping[str, Any]) -> dict[str, PodNet]:
    """The pod networks a state records as built, by ``ns/name``."""
    return {key: PodNet(**value) for key, value in (state.get("pods") or {}).items()}


# --------------------------------------------------------------------------- the intent of a change


def begin_change(directory: Path, pod_keys: Iterable[str]) -> None:
    """Record, before acting, that the data plane is changing and which pods (``ns/name``) it
    may touch; added to what an unfinished earlier change recorded."""
    keys = set(pod_keys) | (pending_change(directory) or set())
    _write_atomic(directory / CHANGE_FILE, json.dumps({"pods": sorted(keys)}))


def pending_change(directory: Path) -> set[str] | None:
    """The pods an unfinished change may have touched, or None when no change is under way."""
    try:
        text = (directory / CHANGE_FILE).read_text()
    except FileNotFoundError:
        return None
    try:
        return {str(key) for key in json.loads(text).get("pods") or []}
    except (ValueError, AttributeError):  # damaged from outside (it is written atomically)
        return set()


def end_change(directory: Path) -> None:
    """The data plane matches the saved state again: forget the intent."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(directory / CHANGE_FILE)


def _write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step: a reader (or a process killed meanwhile) sees
    the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


# --------------------------------------------------------------------------- the lifecycle lock


@dataclass
class _Hold:
    """A lifecycle lock one thread holds: its socket, and how many times it was entered."""

    sock: socket.socket
    depth: int


_held: dict[tuple[str, int], _Hold] = {}
_held_guard = threading.Lock()


@contextlib.contextmanager
def lifecycle_lock(lab_name: str, timeout: float = 60.0) -> Iterator[None]:
    """One ``up``, ``down`` or change of lab ``lab_name`` at a time, across processes and threads
    (re-entrant within one thread).

    The lock is an abstract unix socket name: the kernel frees it when its holder exits, even
    after ``kill -9``, and it leaves no file behind.
    """
    key = (lab_name, threading.get_ident())
    with _held_guard:
        hold = _held.get(key)
        if hold is not None:
            hold.depth += 1
    if hold is None:
        hold = _Hold(_bind_lock_socket(lab_name, timeout), 1)
        with _held_guard:
            _held[key] = hold
    try:
        yield
    finally:
        with _held_guard:
            hold.depth -= 1
            if hold.depth == 0:
                del _held[key]
                hold.sock.close()


def _bind_lock_socket(lab_name: str, timeout: float) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    deadline = time.monotonic() + timeout
    while True:
        try:
            sock.bind(f"\0labkit-sandbox-{lab_name}")
            return sock
        except OSError:
            if time.monotonic() > deadline:
                sock.close()
                raise LabError(
                    f"Another labkit process has been changing lab {lab_name!r} for {timeout:g} s.",
                    "Wait for it to finish, or stop it, then try again.",
                ) from None
            time.sleep(0.02)


# --------------------------------------------------------------------------- the state file


class StateStamp(NamedTuple):
    """Which version of the state is on disk (any write changes it): the whole state's file and
    the journal's length."""

    mtime_ns: int
    inode: int
    journal_size: int
    journal_inode: int


@dataclass(frozen=True)
class _Known:
    """The state this process last read or wrote, as it is on disk (``stamp``): a write whose
    stamp still matches appends only what differs from ``data``."""

    stamp: StateStamp | None
    data: Mapping[str, Any]
    generation: str
    base_size: int
    appendable: bool
    """False when the journal ends in an unfinished line (a killed write): rewrite it whole."""


class StateFile:
    """``/run/labkit/<lab>/state.json`` and its journal, with an exclusive ``fcntl`` lock for
    writers.

    Readers never need the lock: the whole state is replaced atomically, and a reader that finds
    it replaced while it read the journal reads again. The lock is re-entrant within a process
    (a thread lock plus a depth count around one ``flock``).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / STATE_FILE
        self.journal = directory / JOURNAL_FILE
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None
        self._known: _Known | None = None

    def exists(self) -> bool:
        """Whether the state file is there (a lab was built, or is being built)."""
        return self.path.is_file()

    def read(self) -> dict[str, Any]:
        """The state, refused with a fix when it is gone, damaged or of another format."""
        while True:
            stamp = self.stamp()
            try:
                text = self.path.read_text()
                data: dict[str, Any] = json.loads(text)
                generation = str(data.get(statejournal.GENERATION_KEY))
                journal = self._journal_text()
                current, complete = statejournal.replay(data, journal)
            except FileNotFoundError:
                raise LabError(
                    f"Lab state {self.path} is gone: the lab was taken down.",
                    "Bring it up again with `labkit up` (or `labkit.connect()` in a notebook).",
                ) from None
            except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
                raise LabError(
                    f"Lab state {self.path} is damaged ({exc}).",
                    "Run `labkit down` then `labkit up` to rebuild the lab.",
                ) from None
            if stamp is not None and self._base_stamp() == stamp[:2]:
                break  # else the whole state was replaced while the journal was read
        if not isinstance(data, dict) or data.get("format") != LAB_STATE_FORMAT:
            raise LabError(
                f"Lab state {self.path} has an unknown format.",
                "It was written by another labkit version: `labkit down` then `labkit up`.",
            )
        appendable = current and complete == len(journal)
        self._known = _Known(stamp, data, generation, len(text), appendable)
        return data

    def _journal_text(self) -> str:
        try:
            return self.journal.read_text()
        except FileNotFoundError:
            return ""

    def _base_stamp(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return st.st_mtime_ns, st.st_ino

    def stamp(self) -> StateStamp | None:
        """The version on disk (None when there is no file), to tell when a cache is stale."""
        base = self._base_stamp()
        if base is None:
            return None
        try:
            st = os.stat(self.journal)
            journal = st.st_size, st.st_ino
        except FileNotFoundError:
            journal = 0, 0
        return StateStamp(*base, *journal)

    def write(self, data: Mapping[str, Any]) -> None:
        """Record ``data`` as the state (callers hold ``locked()``): one journal line with what
        differs from the state this process last knew, or the whole state when that is stale or
        the line would grow the journal past its share. So the change that makes the journal
        large (a bulk apply) pays for the rewrite, not the small change after it."""
        known = self._known
        stamp = self.stamp()
        if (
            known is None
            or not known.appendable
            or stamp is None
            or known.stamp != stamp
            or stamp.journal_size * COMPACT_AT > known.base_size  # full already: skip the delta
        ):
            self._rewrite(data)
            return
        text = statejournal.line(known.generation, statejournal.delta(known.data, data))
        if (stamp.journal_size + len(text)) * COMPACT_AT > known.base_size:
            self._rewrite(data)
            return
        fd = os.open(self.journal, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
        self._known = _Known(self.stamp(), data, known.generation, known.base_size, True)

    def _rewrite(self, data: Mapping[str, Any]) -> None:
        """The whole state as a new generation, then its empty journal (a reader finding the
        older journal beside it reads the whole state alone)."""
        generation = uuid.uuid4().hex
        text = json.dumps({**data, statejournal.GENERATION_KEY: generation}, separators=(",", ":"))
        _write_atomic(self.path, text)
        _write_atomic(self.journal, statejournal.header(generation))
        self._known = _Known(self.stamp(), data, generation, len(text), True)

    @contextlib.contextmanager
    def locked(self, timeout: float = 60.0) -> Iterator[None]:
        """Hold the lab's write lock (waits for another process's change to finish)."""
        with self._thread_lock:
            if self._depth == 0:
                self._fd = self._flock(timeout)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._fd is not None:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
                    os.close(self._fd)
                    self._fd = None

    def _flock(self, timeout: float) -> int:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise LabError(
                        f"Another labkit process has held lab {self.directory.name!r} for "
                        f"{timeout:g} s.",
                        "Wait for it to finish, or stop it and run "
                        f"`labkit down --name {self.directory.name}`.",
                    ) from None
                time.sleep(0.01)
