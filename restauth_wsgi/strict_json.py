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
