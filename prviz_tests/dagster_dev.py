"""`dagster dev` as a subprocess for end-to-end tests: start, GraphQL, stop by its own PID.

The server runs in its own session (`start_new_session=True`), so every process it starts — the
webserver, the daemon, the code server, run workers, step subprocesses and Spark's JVM — carries
its session id, and `session_processes` finds them in /proc without matching any name (other
sessions on this machine may run their own Dagster). Stopping sends SIGINT to `dagster dev`'s own
PID (its graceful path: it tells the webserver and the daemon to shut down and closes the code
server), and only if that does not end every process of the session, SIGTERM then SIGKILL to the
whole process group.

Also a minimal Chrome DevTools Protocol client (one websocket, flattened sessions) for the UI
screenshots.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(__file__).resolve().parents[1] / ".venv" / "bin"

# The instance `dagster dev` uses: quiet and quick. The queued run coordinator is dagster dev's
# default; a 1 s dequeue interval (default 5 s) starts a launched run sooner. The code server
# waits for its run workers on shutdown, so a stop leaves nothing behind; the UI's first-run
# dialog (nux) would cover the screenshots.
DAGSTER_YAML = """\
telemetry:
  enabled: false
nux:
  enabled: false
run_coordinator:
  module: dagster._core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
code_servers:
  local_startup_timeout: 300
  wait_for_local_processes_on_shutdown: true
"""

# variables passed through from the test process; everything else is left out (no secrets)
PASSED_THROUGH = ("PATH", "LANG", "LC_ALL", "TZ", "JAVA_HOME", "SSL_CERT_FILE", "SSL_CERT_DIR")

WORKSPACE_QUERY = """
query Workspace {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on RepositoryLocation { name repositories { name } }
          ... on PythonError { message stack }
        }
      }
    }
    ... on PythonError { message }
  }
}
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    """A minimal environment: PATH and locale from ours, the venv first on PATH, plus `extra`."""
    env = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
    env["PATH"] = os.pathsep.join([str(VENV_BIN), env.get("PATH", "/usr/bin:/bin")])
    env.setdefault("LANG", "C.UTF-8")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


# -- processes of a session, from /proc --------------------------------------------------------
@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    pgid: int
    sid: int
    state: str
    start_ticks: int  # start time since boot: with the pid, identifies the process
    cmdline: str


def _read_proc(pid: int) -> Proc | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # the command name (field 2) is in parentheses and may itself contain spaces or ')'
    fields = stat[stat.rindex(")") + 2 :].split()
    state, ppid, pgid, sid = fields[0], int(fields[1]), int(fields[2]), int(fields[3])
    cmdline = raw.replace(b"\0", b" ").decode(errors="replace").strip()
    return Proc(pid, ppid, pgid, sid, state, int(fields[19]), cmdline)


def all_processes() -> list[Proc]:
    """Every live process on the machine (zombies excluded)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            proc = _read_proc(int(entry))
            if proc and proc.state != "Z":
                found.append(proc)
    return found


def session_processes(sid: int, tracked: list[Proc] = ()) -> list[Proc]:
    """Live processes of session (or process group) `sid`, its leader's descendants, and any of
    `tracked` still alive (same pid and start time) even if it left the session."""
    procs = all_processes()
    children: dict[int, list[Proc]] = {}
    for proc in procs:
        children.setdefault(proc.ppid, []).append(proc)
    found = {p.pid: p for p in procs if sid in (p.sid, p.pgid)}
    stack = [sid]
    while stack:
        for child in children.get(stack.pop(), []):
            if child.pid not in found:
                found[child.pid] = child
                stack.append(child.pid)
    alive = {(p.pid, p.start_ticks): p for p in procs}
    for old in tracked:
        if (old.pid, old.start_ticks) in alive:
            found[old.pid] = alive[(old.pid, old.start_ticks)]
    return sorted(found.values(), key=lambda p: p.pid)


def describe(processes: list[Proc]) -> str:
    return "\n".join(
        f"  pid {p.pid} (ppid {p.ppid}, {p.state}): {p.cmdline[:200]}" for p in processes
    )


# -- the server --------------------------------------------------------------------------------
def _default_interrupts() -> None:
    """In the child: SIGINT and SIGTERM as a terminal would deliver them.

    A test run started in the background (`make test &`, some CI runners) ignores SIGINT, and an
    ignored SIGINT is inherited: dagster dev would then ignore SIGINT and, since it maps SIGTERM
    to its SIGINT handler, SIGTERM too, and could only be killed.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


