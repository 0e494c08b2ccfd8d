"""Matching request paths against the globs of the path settings."""

from __future__ import annotations

import fnmatch
import posixpath
import re
from collections.abc import Iterable

# An empty, "." or ".." segment: such a path never matches a relaxing glob.
_ABNORMAL = re.compile(r"//|(?:^|/)\.{1,2}(?:/|$)")


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
        """Whether ``path`` (a WSGI ``PATH_INFO``) matches one of the globs.

        For globs that *relax* checks (public paths): a path with empty, ``.``
        or ``..`` segments never matches.
        """
        if self._regex is None or self._regex.match(path) is None:
            return False
        return _ABNORMAL.search(path) is None

    def covers(self, path: str) -> bool:
        """Whether ``path`` or any spelling of it matches one of the globs.

        For globs that *add* checks (rules, protected paths): ``/admin/../x``,
        ``//admin`` and ``/admin/`` are tried as ``/x``, ``/admin`` and
        ``/admin`` too, so that no spelling escapes a rule however the
        application's router reads it.
        """
        if self._regex is None:
            return False
        normal = posixpath.normpath("/" + path.lstrip("/")) if path else "/"
        candidates = {path, normal, normal.rstrip("/") or "/", path.rstrip("/") or "/"}
        return any(self._regex.match(candidate) for candidate in candidates)
