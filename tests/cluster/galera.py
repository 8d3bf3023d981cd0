"""A throw-away MariaDB Galera cluster on loopback, and an HAProxy in front of it.

A shard may be a Galera cluster behind HAProxy (DESIGN section 6): the store and its daemons
connect to the proxy, which sends every connection to one node (the others are `backup`s, so
that writes meet no certification conflicts in the normal case) and moves them to the next
node when its health check finds the first one dead.

    with GaleraCluster(3) as cluster, HAProxy(cluster.nodes) as proxy:
        url = proxy.create_database("app")
        ...
        cluster.nodes[0].kill()        # SIGKILL the active node: the proxy fails over

Each node is a ``mariadbd`` of its own (a temporary directory, free loopback ports for MySQL,
group communication, IST and SST), started with the Debian ``galera-4`` provider. The first
node bootstraps the cluster (``--wsrep-new-cluster``); the others join it one at a time and
receive its state by rsync (SST). Failure detection is tuned down from Galera's defaults
(seconds instead of tens of seconds), so the survivors evict a killed node quickly.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from schemaless.testing import create_database

PROVIDER = Path("/usr/lib/galera/libgalera_smm.so")
_SEARCH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin", "/usr/bin"])
# keepalive <= inactive check <= suspect <= inactive > install, as Galera requires.
_EVS = (
    "evs.keepalive_period=PT0.3S;evs.inactive_check_period=PT0.5S;evs.suspect_timeout=PT1.5S;"
    "evs.inactive_timeout=PT2S;evs.install_timeout=PT1.5S;"
    "gcache.size=64M"
)


def missing() -> str | None:
    """Why a Galera cluster cannot be started here, or None when everything is installed."""
    if not PROVIDER.exists():
        return f"{PROVIDER} not found (Debian: apt-get install galera-4)"
    for tool, package in (
        ("mariadbd", "mariadb-server"),
        ("mariadb-install-db", "mariadb-server"),
        ("haproxy", "haproxy"),
        ("rsync", "rsync"),
    ):
        if shutil.which(tool, path=_SEARCH) is None:
            return f"{tool} not found (Debian: apt-get install {package})"
    return None


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports of 127.0.0.1, held open together so none repeats."""
    import socket

    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]
    finally:
        for probe in probes:
            probe.close()


class Node:
    """One mariadbd of the cluster: its directory, its ports, its process."""

    def __init__(self, name: str, root: Path, ports: list[int]) -> None:
        self.name = name
        self.dir = root / name
        self.port, self.gcomm, self.ist, self.sst = ports
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of this node alone, naming no database."""
        return f"mysql+mysqldb://root@127.0.0.1:{self.port}/"

    def wait_for_database(self, name: str, timeout: float = 10.0) -> None:
        """Wait until this node has applied a CREATE DATABASE made on another: Galera's DDL
        returns to its client before every node has applied it."""
        import MySQLdb

        deadline = time.monotonic() + timeout
        while True:
            try:
                MySQLdb.connect(host="127.0.0.1", port=self.port, user="root", db=name).close()
                return
            except MySQLdb.OperationalError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)

    def launch(self, cluster_address: str, *, bootstrap: bool) -> None:
        binary = shutil.which("mariadbd", path=_SEARCH)
        assert binary is not None
        command = [
            binary,
            "--no-defaults",
            *self.options(),
            "--bind-address=127.0.0.1",
            f"--port={self.port}",
            "--skip-networking=0",
            f"--socket={self.dir / 'mysqld.sock'}",
            f"--pid-file={self.dir / 'mysqld.pid'}",
            "--innodb-flush-log-at-trx-commit=2",
            "--max-connections=300",
            "--binlog-format=ROW",
            "--innodb-autoinc-lock-mode=2",
            "--default-storage-engine=InnoDB",
            "--wsrep-on=ON",
            f"--wsrep-provider={PROVIDER}",
            f"--wsrep-cluster-address={cluster_address}",
            "--wsrep-cluster-name=schemaless_test",
            f"--wsrep-node-name={self.name}",
            f"--wsrep-node-address=127.0.0.1:{self.gcomm}",
            f"--wsrep-node-incoming-address=127.0.0.1:{self.port}",
            "--wsrep-provider-options="
            f"gmcast.listen_addr=tcp://127.0.0.1:{self.gcomm};ist.recv_addr=127.0.0.1:{self.ist};"
            + _EVS,
            "--wsrep-sst-method=rsync",
            f"--wsrep-sst-receive-address=127.0.0.1:{self.sst}",
            "--wsrep-slave-threads=2",
        ]
        if bootstrap:
            command.append("--wsrep-new-cluster")
        with open(self.dir / "error.log", "ab") as log:
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )

    def options(self) -> list[str]:
        """The options shared by initialization and start."""
        options = [
            f"--datadir={self.dir / 'data'}",
            # Not /tmp: mariadb-install-db's temporary tables there collide with other servers'.
            f"--tmpdir={self.dir}",
            "--innodb-buffer-pool-size=64M",
            "--innodb-log-file-size=48M",
            "--character-set-server=utf8mb4",
        ]
        return [*options, "--user=root"] if os.geteuid() == 0 else options

    def status(self, name: str) -> str | None:
        """A ``wsrep_*`` status variable, or None while the node does not answer."""
        import MySQLdb

        try:
            connection = MySQLdb.connect(
                host="127.0.0.1", port=self.port, user="root", connect_timeout=2
            )
        except MySQLdb.OperationalError:
            return None
        try:
            cursor = connection.cursor()
            cursor.execute("SHOW GLOBAL STATUS LIKE %s", (name,))
            row = cursor.fetchone()
            return None if row is None else str(row[1])
        finally:
            connection.close()

    def wait_synced(self, size: int, timeout: float) -> None:
        """Return once the node is Synced in a primary component of at least ``size`` nodes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                break
            synced = self.status("wsrep_local_state_comment") == "Synced"
            if synced and int(self.status("wsrep_cluster_size") or 0) >= size:
                return
            time.sleep(0.2)
        raise RuntimeError(
            f"Galera node {self.name} did not sync; its log ends with:\n{self.log()}"
        )

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
            self.process = None

    def log(self, lines: int = 40) -> str:
        try:
            text = (self.dir / "error.log").read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


