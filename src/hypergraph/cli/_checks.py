"""Range checks of command-line option values, answered with one clear paragraph.

Typer's own ``min=``/``max=`` checks print a usage box; these raise
:class:`~hypergraph.exceptions.InvalidParameterError` instead, which ``main()`` turns into exit
code 2 and one line naming the option, the allowed range and the value given.
"""

from __future__ import annotations

import math

from hypergraph.exceptions import InvalidParameterError

__all__ = ["check_range"]


def check_range(option: str, value: float, low: float | None = None,
                high: float | None = None, *, low_open: bool = False, why: str = "") -> None:
    """Raise unless ``low <= value <= high`` (``low < value`` with ``low_open``).

    Args:
        option: The option as typed (``--max-edges``).
        value: The value given.
        low: Smallest allowed value (``None``: no bound).
        high: Largest allowed value (``None``: no bound).
        low_open: ``low`` itself is not allowed.
        why: Optional reason appended to the message.

    Raises:
        InvalidParameterError: naming the option, the allowed range and the value.
    """
    ok = not (isinstance(value, float) and math.isnan(value))
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value <= high
    if ok:
        return
    if low is not None and high is not None:
        rule = f"in ({low}, {high}]" if low_open else f"in [{low}, {high}]"
    elif low is not None:
        rule = f"> {low}" if low_open else f">= {low}"
    else:
        rule = f"<= {high}"
    raise InvalidParameterError(f"{option} must be {rule}{f' ({why})' if why else ''}; got "
                                f"{value}.")