class GraphQLError(AssertionError):
    pass


@dataclass
class StopReport:
    """How the server stopped: `graceful` if SIGINT to its own PID ended the whole session."""

    graceful: bool
    seconds: float
    signals: list[str] = field(default_factory=list)
    seen: list[Proc] = field(default_factory=list)  # the session's processes just before the stop
    left: list[Proc] = field(default_factory=list)  # still alive after everything (must be empty)
    exit_code: int | None = None


class DagsterDev:
    """`dagster dev -w workspace.yaml` on 127.0.0.1:`port`, run from the repository root."""

    def __init__(self, env: Mapping[str, str], log_path: Path, port: int | None = None) -> None:
        self.env = dict(env)
        self.log_path = Path(log_path)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.stop_report: StopReport | None = None
        self.started_at = 0.0

    # lifecycle
    def start(self) -> None:
        command = [
            str(VENV_BIN / "dagster"), "dev", "-w", "workspace.yaml",
            "-h", "127.0.0.1", "-p", str(self.port),
        ]  # fmt: skip
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own session and process group: pid == sid == pgid
                preexec_fn=_default_interrupts,
            )
        self.started_at = time.monotonic()

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    def processes(self, tracked: list[Proc] = ()) -> list[Proc]:
        return session_processes(self.pid, tracked) if self.proc else []

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def wait_until_loaded(self, location: str, timeout: float) -> float:
        """Poll the workspace until `location` is loaded; the seconds it took since start."""
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"dagster dev exited with {self.proc.returncode} before loading "
                    f"{location!r}:\n{self.log_tail()}"
                )
            try:
                data = self.graphql(WORKSPACE_QUERY, timeout=10)["workspaceOrError"]
            except (OSError, GraphQLError) as error:  # not listening yet, or still starting
                last = f"{type(error).__name__}: {error}"
            else:
                for entry in data.get("locationEntries", []):
                    if entry["name"] != location:
                        continue
                    loaded = entry["locationOrLoadError"] or {}
                    if loaded.get("__typename") == "PythonError":
                        raise AssertionError(
                            f"code location {location!r} failed to load: {loaded['message']}\n"
                            f"{''.join(loaded.get('stack') or [])}\n{self.log_tail()}"
                        )
                    if entry["loadStatus"] == "LOADED" and loaded.get("__typename"):
                        return time.monotonic() - self.started_at
                    last = f"location {location!r}: {entry['loadStatus']}"
            time.sleep(0.5)
        raise AssertionError(
            f"code location {location!r} not loaded within {timeout:.0f} s ({last}); "
            f"server log tail:\n{self.log_tail()}"
        )

    def stop(self, grace: float = 60.0) -> StopReport:
        """SIGINT to dagster dev's own PID; SIGTERM, then SIGKILL, to its group only if needed."""
        if self.stop_report is not None:
            return self.stop_report
        if self.proc is None:
            self.stop_report = StopReport(graceful=True, seconds=0.0)
            return self.stop_report
        started = time.monotonic()
        report = StopReport(graceful=False, seconds=0.0, seen=self.processes())
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            report.signals.append("SIGINT to pid")
        ended = self._wait_session_empty(grace, report.seen)
        report.graceful = ended
        for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 10.0)):
            if ended:
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, sig)
            for proc in self.processes(report.seen):  # any that left the group, by pid
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, sig)
            report.signals.append(f"{sig.name} to group")
            ended = self._wait_session_empty(wait, report.seen)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        report.exit_code = self.proc.poll()
        report.left = self.processes(report.seen)
        report.seconds = time.monotonic() - started
        self.stop_report = report
        return report

    def _wait_session_empty(self, timeout: float, tracked: list[Proc]) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.proc.poll()  # reap dagster dev itself once it exits
            if not self.processes(tracked):
                return True
            time.sleep(0.2)
        return False

    # GraphQL, exactly as the UI sends it: POST /graphql with a JSON body
    def graphql(self, query: str, variables: Mapping[str, Any] | None = None, timeout=60) -> dict:
        body = json.dumps({"query": query, "variables": dict(variables or {})}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql",
            data=body,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            method="POST",
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only
        try:
            with opener.open(request, timeout=timeout) as response:
                payload = json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise GraphQLError(f"HTTP {error.code}: {error.read()[:2000]!r}") from None
        if payload.get("errors"):
            raise GraphQLError(json.dumps(payload["errors"], indent=1)[:4000])
        return payload["data"]


# -- headless Chromium over the DevTools protocol ----------------------------------------------
def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


class Cdp:
    """Chrome DevTools Protocol over one websocket; page calls go to one attached target."""

    def __init__(self, ws: Any) -> None:
        self._ws = ws
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        self.session: str | None = None

    def call(self, method: str, params: dict | None = None, timeout: float = 30, **kw) -> dict:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or kw}
        if self.session and not method.startswith(("Target.", "Browser.")):
            message["sessionId"] = self.session
        self._ws.send(json.dumps(message))
        deadline = time.monotonic() + timeout
        while True:
            reply = json.loads(self._ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def js(self, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise AssertionError(f"JS failed: {result['exceptionDetails']}\n{expression}")
        return result["result"].get("value")

    def wait_js(self, expression: str, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.25)
        raise TimeoutError(f"never true within {timeout:.0f} s: {expression} (last: {value!r})")

    def screenshot(self) -> bytes:
        return base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])


