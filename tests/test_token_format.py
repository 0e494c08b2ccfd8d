"""The API token format: recognisable, checksummed, hashed."""

from __future__ import annotations

import re

import pytest

from restauth_wsgi.tokens import format as token_format


def test_generated_tokens_parse_and_match_the_scanner_pattern() -> None:
    raw, parsed = token_format.generate()
    assert raw.startswith("restauth_")
    assert len(raw) == token_format.TOKEN_LENGTH
    assert re.fullmatch(token_format.SCANNER_PATTERN, raw)
    assert token_format.parse(raw) == parsed
    assert parsed.token_id == raw[9:21]
    assert raw not in parsed.secret_hash
    assert parsed.secret_hash == token_format.hash_token(raw)


def test_secret_has_at_least_160_bits() -> None:
    assert token_format.SECRET_LENGTH * 5.954 >= 160  # log2(62) bits per character


def test_tokens_differ() -> None:
    assert len({token_format.generate()[0] for _ in range(200)}) == 200


def _typos(raw: str) -> list[str]:
    start = len(token_format.PREFIX)
    variants = []
    for i in range(start, len(raw)):
        if raw[i] == "_":
            continue
        replacement = "a" if raw[i] != "a" else "b"
        variants.append(raw[:i] + replacement + raw[i + 1 :])
        if i + 1 < len(raw) and raw[i + 1] not in ("_", raw[i]):
            variants.append(raw[:i] + raw[i + 1] + raw[i] + raw[i + 2 :])
    return variants


def test_every_single_typo_and_swap_is_caught_by_the_checksum() -> None:
    raw, _ = token_format.generate()
    typos = _typos(raw)
    assert len(typos) > 80
    for typo in typos:
        with pytest.raises(token_format.MalformedToken):
            token_format.parse(typo)


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        pytest.param(lambda t: t[:-1], "wrong length", id="truncated"),
        pytest.param(lambda t: t + "x", "wrong length", id="extended"),
        pytest.param(lambda t: t.replace("_", "-", 2), "characters", id="separator"),
        pytest.param(lambda t: t[:30] + "é" + t[31:], "characters", id="non-ascii"),
    ],
)
def test_malformed_tokens(mangle: object, message: str) -> None:
    raw, _ = token_format.generate()
    with pytest.raises(token_format.MalformedToken, match=message):
        token_format.parse(mangle(raw))  # type: ignore[operator]
