"""JSON as RFC 8259 defines it, for everything read from outside.

Python's ``json`` accepts ``NaN``, ``Infinity`` and ``-Infinity``, and
reads ``1e999`` as infinity. In a token's ``exp`` or a provider's answer
those mean "never expires" (every comparison with NaN is false), so they
are refused here, as PyJWT refuses them.
"""

from __future__ import annotations

import json
import math
from typing import Any


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is out of range")
    return value


_decoder = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite)

#: Parse JSON text (``str``), refusing non-finite numbers; raises ``ValueError``.
loads = _decoder.decode


def loads_bytes(data: bytes) -> Any:
    """Parse UTF-8 JSON bytes strictly.

    :raises ValueError: for anything that is not UTF-8 JSON text with finite numbers.
    """
    return loads(data.decode("utf-8"))


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise ValueError(f"the key {key[:40]!r} appears twice in one object")
        found[key] = value
    return found


_unique_decoder = json.JSONDecoder(
    parse_constant=_no_constant, parse_float=_finite, object_pairs_hook=_unique_keys
)

#: Parse JSON text as :data:`loads` does, refusing too an object that names a
#: key twice (which one would count is a matter of parsers: a request body
#: must mean one thing). Raises ``ValueError``.
loads_unique = _unique_decoder.decode


_NUMBERS = frozenset({int, float})


def finite_number(value: object) -> float | None:
    """A JSON number (never a boolean) as a finite float; ``None`` for anything
    else, an integer too large for a float included (``10**400``: arithmetic
    with it raises OverflowError)."""
    if type(value) not in _NUMBERS:
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except OverflowError:
        return None
    return number if math.isfinite(number) else None