@contextlib.contextmanager
def chromium_page(binary: str, width: int, height: int) -> Iterator[Cdp]:
    """A headless Chromium with one blank page of `width` x `height`, closed and reaped after."""
    from websockets.sync.client import connect

    profile = tempfile.mkdtemp(prefix="prviz-e2e-chromium-")
    proc = subprocess.Popen(
        [
            binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--no-default-browser-check", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-extensions",
            "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
            f"--user-data-dir={profile}", "--remote-debugging-port=0",
            "--remote-debugging-address=127.0.0.1", f"--window-size={width},{height}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        port_file = Path(profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"Chromium did not start (exit code {proc.poll()})")
            time.sleep(0.05)
        port, path = port_file.read_text().splitlines()[:2]
        with connect(f"ws://127.0.0.1:{port}{path}", max_size=None, proxy=None) as ws:
            cdp = Cdp(ws)
            target = cdp.call("Target.createTarget", url="about:blank")["targetId"]
            cdp.session = cdp.call("Target.attachToTarget", targetId=target, flatten=True)[
                "sessionId"
            ]
            for domain in ("Page", "Runtime"):
                cdp.call(f"{domain}.enable")
            cdp.call(
                "Emulation.setDeviceMetricsOverride",
                width=width, height=height, deviceScaleFactor=1, mobile=False,
            )  # fmt: skip
            yield cdp
            with contextlib.suppress(Exception):  # the browser may already be gone
                cdp.call("Browser.close", timeout=5)
    finally:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        # Chromium's own helpers (zygote, renderers) share its session
        deadline = time.monotonic() + 10
        while session_processes(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        leftover = session_processes(proc.pid)
        if leftover:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(profile, ignore_errors=True)
        if leftover:
            raise AssertionError(f"Chromium left processes behind:\n{describe(leftover)}")
