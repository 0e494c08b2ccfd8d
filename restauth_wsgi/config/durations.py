"""Durations as users write them: ``90s``, ``15m``, ``12h``, ``30d``, ``1y``."""

from __future__ import annotations

import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
# ASCII digits only: \d matches "٣" too, which int() reads as 3.
_DURATION = re.compile(r"([0-9]{1,9})\s*([smhdwy]?)")


def parse_duration(text: str) -> int:
    """Return the number of seconds that ``text`` means.

    A bare number is seconds; a suffix ``s``, ``m``, ``h``, ``d``, ``w`` or
    ``y`` (365 days) scales it.

    :raises ValueError: with a message a user can act on.
    """
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(
            f"{text!r} is not a duration; write a number with an optional unit "
            "s, m, h, d, w or y, e.g. 30d"
        )
    number, unit = match.groups()
    return int(number) * _UNITS[unit or "s"]


def format_duration(seconds: int) -> str:
    """Return ``seconds`` in the largest unit that divides it, e.g. ``30d``."""
    for unit in ("y", "w", "d", "h", "m"):
        size = _UNITS[unit]
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
