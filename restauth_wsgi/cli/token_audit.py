"""The audit lines of the token changes ``restauth token`` makes.

The command writes its lines itself, not through :mod:`logging`, whose
handlers swallow write errors: a creation whose line cannot be written is
undone, and a revocation (the safe direction) stands but the command fails
saying so. With ``RESTAUTH_AUDIT_LOG`` unset there is no line, as for the
middleware when nothing handles the ``restauth.audit`` logger.
"""

from __future__ import annotations

import errno
import os
import pwd
import stat
import sys
from types import TracebackType

from restauth_wsgi.audit import token_event_line
from restauth_wsgi.cli.output import CommandError
from restauth_wsgi.identity import Identity
from restauth_wsgi.tokens.store import TokenRecord


def operator() -> Identity:
    """The account running the command: the actor of its audit lines.

    The system's name for the process's user id, not ``getpass.getuser()``,
    which believes ``LOGNAME`` and ``USER`` (an audit line must not name
    whoever the environment says).
    """
    uid = os.getuid()
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:  # no passwd entry: a container's bare uid
        name = f"uid:{uid}"
    return Identity(name, "cli", "cli")


class CommandAudit:
    """Where a command's ``token_created``/``token_revoked`` lines go.

    Opened before any change, so that a log that cannot be opened stops the
    command before it changes anything.

    :param target: ``RESTAUTH_AUDIT_LOG``: a file, ``stderr``, or ``None``.
    """

    def __init__(self, target: str | None) -> None:
        self.target = target
        self._fd: int | None = None
        if target and target != "stderr":
            try:
                self._fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            except OSError as exc:
                raise CommandError(
                    f"RESTAUTH_AUDIT_LOG={target}: cannot write the audit log ({exc.strerror})"
                ) from None

    def write(self, event: str, record: TokenRecord) -> None:
        """Write the line of ``event`` on ``record``, to disk before returning.

        :raises OSError: when it could not be written whole.
        """
        if not self.target:
            return
        line = token_event_line(event, actor=operator(), record=record, client=None) + "\n"
        if self._fd is None:
            sys.stderr.write(line)
            sys.stderr.flush()
            return
        data = line.encode()
        if os.write(self._fd, data) != len(data):  # O_APPEND: one write, one line
            raise OSError(errno.EIO, "the audit line was written in part")
        if stat.S_ISREG(os.fstat(self._fd).st_mode):
            os.fsync(self._fd)

    def close(self) -> None:
        """Close the file, if one was opened."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> CommandAudit:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()
