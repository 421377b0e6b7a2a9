"""The soak's own RabbitMQ, PostgreSQL and Redis for "restart" mode: private instances under the
work directory, on free ports, that the harness starts, stops, kills and always removes, so that
restarting them disturbs nobody else on the machine.

- RabbitMQ: a node of its own (`fmnsoak-<tag>@localhost`), its own mnesia and log directories,
  configuration file and an empty plugin list (no management listener to clash with); it runs
  as the `rabbitmq` user and shares the machine's epmd and Erlang cookie. Or three such nodes
  joined into a cluster (`--cluster`), which share that cookie.
- PostgreSQL: a cluster of its own (`initdb`), run by `pg_ctl` as the `postgres` user, its
  socket in the work directory.
- Redis: `redis-server` with `--appendonly yes` (production keeps its state in an AOF).

Each can be stopped cleanly (`rabbitmqctl stop`, `pg_ctl stop -m fast`, `SHUTDOWN`) or crashed
(kill -9 of the Erlang VM, `pg_ctl stop -m immediate` — every backend killed, no checkpoint,
crash recovery at the next start —, kill -9 of redis-server).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

PG_BIN = Path(os.environ.get("FMN_SOAK_PG_BIN", "/usr/lib/postgresql/15/bin"))
RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), 1):
            return True
    except OSError:
        return False


def wait_port(port: int, up: bool, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while answers(port) != up:
        if time.monotonic() > deadline:
            raise RuntimeError(f"port {port} still {'down' if up else 'up'} after {timeout} s")
        time.sleep(0.2)


def _owned_dir(path: Path, user: str) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    shutil.chown(path, user, user)
    return path


def _as(user: str) -> list[str]:
    return [] if os.geteuid() != 0 else ["runuser", "-u", user, "--"]


def _wait_exit(process: subprocess.Popen[bytes] | None, timeout: float) -> None:
    if process is None:
        return
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(30)


class PrivateService:
    name: str
    port: int

    def start(self) -> None:
        raise NotImplementedError

    def stop(self, crash: bool = False) -> None:
        raise NotImplementedError

    def remove(self) -> None:
        """Stop whatever runs and delete its files; never raises."""
        with contextlib.suppress(Exception):
            self.stop(crash=True)

    @property
    def running(self) -> bool:
        return answers(self.port)


class PrivateRabbitMQ(PrivateService):
    name = "RabbitMQ"

    def __init__(self, base: Path, tag: str, folder: str = "rabbitmq") -> None:
        self.dir = _owned_dir(base / folder, "rabbitmq")
        self.node = f"fmnsoak-{tag}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"
        self.log = self.dir / "server.out"
        self.pid_file = self.dir / "node.pid"
        (self.dir / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.port}\n"
            # The soak's disk may be nearly full of other people's data: do not block publishers.
            "disk_free_limit.absolute = 1MB\n"
        )
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "rabbitmq-env.conf").write_text("")  # not the machine's (its NODENAME)
        for f in ("rabbitmq.conf", "enabled_plugins", "rabbitmq-env.conf"):
            shutil.chown(self.dir / f, "rabbitmq", "rabbitmq")
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "HOME": "/var/lib/rabbitmq",  # its Erlang cookie, shared with the machine's node
            "LANG": "C.UTF-8",
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_PID_FILE": str(self.pid_file),
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.dir / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": str(self.dir / "rabbitmq-env.conf"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_FLAGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }
        self.process: subprocess.Popen[bytes] | None = None

    def ctl(self, *args: str, timeout: float = 120) -> None:
        self.ctl_output(*args, timeout=timeout)

    def ctl_output(self, *args: str, timeout: float = 120) -> str:
        command = [*_as("rabbitmq"), str(RABBITMQ_BIN / "rabbitmqctl"), "-q", "-n", self.node]
        try:
            done = subprocess.run(
                [*command, *args], env=self.env, check=True, capture_output=True, timeout=timeout
            )
        except subprocess.CalledProcessError as exc:
            said = (exc.stderr or b"").decode(errors="replace").strip()
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} on {self.node}: {said}") from exc
        return done.stdout.decode(errors="replace")

    def start(self) -> None:
        with self.log.open("ab") as out:
            out.write(f"\n==== start at {time.time():.3f}\n".encode())
            self.process = subprocess.Popen(
                [*_as("rabbitmq"), str(RABBITMQ_BIN / "rabbitmq-server")],
                env=self.env,
                cwd=self.dir,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        wait_port(self.port, up=True, timeout=180)
        self.ctl("await_startup", timeout=180)

    def _vm_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            return int(self.pid_file.read_text().split()[0])
        return None

    def stop(self, crash: bool = False) -> None:
        pid = self._vm_pid()
        if crash:
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if self.process is not None:  # its script and whatever else it started
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
        elif self.process is not None and self.process.poll() is None:
            self.ctl("stop", timeout=180)
        _wait_exit(self.process, 60)
        self.process = None
        if pid is not None:  # the VM, whoever started it, is gone before we say so
            deadline = time.monotonic() + 30
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)
        wait_port(self.port, up=False, timeout=60)


class PrivateRabbitMQCluster(PrivateService):
    """Three (`size`) private RabbitMQ nodes joined into one cluster (`rabbitmqctl stop_app`,
    `join_cluster`, `start_app` on each node after the first), each with its own ports, node
    name and data folder (`rabbitmq-1`...). `start` and `stop` concern the whole cluster; the
    soak's node faults stop and start single nodes, which rejoin by themselves."""

    name = "RabbitMQ cluster"

    def __init__(self, base: Path, tag: str, size: int = 3) -> None:
        self.nodes = [
            PrivateRabbitMQ(base, f"{tag}-{n}", folder=f"rabbitmq-{n}") for n in range(1, size + 1)
        ]
        self.port = self.nodes[0].port
        self.urls = [node.url for node in self.nodes]
        self.url = self.urls[0]
        self._joined = False

    def start(self) -> None:
        first = self.nodes[0]
        for node in self.nodes:
            if not node.running:
                node.start()
            if node is not first and not self._joined:
                node.ctl("stop_app")
                node.ctl("join_cluster", first.node)
                node.ctl("start_app")
                node.ctl("await_startup", timeout=180)
        self._joined = True

    def stop(self, crash: bool = False) -> None:
        # The first node last: the last one stopped is the one that can start alone again.
        # Every node, whatever the others did (a node being started meanwhile by a fault's
        # thread may not stop at once: the rest must still be stopped).
        failures = []
        for node in reversed(self.nodes):
            try:
                node.stop(crash=crash)
            except Exception as exc:
                failures.append(exc)
        if failures:
            raise failures[0]

    @property
    def running(self) -> bool:
        return all(node.running for node in self.nodes)

    def members(self) -> str:
        """What the first node that answers says of the cluster (diagnostics)."""
        for node in self.nodes:
            with contextlib.suppress(Exception):
                return node.ctl_output("cluster_status")
        return "no node answers"


