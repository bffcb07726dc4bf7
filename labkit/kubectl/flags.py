"""kubectl's flags, parsed the way its flag library (pflag) parses them, for every verb served on
the sandbox: flags anywhere on the line, ``--flag=value`` / ``--flag value``, ``-fvalue`` /
``-f value`` / ``-f=value``, one-letter booleans grouped (``-it``), booleans as ``--flag`` or
``--flag=false``, and ``--`` ending the flags. Each verb declares its own table; a kubectl flag
the sandbox does not serve is refused in one line naming the ones it does."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from labkit.kubectl import resources

GO_TRUE = ("1", "t", "T", "TRUE", "true", "True")
GO_FALSE = ("0", "f", "F", "FALSE", "false", "False")
"""What Go's strconv.ParseBool accepts, which is what a boolean flag's ``=value`` may be."""


class KubectlError(Exception):
    """What kubectl would print on stderr for a mistake, and its exit code (0: help, printed on
    stdout)."""

    def __init__(self, text: str, code: int = 1) -> None:
        super().__init__(text)
        self.text = text
        self.code = code


@dataclass(frozen=True)
class Flag:
    """One flag: its long name (``--port``), optional one-letter short name (``-p``), and
    whether it takes a value (booleans do not)."""

    long: str
    short: str = ""
    value: bool = True

    def shown(self) -> str:
        """The flag as a list of served flags names it: ``-n/--namespace`` or ``--port``."""
        return f"{self.short}/{self.long}" if self.short else self.long


NAMESPACE = Flag("--namespace", "-n")
FILENAME = Flag("--filename", "-f")
KUBECTL_WRITE_FLAGS = (
    "--dry-run", "--server-side", "--force", "--prune", "--grace-period", "--now", "--wait",
    "--timeout", "--cascade", "--record", "--save-config", "--validate", "--field-manager",
    "--output", "-o", "--kustomize", "-k", "--recursive", "-R", "--edit", "--windows-line-endings",
    "--raw", "--local", "--patch-file", "--subresource", "--current-replicas",
    "--resource-version", "--list", "--field-selector", "--cluster-ip", "--external-ip",
    "--load-balancer-ip", "--session-affinity", "--labels", "--container-port", "--port-name",
    "--overrides", "--interactive", "-i", "--all-namespaces", "-A", "--force-conflicts",
    "--applyset", "--prune-allowlist", "--show-managed-fields", "--template",
    "--allow-missing-template-keys", "--context", "--kubeconfig", "--cluster", "--user",
    "--selector", "-l", "--all",
)  # fmt: skip
"""Flags kubectl has on the write verbs that `labkit kubectl` does not serve on the sandbox."""


@dataclass
class Parsed:
    """The flags given (long name -> every value, in order), the positional words (pflag's
    ``Args()``), and how many of them came before ``--`` (None: there was no ``--``)."""

    values: dict[str, list[str]] = field(default_factory=dict)
    words: list[str] = field(default_factory=list)
    dash: int | None = None

    def last(self, long: str, default: str = "") -> str:
        """The value a single-valued flag ends with (pflag: the last one wins)."""
        found = self.values.get(long)
        return found[-1] if found else default

    def on(self, long: str) -> bool:
        """Whether a boolean flag ends set to true."""
        return self.last(long, "false") == "true"

    def given(self, long: str) -> bool:
        """Whether the flag was typed at all."""
        return long in self.values

    def before_dash(self) -> list[str]:
        """The words before ``--`` (all of them when there was none)."""
        return self.words if self.dash is None else self.words[: self.dash]

    def after_dash(self) -> list[str] | None:
        """The words after ``--`` (a command for exec and run), or None when there was no ``--``."""
        return None if self.dash is None else self.words[self.dash :]


def usage(verb: str) -> str:
    """kubectl's closing line under a usage mistake (a missing or extra argument)."""
    return f"See 'kubectl {verb} -h' for help and examples"


def flag_usage(verb: str) -> str:
    """kubectl's closing line under a flag mistake (pflag's error)."""
    return f"See 'kubectl {verb} --help' for usage."


