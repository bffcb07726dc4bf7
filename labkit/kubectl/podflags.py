"""Flags of the pod verbs (``exec``, ``run``, ``logs``) parsed as kubectl's pflag parses them:
``-it`` / ``-ti`` / ``-i -t``, ``-c web`` / ``-cweb`` / ``--container=web``, flags anywhere before
``--``, everything after ``--`` the command. Mistakes get kubectl's own ``error:`` wording."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from labkit.kubectl.args import KubectlError
from labkit.kubectl.resources import nearest


@dataclass(frozen=True)
class Flag:
    """One flag: its long name, its one-letter shorthand (or ""), whether it takes a value."""

    long: str
    short: str = ""
    value: bool = False


@dataclass
class Parsed:
    """A command line's flags (long name -> value; a bool is "true" or "false"), its words, and
    what came after ``--`` (None: no ``--``)."""

    flags: dict[str, str] = field(default_factory=dict)
    words: list[str] = field(default_factory=list)
    command: list[str] | None = None

    def on(self, long: str) -> bool:
        """Whether a bool flag was given (and not ``=false``)."""
        return self.flags.get(long) == "true"


def usage(verb: str) -> str:
    """kubectl's closing line after a usage mistake (a missing or extra argument)."""
    return f"See 'kubectl {verb} -h' for help and examples"


def flag_usage(verb: str) -> str:
    """kubectl's closing line after a flag mistake."""
    return f"See 'kubectl {verb} --help' for usage."


def parse(
    verb: str, argv: Sequence[str], flags: Sequence[Flag], unserved: Sequence[str], help_text: str
) -> Parsed:
    """``argv`` (without the verb) against ``flags``; ``unserved`` are kubectl flags of this
    verb the sandbox does not serve, refused naming the ones it does; ``-h`` shows
    ``help_text`` (a KubectlError with code 0)."""
    by_long = {f.long: f for f in flags}
    by_short = {f.short: f for f in flags if f.short}
    parsed = Parsed()
    items = list(argv)
    i = 0
    while i < len(items):
        item = items[i]
        i += 1
        if item == "--":
            parsed.command = items[i:]
            break
        if item in ("-h", "--help"):
            raise KubectlError(help_text, code=0)
        if not item.startswith("-") or item == "-":
            parsed.words.append(item)
            continue
        if item.startswith("--"):
            name, eq, value = item[2:].partition("=")
            flag = by_long.get(name)
            if flag is None:
                raise _unknown(verb, f"--{name}", f"unknown flag: --{name}", flags, unserved)
            if flag.value and not eq:
                if i >= len(items):
                    raise KubectlError(
                        f"error: flag needs an argument: --{name}\n{flag_usage(verb)}"
                    )
                value, i = items[i], i + 1
            parsed.flags[flag.long] = (
                _bool(verb, flag, value, bool(eq)) if not flag.value else value
            )
            continue
        letters = item[1:]
        while letters:
            letter, letters = letters[0], letters[1:]
            flag = by_short.get(letter)
            if flag is None:
                shown = f"unknown shorthand flag: {letter!r} in {item}"
                raise _unknown(verb, f"-{letter}", shown, flags, unserved)
            if not flag.value:
                given = letters.startswith("=")
                parsed.flags[flag.long] = _bool(verb, flag, letters[1:], given)
                if given:
                    break
                continue
            value = letters.removeprefix("=")
            if not value:
                if i >= len(items):
                    needs = f"error: flag needs an argument: {letter!r} in -{letter}"
                    raise KubectlError(f"{needs}\n{flag_usage(verb)}")
                value, i = items[i], i + 1
            parsed.flags[flag.long] = value
            break
    return parsed


def _bool(verb: str, flag: Flag, value: str, given: bool) -> str:
    if not given:
        return "true"
    if value.lower() in ("true", "false", "1", "0", "t", "f"):
        return "true" if value.lower() in ("true", "1", "t") else "false"
    raise KubectlError(
        f'error: invalid argument "{value}" for "{_shown(flag)}" flag: '
        f'strconv.ParseBool: parsing "{value}": invalid syntax\n{flag_usage(verb)}'
    )


def _shown(flag: Flag) -> str:
    return f"-{flag.short}, --{flag.long}" if flag.short else f"--{flag.long}"


def _unknown(
    verb: str, spelled: str, shown: str, flags: Sequence[Flag], unserved: Sequence[str]
) -> KubectlError:
    served = sorted(f"--{f.long}" for f in flags)
    if spelled in unserved:
        return KubectlError(
            f"error: labkit kubectl on the sandbox does not serve {spelled} for {verb}; "
            f"it serves {', '.join(served)}"
        )
    near = nearest(spelled, served + [f"-{f.short}" for f in flags if f.short])
    hint = f" (did you mean {near}?)" if near else ""
    return KubectlError(f"error: {shown}{hint}\n{flag_usage(verb)}")