class GaleraCluster:
    """``size`` Galera nodes on loopback, started together and removed together."""

    def __init__(self, size: int = 3, *, timeout: float = 60.0) -> None:
        self.size = size
        self.timeout = timeout
        self.root = Path(tempfile.mkdtemp(prefix="schemaless-galera-"))
        ports = free_ports(4 * size)
        self.nodes = [Node(f"n{i}", self.root, ports[4 * i : 4 * i + 4]) for i in range(size)]

    @property
    def address(self) -> str:
        return "gcomm://" + ",".join(f"127.0.0.1:{node.gcomm}" for node in self.nodes)

    def __enter__(self) -> GaleraCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> GaleraCluster:
        """Bootstrap the first node, then join the others one by one (each receives an SST)."""
        try:
            self._initialize()
            first = self.nodes[0]
            first.launch(self.address, bootstrap=True)
            first.wait_synced(1, self.timeout)
            for n, node in enumerate(self.nodes[1:], start=2):
                node.launch(self.address, bootstrap=False)
                node.wait_synced(n, self.timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def _initialize(self) -> None:
        """One data directory with root reachable over TCP; the joiners get theirs by SST."""
        install = shutil.which("mariadb-install-db", path=_SEARCH)
        assert install is not None
        first = self.nodes[0]
        for node in self.nodes:
            node.dir.mkdir(parents=True)
        command = [install, "--no-defaults", *first.options(), "--skip-test-db"]
        command.append("--auth-root-authentication-method=normal")
        done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError("mariadb-install-db failed:\n" + (done.stdout + done.stderr)[-3000:])
        for node in self.nodes[1:]:
            (node.dir / "data").mkdir()
            if os.geteuid() == 0:
                _for_rsync_daemon(node.dir / "data")


def _for_rsync_daemon(data: Path) -> None:
    """Let the joiner's rsync daemon write its SST into ``data``.

    Started by root, ``rsync --daemon`` drops to the user ``nobody`` (rsyncd.conf's default
    ``uid``), and wsrep_sst_rsync's config sets no other: the directory must be nobody's, and
    the directories above it reachable.
    """
    import pwd

    nobody = pwd.getpwnam("nobody")
    os.chown(data, nobody.pw_uid, nobody.pw_gid)
    for directory in (data.parent, data.parent.parent):
        directory.chmod(0o755)


class HAProxy:
    """An haproxy in TCP mode on a free port: the first node active, the others `backup`.

    A MySQL health check logs in every ``check_ms`` as root; two failures mark a node down,
    closing its sessions, and new connections go to the first backup that is up.
    """

    def __init__(self, nodes: list[Node], *, check_ms: int = 300) -> None:
        self.nodes = nodes
        self.check_ms = check_ms
        self.port = free_ports(1)[0]
        self.dir = Path(tempfile.mkdtemp(prefix="schemaless-haproxy-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mysql+mysqldb://root@127.0.0.1:{self.port}/"

    def config(self) -> str:
        check = f"check inter {self.check_ms} fall 2 rise 2 on-marked-down shutdown-sessions"
        servers = [
            f"    server {node.name} 127.0.0.1:{node.port} {check}" + (" backup" if n else "")
            for n, node in enumerate(self.nodes)
        ]
        return "\n".join(
            [
                "global",
                "    maxconn 1000",
                "defaults",
                "    mode tcp",
                "    retries 3",
                "    option redispatch",
                "    timeout connect 1s",
                "    timeout client 1h",
                "    timeout server 1h",
                "frontend shard",
                f"    bind 127.0.0.1:{self.port}",
                "    default_backend galera",
                "backend galera",
                "    option mysql-check user root post-41",
                *servers,
                "",
            ]
        )

    def __enter__(self) -> HAProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> HAProxy:
        binary = shutil.which("haproxy", path=_SEARCH)
        assert binary is not None
        path = self.dir / "haproxy.cfg"
        path.write_text(self.config())
        with open(self.dir / "haproxy.log", "ab") as log:
            self.process = subprocess.Popen(
                [binary, "-f", str(path), "-db"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 20
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                text = (self.dir / "haproxy.log").read_text(errors="replace")
                self.stop()
                raise RuntimeError(f"haproxy did not start:\n{text}")
            time.sleep(0.1)
        return self

    def _answers(self) -> bool:
        import MySQLdb

        try:
            MySQLdb.connect(
                host="127.0.0.1", port=self.port, user="root", connect_timeout=2
            ).close()
        except MySQLdb.OperationalError:
            return False
        return True

    def create_database(self, name: str) -> str:
        """A new database on the cluster (through the proxy); its URL through the proxy."""
        return create_database(self.url, name)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None
        shutil.rmtree(self.dir, ignore_errors=True)
