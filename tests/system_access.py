"""Let a service user reach files under private directories, for one test only.

mod_wsgi runs Python as the Apache user, and on these machines the Python
lives under ``/root`` (mode 0700 or 0710). The least change that lets that
user in is a traverse-only ACL entry (``u:www-data:--x``) on the directories
it cannot pass, and only on those: granted top-down, because a directory
below an untraversable one looks untraversable too, and a named-user entry on
a directory that is world ``r-x`` *removes* the read right for that user
(Apache's Python then dies with "No module named 'encodings'", WSGI0036).
Every ACL touched is saved first and restored exactly on exit, so the machine
is left as it was.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path


def can(user: str, test: str, path: Path) -> bool:
    """Whether ``user`` passes ``test -<test> path`` (``x``, ``r``...)."""
    done = subprocess.run(["runuser", "-u", user, "--", "test", f"-{test}", str(path)])
    return done.returncode == 0


def _directories_top_down(path: Path) -> list[Path]:
    path = path.resolve()
    return [*reversed(path.parents), path] if path.is_dir() else [*reversed(path.parents)]


@contextlib.contextmanager
def reachable_by(user: str, paths: Iterable[Path]) -> Iterator[list[Path]]:
    """Let ``user`` traverse to each of ``paths``; yield the directories granted.

    Raises :class:`RuntimeError` (naming the command) when ``setfacl`` is missing.
    """
    saved: list[tuple[Path, str]] = []
    try:
        for target in paths:
            for directory in _directories_top_down(target):
                if can(user, "x", directory):
                    continue
                if shutil.which("setfacl") is None:
                    raise RuntimeError("setfacl is missing (apt-get install acl)")
                before = subprocess.run(
                    ["getfacl", "--absolute-names", "-p", str(directory)],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
                saved.append((directory, before))
                subprocess.run(["setfacl", "-m", f"u:{user}:x", str(directory)], check=True)
        yield [directory for directory, _ in saved]
    finally:
        for _directory, before in reversed(saved):
            with tempfile.NamedTemporaryFile("w", suffix=".acl") as acl:
                acl.write(before)
                acl.flush()
                subprocess.run(["setfacl", f"--restore={acl.name}"], check=True)
