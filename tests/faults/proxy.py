"""Proxy: a loopback TCP proxy of our own in front of a MySQL server, breaking connections on cue.

The failures a store must type correctly are those of a network between it and its server: a
connection reset in the middle of a transaction, one reset after COMMIT reached the server but
before its answer came back, and a server that accepts and never says a word. A real server
killed or stopped gives only some of them, and never at a chosen point of the protocol; this
proxy reads the MySQL packets the client sends (a 3-byte length, a sequence number, the
payload; a command is a packet of sequence 0 whose payload starts with the command byte, 0x03
for COM_QUERY) and acts at the statement it is told to. mysqlclient's ``conn.commit()`` sends
COM_QUERY "COMMIT" too, so the fast path's commits are seen like the Core path's.

    with Proxy(server_port) as proxy:
        store = schemaless.connect(proxy.url(database_url))
        proxy.mode = Mode.RESET_AFTER_COMMIT
        store.put(...)            # raises OutcomeUnknown; the row is on the server

Modes (switched at any time; they act on connections already open as on new ones):

- ``PASS``: bytes go through untouched.
- ``RESET_BEFORE_COMMIT``: the first write of a transaction (INSERT, UPDATE, DELETE, REPLACE)
  goes through; at the next statement the client connection is reset (RST, by ``SO_LINGER``
  0) and the server connection closed, so COMMIT never reaches the server, and the client has
  not sent it either: it can know its write did not happen.
- ``RESET_AT_COMMIT``: COMMIT itself is swallowed and the connection reset. The write did not
  happen, but the client sent COMMIT and cannot know that: an honest client says the outcome is
  unknown.
- ``RESET_AFTER_COMMIT``: COMMIT is forwarded; when the server's answer arrives it is dropped
  and the client connection reset. The write happened; the client cannot know that either.
- ``BLACKHOLE``: nothing is forwarded in either direction and nothing is answered; new
  connections are accepted and never hear a greeting.

Only 127.0.0.1 is used, on both sides. One thread accepts, one thread serves each connection.
"""

from __future__ import annotations

import contextlib
import enum
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from sqlalchemy.engine import make_url

_HEADER = 4
_COM_QUERY = 0x03
_WRITES = (b"INSERT", b"UPDATE", b"DELETE", b"REPLACE")
_ENDS = (b"COMMIT", b"ROLLBACK")
_POLL = 0.05  # seconds a thread waits before it looks at the stop flag again


class Mode(enum.Enum):
    PASS = "pass"
    RESET_BEFORE_COMMIT = "reset before commit"
    RESET_AT_COMMIT = "reset at commit"
    RESET_AFTER_COMMIT = "reset after commit"
    BLACKHOLE = "blackhole"


class Proxy:
    """Listens on a free port of 127.0.0.1 and relays to ``target_port`` there."""

    def __init__(self, target_port: int, mode: Mode = Mode.PASS) -> None:
        self.target_port = target_port
        self.mode = mode
        self.resets = 0  # connections reset so far: a test checks its fault did fire
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self._listener.settimeout(_POLL)
        self.port: int = self._listener.getsockname()[1]
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, name="proxy-accept", daemon=True)

    def __enter__(self) -> Proxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> Proxy:
        self._acceptor.start()
        return self

    def stop(self) -> None:
        """Close the listener and every connection, and wait for the threads."""
        self._stopping.set()
        self._acceptor.join(timeout=5)
        self._listener.close()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=5)

    def url(self, database_url: str) -> str:
        """``database_url`` (of the target server) pointed at the proxy instead."""
        parsed = make_url(database_url).set(host="127.0.0.1", port=self.port)
        return parsed.render_as_string(hide_password=False)

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=_Relay(self, client).run, daemon=True)
            with self._lock:
                self._threads = [t for t in self._threads if t.is_alive()]
                self._threads.append(thread)
            thread.start()

    def _count_reset(self) -> None:
        with self._lock:
            self.resets += 1


class _Relay:
    """One client connection and its server connection, served by one thread."""

    def __init__(self, proxy: Proxy, client: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.server: socket.socket | None = None
        self.pending = bytearray()  # client bytes not yet a whole packet
        self.wrote = False  # the open transaction has sent a write
        self.awaiting_commit = False  # COMMIT forwarded; its answer is to be dropped
        self.done = False

    def run(self) -> None:
        try:
            if self.proxy.mode is not Mode.BLACKHOLE:
                self.server = socket.create_connection(("127.0.0.1", self.proxy.target_port), 5)
            while not self.done and not self.proxy._stopping.is_set():
                sockets = [self.client] if self.server is None else [self.client, self.server]
                readable, _, _ = select.select(sockets, [], [], _POLL)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:  # one side closed: close the other
                        self.done = True
                    elif sock is self.client:
                        self._from_client(data)
                    else:
                        self._from_server(data)
                    if self.done:
                        break
        except OSError:
            pass
        finally:
            self._close()

    def _silent(self) -> bool:
        return self.server is None or self.proxy.mode is Mode.BLACKHOLE

    def _from_client(self, data: bytes) -> None:
        if self._silent():
            return  # read and dropped: the client hears nothing
        self.pending += data
        while len(self.pending) >= _HEADER:
            length = int.from_bytes(self.pending[:3], "little")
            if len(self.pending) < _HEADER + length:
                return
            packet = bytes(self.pending[: _HEADER + length])
            del self.pending[: _HEADER + length]
            if not self._relay_packet(packet):
                self._reset()
                return

    def _relay_packet(self, packet: bytes) -> bool:
        """Forward one client packet; False when the connection is to be reset instead."""
        assert self.server is not None
        statement = _statement(packet)
        mode = self.proxy.mode
        if statement is not None:
            if mode is Mode.RESET_BEFORE_COMMIT and self.wrote:
                return False
            if mode is Mode.RESET_AT_COMMIT and statement.startswith(b"COMMIT"):
                return False
            if mode is Mode.RESET_AFTER_COMMIT and statement.startswith(b"COMMIT"):
                self.awaiting_commit = True
            if statement.startswith(_ENDS):
                self.wrote = False
            elif statement.startswith(_WRITES):
                self.wrote = True
        self.server.sendall(packet)
        return True

    def _from_server(self, data: bytes) -> None:
        if self.awaiting_commit:  # the server has committed: its answer never arrives
            self._reset()
        elif not self._silent():
            self.client.sendall(data)

    def _reset(self) -> None:
        """Reset the client connection (RST, not FIN) and drop the server's."""
        with contextlib.suppress(OSError):
            self.client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.proxy._count_reset()
        self.done = True

    def _close(self) -> None:
        for sock in (self.client, self.server):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()


def _statement(packet: bytes) -> bytes | None:
    """The upper-cased start of a COM_QUERY's text; None for any other packet."""
    if packet[3] != 0 or len(packet) <= _HEADER or packet[_HEADER] != _COM_QUERY:
        return None  # not a command (a handshake or continuation packet), or not a query
    return packet[_HEADER + 1 : _HEADER + 65].lstrip().upper()


def timed(call: Callable[[], Any]) -> tuple[float, BaseException | None]:
    """How long ``call()`` took, and what it raised (None when it returned)."""
    started = time.monotonic()
    try:
        call()
    except Exception as exc:
        return time.monotonic() - started, exc
    return time.monotonic() - started, None
