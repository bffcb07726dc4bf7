"""Ages as kubectl prints them: ``duration.HumanDuration`` of apimachinery (5s, 3m2s, 2d3h...)."""

from __future__ import annotations

from datetime import datetime

UNKNOWN = "<unknown>"


def human_duration(seconds: float) -> str:
    """A duration the way kubectl's AGE column shows it: exact while short, coarser with age."""
    whole = int(seconds)
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 120:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        return _two(minutes, "m", whole % 60, "s")
    if minutes < 180:
        return f"{minutes}m"
    hours = whole // 3600
    if hours < 8:
        return _two(hours, "h", minutes % 60, "m")
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        return _two(days, "d", hours % 24, "h")
    if hours < 24 * 365 * 2:
        return f"{days}d"
    years = days // 365
    if hours < 24 * 365 * 8:
        return _two(years, "y", days % 365, "d")
    return f"{years}y"


def _two(big: int, big_unit: str, small: int, small_unit: str) -> str:
    return f"{big}{big_unit}" if small == 0 else f"{big}{big_unit}{small}{small_unit}"


def parse_time(stamp: str | None) -> datetime | None:
    """An RFC 3339 timestamp of the API (``2026-01-01T00:00:04Z``), or None when absent or
    malformed."""
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return None


def age(stamp: str | None, now: datetime) -> str:
    """How long before ``now`` the timestamp lies, or ``<unknown>`` without one."""
    when = parse_time(stamp)
    if when is None:
        return UNKNOWN
    return human_duration((now - when).total_seconds())
