"""The README's conformance table: which cases of Kubernetes' e2e network suite the sandbox tests
re-express, how many of those run as passing tests, and which are left out and why.

Built from the first docstring line of every test in ``tests/sandbox/test_e2e_*.py`` (read with
``ast``, nothing imported: ``e2e <upstream path>: <ginkgo.It title>``) and from
``tests/sandbox/data/e2e_left_out.yaml``. ``python tests/unit/conformance_table.py`` prints the
table; ``--write`` puts it into README.md between its markers.
"""

from __future__ import annotations

import ast
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests" / "sandbox"
LEFT_OUT = TESTS / "data" / "e2e_left_out.yaml"
README = ROOT / "README.md"
START = "<!-- e2e-conformance:start -->"
END = "<!-- e2e-conformance:end -->"
CASE_LINE = re.compile(r"^e2e (?P<file>test/e2e/\S+\.go): (?P<title>\S.*)$")
NOT_RUN = {"skip", "skipif", "xfail"}


@dataclass(frozen=True)
class Case:
    """One re-expressed case: the test, the upstream file and title it names, whether it runs
    as a passing test (no skip or xfail mark)."""

    test: str
    file: str
    title: str
    passing: bool


@dataclass(frozen=True)
class LeftOut:
    """One case left out, with its reason key."""

    file: str
    title: str
    reason: str


def _marks(node: ast.FunctionDef) -> set[str]:
    """The pytest marks on a test function (``pytest.mark.NAME`` or ``pytest.mark.NAME(...)``)."""
    names = set()
    for deco in node.decorator_list:
        target = deco.func if isinstance(deco, ast.Call) else deco
        if isinstance(target, ast.Attribute):
            names.add(target.attr)
    return names


def read_cases(paths: list[Path]) -> tuple[list[Case], list[str]]:
    """Every test function's case, and a problem line for each test whose docstring does not
    start with ``e2e <path>: <title>``."""
    cases, problems = [], []
    for path in paths:
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if not (isinstance(node, ast.FunctionDef) and node.name.startswith("test_")):
                continue
            first = (ast.get_docstring(node) or "").splitlines()[:1]
            match = CASE_LINE.match(first[0].strip()) if first else None
            if match is None:
                problems.append(
                    f"{path.name}::{node.name}: docstring must start with 'e2e <path>: <title>'"
                )
                continue
            passing = not (_marks(node) & NOT_RUN)
            cases.append(
                Case(f"{path.name}::{node.name}", match["file"], match["title"].strip(), passing)
            )
    return cases, problems


def read_left_out(path: Path) -> tuple[dict[str, str], list[LeftOut], list[str]]:
    """The reasons, the cases left out, and a problem line for each malformed or duplicate entry
    or unknown reason."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    reasons = {str(k): str(v) for k, v in (data.get("reasons") or {}).items()}
    left, problems, seen = [], [], set()
    for i, raw in enumerate(data.get("cases") or []):
        file, title, reason = (str(raw.get(k) or "") for k in ("file", "title", "reason"))
        key = (file, title, str(raw.get("context") or ""))
        if not file.startswith("test/e2e/") or not title:
            problems.append(f"cases[{i}]: needs file (test/e2e/...) and title")
        elif reason not in reasons:
            problems.append(f"cases[{i}]: reason {reason!r} is not one of {sorted(reasons)}")
        elif key in seen:
            problems.append(f"cases[{i}]: {file}: {title!r} is listed twice")
        else:
            seen.add(key)
            left.append(LeftOut(file, title, reason))
    return reasons, left, problems


def render(cases: list[Case], left: list[LeftOut]) -> str:
    """The Markdown table: one row per upstream file (sorted), then the totals."""
    files = sorted({c.file for c in cases} | {x.file for x in left})
    rows = [
        "| upstream file | re-expressed | passing | left out (why) |",
        "| --- | ---: | ---: | --- |",
    ]
    for file in files:
        mine = [c for c in cases if c.file == file]
        why = Counter(x.reason for x in left if x.file == file)
        reasons = ", ".join(
            f"{r} {n}" for r, n in sorted(why.items(), key=lambda kv: (-kv[1], kv[0]))
        )
        out = f"{sum(why.values())} ({reasons})" if why else "0"
        rows.append(f"| `{file}` | {len(mine)} | {sum(c.passing for c in mine)} | {out} |")
    rows.append(f"| all | {len(cases)} | {sum(c.passing for c in cases)} | {len(left)} |")
    return "\n".join(rows)


def readme_table(text: str) -> str:
    """The table as README.md holds it between the markers ('' when the markers are missing)."""
    if START not in text or END not in text:
        return ""
    return text.split(START, 1)[1].split(END, 1)[0].strip()


def build() -> tuple[str, list[str]]:
    """The table from the tests and the left-out file, and every problem found reading them."""
    cases, problems = read_cases(sorted(TESTS.glob("test_e2e_*.py")))
    _, left, more = read_left_out(LEFT_OUT)
    return render(cases, left), problems + more


def main(argv: list[str]) -> int:
    """Print the table; with ``--write``, put it into README.md between the markers."""
    table, problems = build()
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    if argv[1:] == ["--write"]:
        text = README.read_text(encoding="utf-8")
        if START not in text or END not in text:
            print(f"README.md has no {START} ... {END} markers", file=sys.stderr)
            return 1
        before, rest = text.split(START, 1)
        README.write_text(
            f"{before}{START}\n{table}\n{END}{rest.split(END, 1)[1]}", encoding="utf-8"
        )
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