class PrivatePostgreSQL(PrivateService):
    name = "PostgreSQL"

    def __init__(self, base: Path) -> None:
        self.dir = _owned_dir(base / "postgresql", "postgres")
        self.data = self.dir / "data"
        self.port = free_port()
        self.admin_dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        if not (self.data / "PG_VERSION").exists():
            initdb = [str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres"]
            subprocess.run(
                [*_as("postgres"), *initdb, "--auth=trust", "-E", "UTF8", "--no-sync"],
                check=True,
                capture_output=True,
                timeout=300,
            )

    def _ctl(self, *args: str) -> None:
        pg_ctl = [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-t", "180"]
        subprocess.run(
            [*_as("postgres"), *pg_ctl, *args],
            check=True,
            capture_output=True,
            timeout=240,
            cwd=self.dir,
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=200"
        )
        self._ctl("-l", str(self.dir / "server.log"), "-o", options, "start")
        wait_port(self.port, up=True)

    def stop(self, crash: bool = False) -> None:
        if (self.data / "postmaster.pid").exists():
            self._ctl("-m", "immediate" if crash else "fast", "stop")
        wait_port(self.port, up=False, timeout=60)


class PrivateRedis(PrivateService):
    name = "Redis"

    def __init__(self, base: Path) -> None:
        self.dir = base / "redis"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self.log = self.dir / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        # As production: the state in an append-only file (fsync every second).
        listen = ["--bind", "127.0.0.1", "--port", str(self.port), "--daemonize", "no"]
        aof = ["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""]
        self.process = subprocess.Popen(
            ["redis-server", *listen, *aof, "--dir", str(self.dir), "--logfile", str(self.log)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_port(self.port, up=True)

    def stop(self, crash: bool = False) -> None:
        if self.process is None or self.process.poll() is not None:
            self.process = None
            return
        if crash:
            self.process.send_signal(signal.SIGKILL)
        else:
            subprocess.run(
                ["redis-cli", "-p", str(self.port), "shutdown"],
                capture_output=True,
                timeout=60,
                check=False,
            )
        _wait_exit(self.process, 60)
        self.process = None
        wait_port(self.port, up=False, timeout=60)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (our child, not reaped yet) is gone for our purposes.
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    return False


class PrivateServices:
    """RabbitMQ, PostgreSQL and Redis of the soak's own under `base`, keyed "amqp", "pg" and
    "redis" as the soak names them. `remove` stops all three (as a crash: nothing to keep) and
    deletes their files; it runs whatever happened."""

    def __init__(self, base: Path, cluster: bool = False) -> None:
        self.cluster = cluster
        self.base = base / "services"
        if self.base.exists():  # an earlier run's: start clean
            shutil.rmtree(self.base)
        self.base.mkdir(parents=True)
        self.base.chmod(0o755)
        self.tag = uuid.uuid4().hex[:8]
        self.services: dict[str, PrivateService] = {}

    def start(self) -> None:
        # Registered before starting, so that `remove` stops even a half-started one.
        self.services["redis"] = PrivateRedis(self.base)
        self.services["redis"].start()
        self.services["pg"] = PrivatePostgreSQL(self.base)
        self.services["pg"].start()
        if self.cluster:
            self.services["amqp"] = PrivateRabbitMQCluster(self.base, self.tag)
        else:
            self.services["amqp"] = PrivateRabbitMQ(self.base, self.tag)
        self.services["amqp"].start()

    @property
    def amqp(self) -> PrivateRabbitMQ:
        service = self.services["amqp"]
        assert isinstance(service, PrivateRabbitMQ)
        return service

    @property
    def amqp_cluster(self) -> PrivateRabbitMQCluster:
        service = self.services["amqp"]
        assert isinstance(service, PrivateRabbitMQCluster)
        return service

    @property
    def amqp_urls(self) -> list[str]:
        """The node's URL, or the cluster's nodes' URLs."""
        service = self.services["amqp"]
        assert isinstance(service, PrivateRabbitMQ | PrivateRabbitMQCluster)
        return [service.url] if isinstance(service, PrivateRabbitMQ) else service.urls

    @property
    def pg(self) -> PrivatePostgreSQL:
        service = self.services["pg"]
        assert isinstance(service, PrivatePostgreSQL)
        return service

    @property
    def redis(self) -> PrivateRedis:
        service = self.services["redis"]
        assert isinstance(service, PrivateRedis)
        return service

    def remove(self, keep_logs: bool = True) -> None:
        for service in reversed(list(self.services.values())):
            service.remove()
        if not keep_logs:
            shutil.rmtree(self.base, ignore_errors=True)
            return
        # The logs stay for whoever reads the run; the data goes.
        for data in ("rabbitmq*/mnesia", "postgresql/data", "redis/appendonlydir"):
            for path in self.base.glob(data):
                shutil.rmtree(path, ignore_errors=True)
