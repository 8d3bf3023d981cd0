"""A private, throw-away MySQL-family server for tests and benchmarks.

schemaless is tested against a real server, never a mock (DESIGN section 6), and a test suite
must not depend on a server someone set up by hand, nor touch the data in one. `MySQLServer`
starts a `mariadbd` (or MySQL 8 `mysqld`) of its own: a fresh data directory in a temporary
directory, a free port on 127.0.0.1, no option files read, a root account that connects over
TCP with no password, and durability relaxed for speed unless asked. It starts in about a
second and leaves nothing behind when stopped.

    from schemaless.testing import MySQLServer

    with MySQLServer() as server:
        url = server.create_database("app")   # mysql+mysqldb://root@127.0.0.1:PORT/app?...
        store = schemaless.connect(url)

`kill()` ends the server with SIGKILL and keeps its data, so that a fault test can `start()` it
again on the same port and watch InnoDB recover. `create_database()` and `drop_database()` also
exist as functions taking a server URL, for a server you run yourself.

A server can also be a replication primary (``binlog=True``: a binary log in ROW format, GTIDs)
and another one its replica, on loopback, started from an empty binary log so that everything
the primary ever held replicates:

    with MySQLServer(binlog=True) as primary, MySQLServer.replica_of(primary) as replica:
        url = primary.create_database("app")
        replica.catch_up()                     # waits until it applied all the primary wrote
        replica.stop_replication()             # STOP SLAVE: it keeps serving, stale

`Memcached` does the same for a private memcached, in front of which the cache is tested.

Only the standard library is imported here; the drivers are imported when first needed.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = [
    "Memcached",
    "MySQLServer",
    "actual_rows",
    "create_database",
    "drop_database",
    "expected_rows",
    "mysql_connection",
    "run_command",
]

_SEARCH_PATH = os.pathsep.join(
    [os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin", "/usr/bin"]
)
_NAME = re.compile(r"[a-z][a-z0-9_]{0,47}")


class _Process:
    """A server process of our own that a test may crash, freeze and thaw."""

    _process: subprocess.Popen[bytes] | None = None

    def kill(self) -> None:
        """End it with SIGKILL, as a crash would (a MySQLServer keeps its data for start())."""
        if self._process is not None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait()
            self._process = None

    def pause(self) -> None:
        """Stop it with SIGSTOP: it keeps its connections and its data, and answers nothing.

        Returns once every thread of it has stopped: a signal is delivered to each thread when
        it next runs, and a query sent right after the signal was seen answered.
        """
        if self._process is not None:
            self._process.send_signal(signal.SIGSTOP)
            _wait_stopped(self._process.pid)

    def resume(self) -> None:
        """Let a paused process go on (SIGCONT), as if nothing had happened."""
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)


class MySQLServer(_Process):
    """A MariaDB or MySQL server of our own, on a free port of 127.0.0.1.

    `durable=False` (the default) flushes InnoDB's log once a second instead of at every
    commit (`innodb_flush_log_at_trx_commit=2`): a crash of the server process still loses
    nothing, only a crash of the machine would. Pass `durable=True` to measure real commits.
    `binlog=True` keeps a binary log (ROW format, with GTIDs), for replicas to read; made with
    :meth:`replica_of`, a server replicates another from its first start (MariaDB only).
    """

    def __init__(
        self, *, durable: bool = False, startup_timeout: float = 60.0, binlog: bool = False
    ) -> None:
        self.durable = durable
        self.startup_timeout = startup_timeout
        self.binlog = binlog
        self.primary: MySQLServer | None = None  # the server this one replicates, if any
        self.port = 0
        self._dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the server, naming no database."""
        return f"mysql+mysqldb://root@127.0.0.1:{self.port}/"

    def __enter__(self) -> MySQLServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> MySQLServer:
        """Start the server and return once it accepts connections.

        The first start creates the data directory; a start after `kill()` reuses it and the
        port, so URLs handed out before stay valid.
        """
        if self._process is not None and self._process.poll() is None:
            return self
        binary = _find_server()
        try:
            first = self._dir is None
            if self._dir is None:
                self._dir = Path(tempfile.mkdtemp(prefix="schemaless-mysql-"))
                _initialize(binary, self._dir, self._options())
                self.port = _free_port()
            self._launch(binary)
            self._wait_until_ready()
            if first and self.primary is not None:
                self._replicate(binary)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Shut the server down cleanly (SIGTERM, then SIGKILL) and delete its files."""
        if self._process is not None:
            self.resume()  # a paused server would never see the SIGTERM
            self._process.terminate()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
            self._process = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    @classmethod
    def replica_of(cls, primary: MySQLServer, **options: Any) -> MySQLServer:
        """A server that, once started, replicates ``primary`` (a ``binlog=True`` server,
        started first) over loopback with GTIDs (``MASTER_USE_GTID=slave_pos``), from the
        start of its binary log. Restarted after :meth:`kill`, it resumes where it stopped."""
        if not primary.binlog:
            raise ValueError("a replica needs a primary started with binlog=True")
        replica = cls(**options)
        replica.primary = primary
        return replica

    def stop_replication(self) -> None:
        """STOP SLAVE: the replica keeps answering, with what it applied so far."""
        _execute(self.url, "STOP SLAVE")

    def start_replication(self) -> None:
        """START SLAVE: the replica catches up from where it stopped."""
        _execute(self.url, "START SLAVE")

    def catch_up(self, timeout: float = 30.0) -> None:
        """Wait until this replica applied everything its primary has logged so far."""
        assert self.primary is not None, "not a replica"
        connection = mysql_connection(self.primary.url)
        try:
            cursor = connection.cursor()
            cursor.execute("SELECT @@global.gtid_binlog_pos")
            position = cursor.fetchone()[0]
        finally:
            connection.close()
        connection = mysql_connection(self.url)
        try:
            cursor = connection.cursor()
            cursor.execute("SELECT MASTER_GTID_WAIT(%s, %s)", (position, timeout))
            if cursor.fetchone()[0] != 0:
                raise RuntimeError(f"replica on port {self.port} did not reach {position}")
        finally:
            connection.close()

    def create_database(self, name: str) -> str:
        """Create an empty utf8mb4 database and return its URL."""
        return create_database(self.url, name)

    def drop_database(self, name: str) -> None:
        """Drop a database if it exists."""
        drop_database(self.url, name)

    def _options(self) -> list[str]:
        """The server options shared by initialization and every start."""
        assert self._dir is not None
        options = [
            f"--datadir={self._dir / 'data'}",
            f"--secure-file-priv={self._dir}",
            # Its own temporary files: mariadb-install-db's temporary tables in a shared /tmp
            # collided when several servers were set up at once.
            f"--tmpdir={self._dir}",
            "--innodb-buffer-pool-size=128M",
            "--innodb-log-file-size=48M",
            "--character-set-server=utf8mb4",
        ]
        # mariadbd and mysqld refuse to run as root unless told to.
        return [*options, "--user=root"] if os.geteuid() == 0 else options

    def _launch(self, binary: str) -> None:
        assert self._dir is not None
        flush = 1 if self.durable else 2
        command = [
            binary,
            "--no-defaults",  # must come first: never read /etc/mysql
            *self._options(),
            "--bind-address=127.0.0.1",
            f"--port={self.port}",
            "--skip-networking=0",
            f"--socket={self._dir / 'mysqld.sock'}",
            f"--pid-file={self._dir / 'mysqld.pid'}",
            f"--server-id={self.port}",  # unique on this machine, as replication needs
            *self._replication_options(),
            f"--innodb-flush-log-at-trx-commit={flush}",
            "--max-connections=500",
        ]
        if not _is_mariadb(binary):
            command.append("--mysqlx=OFF")  # else every MySQL 8 server wants port 33060
        with open(self._dir / "error.log", "ab") as log:
            self._process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )

    def _replication_options(self) -> list[str]:
        assert self._dir is not None
        options = [f"--relay-log={self._dir / 'relay'}"] if self.primary is not None else []
        if not self.binlog:
            return [*options, "--skip-log-bin"]
        return [*options, f"--log-bin={self._dir / 'binlog'}", "--binlog-format=ROW"]

    def _replicate(self, binary: str) -> None:
        """Point this fresh server at its primary and start replicating, with GTIDs."""
        assert self.primary is not None
        if not _is_mariadb(binary):
            raise RuntimeError("replicas of private servers need MariaDB (mariadbd)")
        _execute(
            self.url,
            f"CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={self.primary.port}, "
            "MASTER_USER='root', MASTER_PASSWORD='', MASTER_USE_GTID=slave_pos, "
            "MASTER_CONNECT_RETRY=1",
            "START SLAVE",
        )

    def _wait_until_ready(self) -> None:
        import MySQLdb

        assert self._process is not None and self._dir is not None
        deadline = time.monotonic() + self.startup_timeout
        while True:
            try:
                MySQLdb.connect(host="127.0.0.1", port=self.port, user="root").close()
                return
            except MySQLdb.OperationalError as exc:
                error = exc
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the MySQL server on port {self.port} did not start ({error}); "
                    f"its log ends with:\n{_tail(self._dir / 'error.log')}"
                )
            time.sleep(0.05)


class Memcached(_Process):
    """A memcached of our own on a free port of 127.0.0.1, for the cache's tests and benchmark.

    ``kill()`` (SIGKILL) and ``pause()``/``resume()`` (SIGSTOP/SIGCONT) make a dead or a
    silent cache; ``start()`` after ``kill()`` starts an empty one on the same port.

        with Memcached() as cache:
            store = schemaless.connect(url, cache=cache.url)
    """

    def __init__(self, *, memory_mb: int = 64, startup_timeout: float = 10.0) -> None:
        self.memory_mb = memory_mb
        self.startup_timeout = startup_timeout
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"memcached://127.0.0.1:{self.port}"

    def __enter__(self) -> Memcached:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Memcached:
        """Start it and return once it accepts connections."""
        binary = shutil.which("memcached", path=_SEARCH_PATH)
        if binary is None:
            raise RuntimeError("memcached not found (Debian: apt-get install memcached)")
        self.port = self.port or _free_port()
        command = [binary, "-l", "127.0.0.1", "-p", str(self.port), "-U", "0"]
        command += ["-m", str(self.memory_mb), *(["-u", "root"] if os.geteuid() == 0 else [])]
        self._process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + self.startup_timeout
        while not _accepts(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                code = self._process.poll()
                self.stop()
                raise RuntimeError(f"memcached on port {self.port} did not start (exit {code})")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._process is not None:
            self.resume()
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None


def _wait_stopped(pid: int, timeout: float = 5.0) -> None:
    """Wait until every thread of process ``pid`` is stopped (state T in /proc), where Linux
    shows it; elsewhere a short sleep stands in."""
    tasks = Path(f"/proc/{pid}/task")
    if not tasks.is_dir():
        time.sleep(0.05)
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            states = [
                (task / "stat").read_text().rpartition(")")[2].split()[0]
                for task in tasks.iterdir()
            ]
        except OSError:  # a thread ended while we looked
            continue
        if all(state in ("T", "t") for state in states):
            return
        time.sleep(0.001)


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def create_database(server_url: str, name: str) -> str:
    """Create an empty utf8mb4 database on the server at `server_url`; return its URL."""
    from sqlalchemy.engine import make_url

    _execute(server_url, f"CREATE DATABASE `{_checked(name)}` CHARACTER SET utf8mb4")
    url = make_url(server_url).set(database=name)
    if "charset" not in url.query:
        url = url.update_query_dict({"charset": "utf8mb4"})
    return url.render_as_string(hide_password=False)


def drop_database(server_url: str, name: str) -> None:
    """Drop the database `name` on the server at `server_url`, if it exists."""
    drop = f"DROP DATABASE IF EXISTS `{_checked(name)}`"
    # A connection left inside a transaction would otherwise make the DROP wait for a day.
    _execute(server_url, "SET SESSION lock_wait_timeout = 30", drop)


def mysql_connection(url: str, **options: Any) -> Any:
    """A bare mysqlclient connection to the server of ``url`` (and its database, if it names
    one), for what the store's engines do not do: admin statements, hand-written anchors.

    ``options`` go to ``MySQLdb.connect`` (``charset``, ``autocommit``, ``init_command``...).
    """
    import MySQLdb
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.database:
        options.setdefault("database", parsed.database)
    return MySQLdb.connect(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 3306,
        user=parsed.username or "root",
        password=parsed.password or "",
        **options,
    )


def _execute(server_url: str, *statements: str) -> None:
    connection = mysql_connection(server_url)
    try:
        for sql in statements:
            connection.cursor().execute(sql)
    finally:
        connection.close()


def _checked(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(f"invalid database name {name!r}")
    return name


def _find_server() -> str:
    for name in ("mariadbd", "mysqld"):
        path = shutil.which(name, path=_SEARCH_PATH)
        if path:
            return path
    raise RuntimeError(
        "no MySQL-family server found (mariadbd or mysqld): install mariadb-server "
        "(Debian: apt-get install mariadb-server)"
    )


def _is_mariadb(binary: str) -> bool:
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True)
    return "mariadb" in version.stdout.lower()


def _initialize(binary: str, directory: Path, options: list[str]) -> None:
    """Create the system tables, with a root that logs in over TCP with no password."""
    if _is_mariadb(binary):
        install = shutil.which("mariadb-install-db", path=_SEARCH_PATH) or shutil.which(
            "mysql_install_db", path=_SEARCH_PATH
        )
        if install is None:
            raise RuntimeError("mariadb-install-db not found: install mariadb-server")
        # MariaDB's default root authenticates by unix socket only; "normal" gives
        # root@localhost and root@127.0.0.1 an empty password instead.
        command = [install, "--no-defaults", *options, "--skip-test-db"]
        command.append("--auth-root-authentication-method=normal")
    else:
        command = [binary, "--no-defaults", *options, "--initialize-insecure"]
    done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip().splitlines()[-20:]
        raise RuntimeError("initializing the MySQL data directory failed:\n" + "\n".join(output))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def actual_rows(store: Any, index: Any) -> Counter[tuple[Any, ...]]:
    """Every row of an index's table on every shard, as (fields..., entity_id, version).

    A multiset: a row held twice counts twice, so comparing with :func:`expected_rows`
    catches duplicate rows, which a comparison of sets would hide.
    """
    import sqlalchemy as sa

    table = store.registry.table(index)
    columns = [table.c[name] for name in (*index.fields, "entity_id", "version")]
    found: Counter[tuple[Any, ...]] = Counter()
    for shard in store.shards:
        with shard.read() as conn:
            found.update(tuple(row) for row in conn.execute(sa.select(*columns)))
    return found


def expected_rows(store: Any, index: Any) -> Counter[tuple[Any, ...]]:
    """The rows an index should hold, recomputed from the entities alone, as a multiset."""

    writer = store.index_writer
    columns = [*index.fields, "entity_id", "version"]
    expected: Counter[tuple[Any, ...]] = Counter()
    for entity in store.query(index.kind):
        state = writer.read_one(entity.id.bytes)
        for row in writer.rows_for(index, entity.id.bytes, state):
            expected[tuple(row[c] for c in columns)] += 1
    return expected


def run_command(*args: str, url: str, timeout: float = 120.0) -> Any:
    """Run ``python -m schemaless ARGS --url URL`` as an operator would; the CompletedProcess."""
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "schemaless", *args, f"--url={url}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
