"""Real Redis, memcached and PostgreSQL for the tests.

Redis and memcached run as private processes on free ports, so a test can
stop and restart them. PostgreSQL is the machine's server (127.0.0.1:5432);
each run gets a fresh database, and a TCP proxy in front of it stands for a
network path that can be cut.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator

from .helpers import free_port, need, wait_for_port

POSTGRES_ADMIN = os.environ.get(
    "RESTAUTH_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)


class ServerProcess:
    """A server binary run on a free loopback port; stop and start at will."""

    def __init__(self, command: list[str], port: int) -> None:
        self.command = command
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for_port(self.port, self.process)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None


@contextlib.contextmanager
def redis_server() -> Iterator[ServerProcess]:
    """A private Redis on a free port."""
    binary = shutil.which("redis-server")
    need(binary is not None, "redis-server is not installed")
    port = free_port()
    server = ServerProcess(
        [
            str(binary),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        port,
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def memcached_server() -> Iterator[ServerProcess]:
    """A private memcached on a free port (Debian's package: apt-get install memcached)."""
    binary = shutil.which("memcached")
    need(binary is not None, "memcached is not installed (apt-get install memcached)")
    port = free_port()
    server = ServerProcess(
        [str(binary), "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-u", "nobody"], port
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def postgres_available() -> str | None:
    """Why PostgreSQL cannot be used here, or ``None``."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install 'restauth-wsgi[postgresql]')"
    try:
        with psycopg.connect(POSTGRES_ADMIN, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return f"no PostgreSQL at {POSTGRES_ADMIN}: {exc}"


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh database for one test (or run); dropped afterwards. Yields its URL."""
    import psycopg

    why = postgres_available()
    need(why is None, str(why))
    name = f"restauth_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class TcpProxy:
    """Forwards a loopback port to a target; :meth:`cut` drops every connection
    and refuses new ones until :meth:`restore`, as a failed server or network would."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        #: While set, nothing is forwarded and nothing is closed: a server
        #: (or the path to it) that has stopped answering.
        self.frozen = threading.Event()
        #: While set, the next connection accepted gets the server's bytes
        #: one every 0.3 s (each within any per-receive timeout); cleared then.
        self.drip_next = threading.Event()
        #: Set once a dripping connection has been accepted.
        self.dripping = threading.Event()
        #: Seconds each chunk of the server's bytes is held back, on every
        #: connection, while it is more than 0: a slow server or path.
        self.delay = 0.0
        #: Client sides of connections whose server bytes are held back by
        #: ``delay_open`` seconds (see :meth:`slow_down_open`).
        self._slowed: set[socket.socket] = set()
        self.delay_open = 0.0
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen(64)
        except OSError:
            listener.close()
            raise
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def slow_down_open(self, delay: float) -> None:
        """Hold back the server's bytes by ``delay`` seconds on the connections
        open now; connections made later are at full speed."""
        with self._lock:
            self.delay_open = delay
            self._slowed = set(self._sockets)

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            # close() alone does not wake a thread blocked in accept() on
            # Linux, and the socket would go on accepting; shutdown() does.
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            for sock in list(self._sockets):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.update((client, upstream))
            drip = self.drip_next.is_set()
            self.drip_next.clear()
            threading.Thread(target=self._pump, args=(client, upstream, drip), daemon=True).start()
            if drip:
                self.dripping.set()

    def _pump(self, a: socket.socket, b: socket.socket, drip: bool = False) -> None:
        pair = {a: b, b: a}
        try:
            while True:
                readable, _, _ = select.select(list(pair), [], [], 1.0)
                if self.frozen.is_set():
                    time.sleep(0.05)
                    continue
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is b and self.delay > 0:
                        time.sleep(self.delay)
                    if sock is b and a in self._slowed:
                        time.sleep(self.delay_open)
                    if drip and sock is b:
                        for byte in data:
                            pair[sock].sendall(bytes([byte]))
                            time.sleep(0.3)
                        continue
                    pair[sock].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            with self._lock:
                for sock in (a, b):
                    self._sockets.discard(sock)
                    with contextlib.suppress(OSError):
                        sock.close()
