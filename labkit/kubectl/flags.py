"""Flags of the write verbs, parsed the way kubectl (pflag) parses them: anywhere on the line,
``--flag=value``, ``--flag value``, ``-fvalue``, ``-f value``, booleans as ``--flag`` or
``--flag=false``, ``--`` ending the flags. Each verb declares its own table; a flag kubectl has
but the sandbox does not serve is refused in one line naming the ones it does."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from labkit.kubectl import resources
from labkit.kubectl.args import KubectlError


@dataclass(frozen=True)
class Flag:
    """One flag: its long name (``--port``), optional one-letter short name (``-p``), and
    whether it takes a value (booleans do not)."""

    long: str
    short: str = ""
    value: bool = True


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
    """The flags given (long name -> every value, in order) and the positional words."""

    values: dict[str, list[str]]
    words: list[str]

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


def usage(verb: str) -> str:
    """kubectl's pointer to a verb's help, under a usage error."""
    return f"See 'kubectl {verb} --help' for usage."


def split(verb: str, argv: Sequence[str], table: Sequence[Flag], help_text: str) -> Parsed:
    """Flags and words of one write verb's command line (without the verb), or KubectlError with
    kubectl's wording (``help_text`` for ``-h``, exit 0)."""
    longs = {f.long: f for f in table}
    shorts = {f.short: f for f in table if f.short}
    parsed = Parsed({}, [])
    items = list(argv)
    i = 0
    while i < len(items):
        item = items[i]
        i += 1
        if item == "--":
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
            typed, shown = name, f"unknown flag: {name}"
        else:
            flag = shorts.get(item[:2])
            value = item[2:].removeprefix("=")
            eq = "=" if value else ""
            typed, shown = item[:2], f"unknown shorthand flag: {item[1]!r} in {item}"
        if flag is None:
            raise _unknown(verb, typed, shown, table)
        if flag.value and not eq:
            if i >= len(items):
                what = f"{typed[1]!r} in {typed}" if typed == flag.short else flag.long
                raise KubectlError(f"error: flag needs an argument: {what}\n{usage(verb)}")
            value = items[i]
            i += 1
        elif not flag.value:
            if eq and value.lower() not in ("true", "false"):
                raise KubectlError(
                    f'error: invalid argument "{value}" for "{flag.long}" flag: '
                    f'strconv.ParseBool: parsing "{value}": invalid syntax\n{usage(verb)}'
                )
            value = "false" if eq and value.lower() == "false" else "true"
        parsed.values.setdefault(flag.long, []).append(value)
    return parsed


def _unknown(verb: str, typed: str, shown: str, table: Sequence[Flag]) -> KubectlError:
    served = sorted(f"{f.short}/{f.long}" if f.short else f.long for f in table)
    near = resources.nearest(typed, [f.long for f in table] + [f.short for f in table if f.short])
    if typed in KUBECTL_WRITE_FLAGS:
        hint = f" (nearest served: {near})" if near else ""
        return KubectlError(
            f"error: labkit kubectl on the sandbox does not serve {typed} for {verb}{hint}; "
            f"it serves {', '.join(served) or 'no flags'}"
        )
    hint = f" (did you mean {near}?)" if near else ""
    return KubectlError(f"error: {shown}{hint}\n{usage(verb)}")


def served_help(verb: str, shape: str, table: Sequence[Flag]) -> str:
    """What ``kubectl VERB --help`` prints on the sandbox: the usage and flags served."""
    flags = ", ".join(f"{f.short}/{f.long}" if f.short else f.long for f in table)
    return (
        f"labkit kubectl on the sandbox serves: kubectl {verb} {shape}\n"
        f"Flags: {flags or 'none'}.\n"
        "On a Kind lab `labkit kubectl` runs the real kubectl, every flag included.\n"
    )
