"""Ages as kubectl prints them, held against apimachinery's own tables
(``staging/src/k8s.io/apimachinery/pkg/util/duration/duration_test.go``: TestHumanDuration and
TestHumanDurationBoundaries)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from labkit.printers.ages import age, human_duration, parse_time

S, M, H, D = 1, 60, 3600, 86400
MS = 0.001

UPSTREAM = [
    (S, "1s"),
    (70 * S, "70s"),
    (190 * S, "3m10s"),
    (70 * M, "70m"),
    (47 * H, "47h"),
    (49 * H, "2d1h"),
    ((8 * 24 + 2) * H, "8d"),
    (367 * D, "367d"),
    ((365 * 2 * 24 + 25) * H, "2y1d"),
    ((365 * 8 * 24 + 2) * H, "8y"),
]
BOUNDARIES = [
    (-2 * S, "<invalid>"),
    (-2 * S + 1e-9, "0s"),
    (0, "0s"),
    (S - MS, "0s"),
    (2 * M - MS, "119s"),
    (2 * M, "2m"),
    (2 * M + S, "2m1s"),
    (10 * M - MS, "9m59s"),
    (10 * M, "10m"),
    (10 * M + S, "10m"),
    (3 * H - MS, "179m"),
    (3 * H, "3h"),
    (3 * H + M, "3h1m"),
    (8 * H - MS, "7h59m"),
    (8 * H, "8h"),
    (8 * H + 59 * M, "8h"),
    (2 * D - MS, "47h"),
    (2 * D, "2d"),
    (2 * D + H, "2d1h"),
    (8 * D - MS, "7d23h"),
    (8 * D, "8d"),
    (8 * D + 23 * H, "8d"),
    (2 * 365 * D - MS, "729d"),
    (2 * 365 * D, "2y"),
    (2 * 365 * D + 23 * H, "2y"),
    (2 * 365 * D + 23 * H + 59 * M, "2y"),
    (2 * 365 * D + D - MS, "2y"),
    (2 * 365 * D + D, "2y1d"),
    (3 * 365 * D, "3y"),
    (7 * 365 * D, "7y"),
    (8 * 365 * D - MS, "7y364d"),
    (8 * 365 * D, "8y"),
    (8 * 365 * D + 364 * D, "8y"),
    (9 * 365 * D, "9y"),
]


@pytest.mark.parametrize(("seconds", "shown"), UPSTREAM + BOUNDARIES)
def test_human_duration_matches_apimachinery(seconds, shown):
    assert human_duration(seconds) == shown


def test_age_counts_to_now_and_says_unknown_without_a_timestamp():
    now = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)
    stamp = (now - timedelta(minutes=3, seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert age(stamp, now) == "3m2s"
    assert age(None, now) == "<unknown>"
    assert age("yesterday", now) == "<unknown>"
    assert parse_time("2026-01-01T00:00:04Z") == datetime(2026, 1, 1, 0, 0, 4, tzinfo=timezone.utc)
