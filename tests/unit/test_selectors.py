"""Label selector semantics (pure)."""

from __future__ import annotations

import pytest

from labkit.model.selectors import (
    equality_selector_matches,
    parse_selector_string,
    selector_matches,
)

LABELS = {"app": "web", "tier": "frontend", "env": "prod"}


@pytest.mark.parametrize(
    "selector, expected",
    [
        ({}, True),
        (None, True),
        ({"matchLabels": {"app": "web"}}, True),
        ({"matchLabels": {"app": "db"}}, False),
        ({"matchLabels": {"app": "web", "tier": "frontend"}}, True),
        ({"matchLabels": {"app": "web", "tier": "backend"}}, False),
        (
            {"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "staging"]}]},
            True,
        ),
        ({"matchExpressions": [{"key": "env", "operator": "In", "values": ["dev"]}]}, False),
        ({"matchExpressions": [{"key": "missing", "operator": "In", "values": ["x"]}]}, False),
        ({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["dev"]}]}, True),
        ({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]}, False),
        ({"matchExpressions": [{"key": "missing", "operator": "NotIn", "values": ["x"]}]}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, True),
        ({"matchExpressions": [{"key": "missing", "operator": "Exists"}]}, False),
        ({"matchExpressions": [{"key": "missing", "operator": "DoesNotExist"}]}, True),
        ({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}, False),
        (
            {
                "matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "env", "operator": "In", "values": ["dev"]}],
            },
            False,
        ),
    ],
)
def test_selector_matches(selector, expected):
    assert selector_matches(selector, LABELS) is expected


def test_selector_against_no_labels():
    assert selector_matches({}, None)
    assert not selector_matches({"matchLabels": {"a": "b"}}, None)


def test_unknown_operator_is_named():
    with pytest.raises(ValueError, match="Gt"):
        selector_matches(
            {"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}, LABELS
        )


@pytest.mark.parametrize(
    "selector, expected",
    [
        ({"app": "web"}, True),
        ({"app": "web", "tier": "frontend"}, True),
        ({"app": "db"}, False),
        ({}, False),
        (None, False),
        ({"app": "web", "missing": "x"}, False),
    ],
)
def test_equality_selector(selector, expected):
    assert equality_selector_matches(selector, LABELS) is expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("app=web", {"matchLabels": {"app": "web"}}),
        ("app==web,tier=db", {"matchLabels": {"app": "web", "tier": "db"}}),
        (
            "tier!=db",
            {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]},
        ),
        (
            "env in (a, b)",
            {"matchExpressions": [{"key": "env", "operator": "In", "values": ["a", "b"]}]},
        ),
        (
            "env notin (a,b),app=x",
            {
                "matchLabels": {"app": "x"},
                "matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["a", "b"]}],
            },
        ),
        ("!legacy", {"matchExpressions": [{"key": "legacy", "operator": "DoesNotExist"}]}),
        ("team", {"matchExpressions": [{"key": "team", "operator": "Exists"}]}),
        ("", {}),
    ],
)
def test_parse_selector_string(text, expected):
    assert parse_selector_string(text) == expected


def test_parse_selector_needs_parentheses():
    with pytest.raises(ValueError, match="parentheses"):
        parse_selector_string("env in a,b")
