"""Reading the line-based files settings point to (``RESTAUTH_SETTINGS_FILE``,
``RESTAUTH_PASSWORD_FILE``): one rule for comments, one answer for a file
that cannot be read."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

from restauth_wsgi.errors import ConfigurationError


def content_lines(
    path: str | os.PathLike[str], error: Callable[[str], ConfigurationError]
) -> Iterator[tuple[int, str]]:
    """The file's lines with their numbers (from 1), stripped, skipping blank
    lines and ``#`` comments.

    :param error: builds the error to raise from a problem such as
        ``"cannot be read: No such file or directory"`` or ``"is not UTF-8"``,
        so that it names the setting.
    :raises ConfigurationError: from ``error``.
    """
    try:
        with open(path, encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                text = line.strip()
                if text and not text.startswith("#"):
                    yield number, text
    except OSError as exc:
        raise error(f"cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise error("is not UTF-8") from None
