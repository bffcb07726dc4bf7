"""A notebook's view of errors: in IPython or Jupyter, a LabError shows as its problem and fix,
as the CLI prints it, instead of a long traceback through labkit's internals."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any

from labkit.errors import LabError


def show_lab_errors_plainly() -> bool:
    """Register the plain LabError display with the running IPython shell; False outside one."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None:
        return False
    shell.set_custom_exc((LabError,), _show_lab_error)
    return True


def _show_lab_error(
    shell: Any,
    etype: type[BaseException],
    value: BaseException,
    tb: TracebackType | None,
    tb_offset: int | None = None,
) -> None:
    """IPython's custom exception handler: the error's own words, nothing else."""
    text = value.render() if isinstance(value, LabError) else str(value)
    print(f"labkit: {text}", file=sys.stderr)
