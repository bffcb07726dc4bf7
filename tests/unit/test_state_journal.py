"""The state file's journal (issue 18): a change appends what it changed instead of rewriting a
lab's whole state, and nothing is lost: a reader gets exactly the last state written, a write a
killed process left unfinished is not part of it, and a journal of an older generation beside a
newer whole state is never applied to it.

Upstream: etcd keeps its changes the same way, a write-ahead log beside a snapshot, and a torn
last record is a write that never happened (etcd-io/etcd server/storage/wal/repair.go ``Repair``:
"repair ErrUnexpectedEOF in the last wal file by truncating"; server/storage/wal/wal.go
``ReadAll``); the log is folded into a new snapshot as it grows (server/etcdserver/server.go
``triggerSnapshot`` after ``SnapshotCount`` entries).
"""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import pytest

from labkit.sandbox import statejournal
from labkit.sandbox.state import COMPACT_AT, StateFile, building_state


def _random_value(rng: random.Random, depth: int) -> Any:
    roll = rng.random()
    if depth and roll < 0.5:
        return {
            f"k{rng.randrange(5)}": _random_value(rng, depth - 1) for _ in range(rng.randrange(4))
        }
    if roll < 0.6:
        return [rng.randrange(3) for _ in range(rng.randrange(3))]
    return rng.choice((None, True, 0, 1, "a", "b"))


def _mutated(rng: random.Random, value: dict[str, Any], depth: int) -> dict[str, Any]:
    """A new dict sharing what it did not change, as a store's change does."""
    out = dict(value)
    for _ in range(rng.randrange(4)):
        key = f"k{rng.randrange(5)}"
        roll = rng.random()
        if roll < 0.3:
            out.pop(key, None)
        elif roll < 0.6 and depth and isinstance(out.get(key), dict):
            out[key] = _mutated(rng, out[key], depth - 1)
        else:
            out[key] = _random_value(rng, depth)
    return out


@pytest.mark.parametrize("seed", range(200))
def test_a_delta_turns_the_old_state_into_the_new(seed: int):
    rng = random.Random(seed)
    old = {"root": _random_value(rng, 6), **{f"k{i}": _random_value(rng, 6) for i in range(3)}}
    new = _mutated(rng, old, 6)
    kept = copy.deepcopy(old)
    operations = statejournal.delta(old, new)
    assert old == kept, "the delta reads the states and leaves them alone"
    rebuilt = json.loads(json.dumps(old))
    statejournal.apply(rebuilt, json.loads(json.dumps(operations)))
    assert rebuilt == json.loads(json.dumps(new))
    if old == new:
        assert operations == []


def _state(pods: int) -> dict[str, Any]:
    store = {"objects": {"Pod": {f"default/p{i}": {"ip": f"10.0.0.{i}"} for i in range(pods)}}}
    return building_state("lab", "calico", store, 1.5)


def _changed(state: dict[str, Any], index: int) -> dict[str, Any]:
    table = {**state["store"]["objects"]["Pod"], f"default/p{index}": {"ip": "10.9.9.9"}}
    return {**state, "store": {**state["store"], "objects": {"Pod": table}}, "updated": index}


def test_a_change_appends_only_what_it_changed_and_a_new_reader_gets_it(tmp_path):
    writer = StateFile(tmp_path)
    state = _state(200)
    writer.write(state)
    whole = writer.path.stat().st_size
    state = _changed(state, 7)
    writer.write(state)
    assert writer.path.stat().st_size == whole, "the whole state was not written again"
    line = writer.journal.read_text().splitlines()[-1]
    assert "p7" in line and "p8" not in line and len(line) < 300
    assert StateFile(tmp_path).read() == state


def test_an_unfinished_line_is_not_part_of_the_state_and_the_next_write_starts_afresh(tmp_path):
    writer = StateFile(tmp_path)
    first = _state(20)
    writer.write(first)
    second = _changed(first, 3)
    writer.write(second)
    complete = writer.journal.read_text()
    with writer.journal.open("a") as journal:  # a process killed in the middle of a write
        journal.write(statejournal.line("x", [[["updated"], 99]])[:-9])
    reader = StateFile(tmp_path)
    assert reader.read() == second
    third = _changed(second, 4)
    reader.write(third)
    assert StateFile(tmp_path).read() == third
    assert reader.journal.read_text() != complete + "x", "rewritten, not appended after the tear"


def test_a_journal_of_another_generation_is_never_applied(tmp_path):
    writer = StateFile(tmp_path)
    state = _state(10)
    writer.write(state)
    writer.write(_changed(state, 1))
    stale = writer.journal.read_text()
    StateFile(tmp_path).write(state)  # another process rewrites the whole state
    writer.journal.write_text(stale)  # as if killed before its journal was replaced
    assert StateFile(tmp_path).read() == state


def test_the_journal_is_folded_into_the_whole_state_once_it_has_grown(tmp_path):
    writer = StateFile(tmp_path)
    state = _state(50)
    writer.write(state)
    generations = set()
    for index in range(4 * COMPACT_AT + 40):
        state = _changed(state, index % 50)
        writer.write(state)
        lines = writer.journal.read_text().splitlines(keepends=True)
        generations.add(lines[0])
        assert sum(len(text) for text in lines) * COMPACT_AT <= writer.path.stat().st_size
    assert len(generations) > 1
    assert StateFile(tmp_path).read() == state


def test_a_change_too_big_for_the_journal_rewrites_the_state_and_the_next_one_appends(tmp_path):
    """A bulk apply pays for the rewrite it causes; the small change after it is one line."""
    writer = StateFile(tmp_path)
    writer.write(_state(5))
    bulk = _state(500)
    writer.write(bulk)
    assert len(writer.journal.read_text().splitlines()) == 1  # a new generation's header only
    after = _changed(bulk, 7)
    writer.write(after)
    assert len(writer.journal.read_text().splitlines()) == 2
    assert StateFile(tmp_path).read() == after


def test_a_reader_reads_again_when_the_whole_state_is_replaced_under_it(tmp_path, monkeypatch):
    writer = StateFile(tmp_path)
    state = _state(10)
    writer.write(state)
    newer = _changed(state, 2)
    reader = StateFile(tmp_path)
    journal_text = reader._journal_text
    calls = []

    def replaced_meanwhile() -> str:
        text = journal_text()
        if not calls:
            calls.append(1)
            StateFile(tmp_path).write(newer)  # a rewrite between the two reads
        return text

    monkeypatch.setattr(reader, "_journal_text", replaced_meanwhile)
    assert reader.read() == newer