def parse(
    verb: str,
    argv: Sequence[str],
    table: Sequence[Flag],
    help_text: str,
    unserved: Sequence[str] = KUBECTL_WRITE_FLAGS,
) -> Parsed:
    """``argv`` (without the verb) against ``table``, or KubectlError with kubectl's wording;
    ``unserved`` are kubectl's flags of this verb the sandbox does not serve, and ``-h`` shows
    ``help_text`` (a KubectlError with code 0)."""
    longs = {f.long: f for f in table}
    shorts = {f.short[1:]: f for f in table if f.short}
    parsed = Parsed()
    items = list(argv)
    i = 0
    while i < len(items):
        item = items[i]
        i += 1
        if item == "--":
            parsed.dash = len(parsed.words)
            parsed.words.extend(items[i:])
            break
        if item in ("-h", "--help"):
            raise KubectlError(help_text, code=0)
        if not item.startswith("-") or item == "-":
            parsed.words.append(item)
            continue
        if item.startswith("--"):
            name, eq, value = item.partition("=")
            flag = longs.get(name)
            if flag is None:
                raise _unknown(verb, name, f"unknown flag: {name}", table, unserved)
            if flag.value and not eq:
                if i >= len(items):
                    raise KubectlError(f"error: flag needs an argument: {name}\n{flag_usage(verb)}")
                value, i = items[i], i + 1
            _record(parsed, verb, flag, value, bool(eq))
            continue
        letters = item[1:]
        while letters:
            letter, letters = letters[0], letters[1:]
            flag = shorts.get(letter)
            if flag is None:
                shown = f"unknown shorthand flag: {letter!r} in {item}"
                raise _unknown(verb, f"-{letter}", shown, table, unserved)
            if not flag.value:
                given = letters.startswith("=")
                _record(parsed, verb, flag, letters[1:], given)
                if given:
                    break
                continue
            value = letters.removeprefix("=")
            if not value:
                if i >= len(items):
                    needs = f"error: flag needs an argument: {letter!r} in -{letter}"
                    raise KubectlError(f"{needs}\n{flag_usage(verb)}")
                value, i = items[i], i + 1
            _record(parsed, verb, flag, value, True)
            break
    return parsed


def _record(parsed: Parsed, verb: str, flag: Flag, value: str, given: bool) -> None:
    """Keep one flag's value; a boolean's is "true" unless ``=false`` (Go's spellings) was given."""
    if not flag.value:
        if given and value not in GO_TRUE + GO_FALSE:
            raise KubectlError(
                f'error: invalid argument "{value}" for "{_named(flag)}" flag: '
                f'strconv.ParseBool: parsing "{value}": invalid syntax\n{flag_usage(verb)}'
            )
        value = "false" if given and value in GO_FALSE else "true"
    parsed.values.setdefault(flag.long, []).append(value)


def _named(flag: Flag) -> str:
    """The flag as pflag names it in a value error: ``-n, --namespace``."""
    return f"{flag.short}, {flag.long}" if flag.short else flag.long


def _unknown(
    verb: str, typed: str, shown: str, table: Sequence[Flag], unserved: Sequence[str]
) -> KubectlError:
    served = sorted(f.shown() for f in table)
    near = resources.nearest(typed, [f.long for f in table] + [f.short for f in table if f.short])
    if typed in unserved:
        hint = f" (nearest served: {near})" if near else ""
        return KubectlError(
            f"error: labkit kubectl on the sandbox does not serve {typed} for {verb}{hint}; "
            f"it serves {', '.join(served) or 'no flags'}"
        )
    hint = f" (did you mean {near}?)" if near else ""
    return KubectlError(f"error: {shown}{hint}\n{flag_usage(verb)}")


def served_help(verb: str, shape: str, table: Sequence[Flag]) -> str:
    """What ``kubectl VERB --help`` prints on the sandbox: the usage and flags served."""
    flags = ", ".join(f.shown() for f in table)
    return (
        f"labkit kubectl on the sandbox serves: kubectl {verb} {shape}\n"
        f"Flags: {flags or 'none'}.\n"
        "On a Kind lab `labkit kubectl` runs the real kubectl, every flag included.\n"
    )
