"""Request paths as the application's router will see them, and path globs.

``PATH_INFO`` is the path's UTF-8 bytes decoded as latin-1 (PEP 3333), with
``%XX`` already decoded once by the server. Routers decode it as UTF-8
(werkzeug, Django) and some resolve ``..`` (Pyramid traversal), merge
``//``, redirect ``/a`` to ``/a/`` or read ``@@name`` as the view ``name``
(Pyramid traversal: ``/@@admin`` is the ``admin`` view of ``/``). So a path has one *canonical*
spelling and many others that a router may resolve to the same resource,
and two kinds of glob use them differently:

* a glob that **adds** a check (protected paths, rules, what a restricted
  token is refused) must **cover** every spelling that could resolve to a
  covered path: ``/x/../rest/``, ``//rest/``, ``/rest/./admin``, a second
  round of ``%2e%2e`` decoding, ``/rest/@@admin`` as ``/rest/admin``, the
  path with and without its trailing slash;
* a glob that **relaxes** one (public and optional paths, password paths,
  what a restricted token is granted) **matches** only a canonical path:
  one with no empty, ``.`` or ``..`` segment however it is decoded, valid
  UTF-8, no backslash, no segment starting ``@@``. Anything else gets the
  stricter treatment.

Matching is case-sensitive, as the routers' is.
"""

from __future__ import annotations

import fnmatch
import functools
import re
import urllib.parse
from collections.abc import Iterable

# Any of these in a decoded path may make a router read it differently.
_SUSPECT = re.compile(r"//|/\.|/@@|\\|%|^[^/]|[^\x00-\x7f]")
# A traversal view named in a segment: ``@@name`` (Pyramid, Zope).
_VIEW_NAME = re.compile(r"(?<=/)@@")


class RequestPath:
    """One request's path: the canonical text and every spelling of it.

    :param text: the path as the router decodes it (UTF-8).
    :param canonical: whether ``text`` is the path's only spelling that a
        relaxing glob may match.
    :param spellings: every path a router could resolve this one to (for
        globs that add checks), ``text`` first.
    """

    __slots__ = ("canonical", "spellings", "text")

    def __init__(self, text: str, canonical: bool, spellings: tuple[str, ...]) -> None:
        self.text = text
        self.canonical = canonical
        self.spellings = spellings

    def __repr__(self) -> str:
        return f"RequestPath({self.text!r}, canonical={self.canonical})"


#: Paths up to this long are remembered once described (real paths are
#: shorter; a client that sends long ones must not fill memory with them).
REMEMBERED_PATH_LENGTH = 512


def request_path(path_info: str) -> RequestPath:
    """Describe a WSGI ``PATH_INFO`` (latin-1 text of UTF-8 bytes).

    Paths repeat, request after request: the descriptions of short ones are
    kept (bounded in number and size).
    """
    if len(path_info) <= REMEMBERED_PATH_LENGTH:
        return remembered_path(path_info)
    return _describe(path_info)


def _describe(path_info: str) -> RequestPath:
    if not _SUSPECT.search(path_info):
        # The common case, kept cheap: ASCII, absolute, nothing to resolve.
        return RequestPath(path_info, True, (path_info, _toggle_slash(path_info)))
    try:
        text = path_info.encode("latin-1").decode("utf-8")
        valid = True
    except UnicodeEncodeError:  # a server that already decoded it
        text, valid = path_info, True
    except UnicodeDecodeError:
        text, valid = path_info.encode("latin-1").decode("utf-8", "replace"), False
    if not text:
        return RequestPath("/", True, ("/",))
    resolved = _resolve(text)
    canonical = valid and resolved == text and "\\" not in text
    spellings = {text, resolved, _toggle_slash(resolved)}
    # Routers that decode a second time, or take a backslash for a slash.
    for variant in (urllib.parse.unquote(text), text.replace("\\", "/")):
        if variant != text:
            again = _resolve(variant)
            canonical = canonical and again == variant
            spellings |= {variant, again, _toggle_slash(again)}
    # Traversal serves ``/a/@@b`` as the view ``b`` of ``/a``: covered as
    # ``/a/b`` too, and never canonical (a public ``/a/*`` must not hand any
    # view of that name to anyone).
    named = {_VIEW_NAME.sub("", spelling) for spelling in spellings}
    if named - spellings:
        canonical = False
        spellings |= named
    ordered = (text, *sorted(spellings - {text}))
    return RequestPath(text, canonical, ordered)


#: :func:`request_path` for a path of at most :data:`REMEMBERED_PATH_LENGTH`
#: characters, straight from the bounded cache (for the hot path, which
#: checks the length itself and saves a call).
remembered_path = functools.lru_cache(maxsize=4096)(_describe)


def _resolve(path: str) -> str:
    """``path`` with empty, ``.`` and ``..`` segments resolved, its trailing slash kept."""
    segments: list[str] = []
    parts = path.split("/")
    for part in parts:
        if part in ("", "."):
            continue
        if part == "..":
            if segments:
                segments.pop()
            continue
        segments.append(part)
    resolved = "/" + "/".join(segments)
    if segments and parts[-1] in ("", ".", ".."):
        resolved += "/"
    return resolved


def _toggle_slash(path: str) -> str:
    """The same path with its trailing slash removed, or added."""
    if path == "/":
        return path
    return path[:-1] if path.endswith("/") else path + "/"


class PathGlobs:
    """A set of path globs (``/health``, ``/static/*``), compiled once.

    ``*`` matches any characters, ``/`` included.
    """

    def __init__(self, globs: Iterable[str]) -> None:
        self.globs = tuple(globs)
        pattern = "|".join(fnmatch.translate(glob) for glob in self.globs)
        self._match = re.compile(pattern).match if pattern else None

    def __bool__(self) -> bool:
        return self._match is not None

    def matches(self, path: RequestPath) -> bool:
        """For globs that *relax* a check: only a canonical path can match."""
        return self._match is not None and path.canonical and self._match(path.text) is not None

    def covers(self, path: RequestPath) -> bool:
        """For globs that *add* a check: any spelling of the path that matches."""
        match = self._match
        return match is not None and any(match(spelling) for spelling in path.spellings)
