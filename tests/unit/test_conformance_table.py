"""The README's conformance table against what the re-expressed e2e cases say (issue 17).

Each re-expressed case names a ``ginkgo.It`` title of kubernetes/kubernetes test/e2e/network/
(service.go, dns.go, netpol/network_policy.go, ...) in its docstring's first line; the table
counts those tests and the left-out list per upstream file.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import conformance_table as ct


def test_readme_table_matches_the_tests_and_the_left_out_list():
    """The table in README.md is what ``tests/sandbox/test_e2e_*.py`` and e2e_left_out.yaml say
    (upstream: the It titles of test/e2e/network/*.go the tests quote)."""
    table, problems = ct.build()
    assert not problems, "\n".join(problems)
    readme = ct.readme_table(ct.README.read_text(encoding="utf-8"))
    assert readme == table, (
        "README.md's conformance table is out of date; run "
        "`python tests/unit/conformance_table.py --write` or paste:\n" + table
    )


def test_every_e2e_test_names_its_upstream_case(tmp_path: Path):
    """A test whose docstring does not start with ``e2e <path>: <It title>`` is reported, and a
    skipped or xfailed one counts as re-expressed but not passing."""
    src = tmp_path / "test_e2e_x.py"
    src.write_text(
        textwrap.dedent(
            '''
            import pytest

            def test_ok():
                """e2e test/e2e/network/dns.go: should provide DNS for services

                More words."""

            @pytest.mark.xfail(reason="x")
            def test_marked():
                """e2e test/e2e/network/dns.go: should provide DNS for the cluster"""

            def test_bare():
                """Checks something."""

            def helper():
                """Not a test."""
            '''
        )
    )
    cases, problems = ct.read_cases([src])
    assert cases == [
        ct.Case(
            "test_e2e_x.py::test_ok",
            "test/e2e/network/dns.go",
            "should provide DNS for services",
            True,
        ),
        ct.Case(
            "test_e2e_x.py::test_marked",
            "test/e2e/network/dns.go",
            "should provide DNS for the cluster",
            False,
        ),
    ]
    assert problems == ["test_e2e_x.py::test_bare: docstring must start with 'e2e <path>: <title>'"]


def test_left_out_entries_are_checked(tmp_path: Path):
    """Unknown reasons, missing fields and duplicates are problems; the same title in another
    context (upstream's UDP and SCTP Describe blocks reuse It titles) is not a duplicate."""
    src = tmp_path / "left.yaml"
    src.write_text(
        textwrap.dedent(
            """
            reasons: {sctp: SCTP, api: API}
            cases:
            - {file: test/e2e/network/a.go, title: one, reason: sctp}
            - {file: test/e2e/network/a.go, title: one, context: other, reason: sctp}
            - {file: test/e2e/network/a.go, title: one, reason: sctp}
            - {file: test/e2e/network/a.go, title: two, reason: cloud}
            - {file: elsewhere.go, title: three, reason: api}
            """
        )
    )
    reasons, left, problems = ct.read_left_out(src)
    assert reasons == {"sctp": "SCTP", "api": "API"}
    assert left == [ct.LeftOut("test/e2e/network/a.go", "one", "sctp")] * 2
    assert problems == [
        "cases[2]: test/e2e/network/a.go: 'one' is listed twice",
        "cases[3]: reason 'cloud' is not one of ['api', 'sctp']",
        "cases[4]: needs file (test/e2e/...) and title",
    ]


def test_render_counts_per_file_and_summarises_reasons():
    """One row per upstream file, sorted; passing excludes marked tests; reasons by count."""
    cases = [
        ct.Case("t::a", "test/e2e/network/b.go", "x", True),
        ct.Case("t::b", "test/e2e/network/b.go", "y", False),
        ct.Case("t::c", "test/e2e/network/a.go", "z", True),
    ]
    left = [
        ct.LeftOut("test/e2e/network/b.go", "p", "sctp"),
        ct.LeftOut("test/e2e/network/b.go", "q", "api"),
        ct.LeftOut("test/e2e/network/b.go", "r", "api"),
        ct.LeftOut("test/e2e/network/c.go", "s", "cloud"),
    ]
    assert ct.render(cases, left).splitlines() == [
        "| upstream file | re-expressed | passing | left out (why) |",
        "| --- | ---: | ---: | --- |",
        "| `test/e2e/network/a.go` | 1 | 1 | 0 |",
        "| `test/e2e/network/b.go` | 2 | 1 | 3 (api 2, sctp 1) |",
        "| `test/e2e/network/c.go` | 0 | 0 | 1 (cloud 1) |",
        "| all | 3 | 2 | 4 |",
    ]


def test_readme_table_needs_both_markers():
    """Without both markers the README holds no table ('')."""
    assert ct.readme_table(f"x {ct.START}\n| t |\n{ct.END} y") == "| t |"
    assert ct.readme_table(f"x {ct.START} | t |") == ""
