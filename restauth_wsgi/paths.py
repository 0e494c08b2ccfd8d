"""Matching request paths against the globs of the path settings."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable


class PathGlobs:
    """A set of path globs (``/health``, ``/static/*``), compiled once.

    ``*`` matches any characters, ``/`` included. Paths with empty, ``.``
    or ``..`` segments never match, so ``/static/../admin`` cannot pass for
    a public path whatever the application's router makes of it.
    """

    def __init__(self, globs: Iterable[str]) -> None:
        self.globs = tuple(globs)
        pattern = "|".join(fnmatch.translate(glob) for glob in self.globs)
        self._regex = re.compile(pattern) if pattern else None

    def matches(self, path: str) -> bool:
        """Whether ``path`` (a WSGI ``PATH_INFO``) matches one of the globs."""
        if self._regex is None or self._regex.match(path) is None:
            return False
        return "//" not in path and not any(s in (".", "..") for s in path.split("/"))
