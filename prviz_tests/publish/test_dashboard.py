"""Tests for the self-contained HTML dashboard.

The fast tests read the HTML as text. The browser test loads the page in a real headless
Chromium, driven over the DevTools protocol (a websocket; no extra dependency), and checks what a
person would see: charts drawn, day switching, hover tooltips, no script errors, no network.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from prviz.publish.dashboard import render_dashboard, write_dashboard
from prviz.publish.server import make_server

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT_PATH = REPO_ROOT / "docs" / "img" / "dashboard.png"
# Read at import: the shared conftest hides PRVIZ_* variables from every test while it runs.
UPDATE_SCREENSHOT = os.environ.get("PRVIZ_UPDATE_SCREENSHOT") == "1"
REFRESHED = datetime(2025, 1, 21, 6, 30, tzinfo=UTC)

SUMMARY_COLUMNS = [
    "dt", "endpoint", "variant", "n_predictions", "n_labeled", "n_positives", "label_coverage",
    "base_rate", "average_precision", "pr_auc", "best_f1", "best_f1_threshold",
    "precision_at_recall_50", "precision_at_recall_80", "precision_at_recall_90",
    "recall_at_precision_50", "recall_at_precision_80", "recall_at_precision_90",
    "ap_error_bound", "n_thresholds",
]  # fmt: skip
POINT_COLUMNS = [
    "dt", "endpoint", "variant", "threshold", "tp", "fp", "fn", "tn", "precision", "recall", "f1",
]  # fmt: skip
QUARANTINE_COLUMNS = ["dt", "source", "reason", "n"]
DATA_BLOCK = re.compile(
    r'<script type="application/json" id="prviz-data">(.*?)</script>', re.DOTALL
)


# ---- synthetic data: real PR curves computed from small, fixed score/label arrays ------------


def _pr_rows(
    dt: str,
    endpoint: str,
    variant: str,
    scores: np.ndarray,
    labels: np.ndarray,
    n_unlabeled: int = 0,
    max_points: int = 200,
) -> tuple[dict[str, Any], pd.DataFrame | None]:
    """One summary row and its (thinned) curve points, with scikit-learn's definitions."""
    n_labeled = len(labels)
    n_pos = int(labels.sum())
    row: dict[str, Any] = dict.fromkeys(SUMMARY_COLUMNS, np.nan)
    row.update(
        dt=dt, endpoint=endpoint, variant=variant, n_predictions=n_labeled + n_unlabeled,
        n_labeled=n_labeled, n_positives=n_pos,
        label_coverage=n_labeled / (n_labeled + n_unlabeled),
        base_rate=n_pos / n_labeled if n_labeled else np.nan,
    )  # fmt: skip
    if n_pos == 0:
        row["n_thresholds"] = 0
        return row, None
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], labels[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tp = np.cumsum(y)[last]
    fp = 1 + last - tp
    precision = tp / (tp + fp)
    recall = tp / n_pos
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-300)
    ap = float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
    auc = float(np.trapezoid(np.r_[1.0, precision], np.r_[0.0, recall]))
    best = int(np.argmax(f1))

    def best_precision(at_recall: float) -> float:
        ok = recall >= at_recall
        return float(precision[ok].max()) if ok.any() else np.nan

    def best_recall(at_precision: float) -> float:
        ok = precision >= at_precision
        return float(recall[ok].max()) if ok.any() else np.nan

    row.update(
        average_precision=ap, pr_auc=auc, best_f1=float(f1[best]),
        best_f1_threshold=float(s[last][best]),
        precision_at_recall_50=best_precision(0.5), precision_at_recall_80=best_precision(0.8),
        precision_at_recall_90=best_precision(0.9), recall_at_precision_50=best_recall(0.5),
        recall_at_precision_80=best_recall(0.8), recall_at_precision_90=best_recall(0.9),
        ap_error_bound=0.0, n_thresholds=len(last),
    )  # fmt: skip
    keep = np.unique(np.linspace(0, len(last) - 1, min(len(last), max_points - 1)).astype(int))
    n_neg = n_labeled - n_pos
    # The first point is scikit-learn's end point: P=1, R=0, no threshold.
    points = pd.DataFrame(
        {
            "dt": dt, "endpoint": endpoint, "variant": variant,
            "threshold": np.r_[np.nan, s[last][keep]],
            "tp": np.r_[0, tp[keep]], "fp": np.r_[0, fp[keep]],
            "fn": n_pos - np.r_[0, tp[keep]], "tn": n_neg - np.r_[0, fp[keep]],
            "precision": np.r_[1.0, precision[keep]], "recall": np.r_[0.0, recall[keep]],
            "f1": np.r_[0.0, f1[keep]],
        },
        columns=POINT_COLUMNS,
    )  # fmt: skip
    return row, points


def _concat(parts: list[pd.DataFrame | None]) -> pd.DataFrame:
    kept = [p for p in parts if p is not None]
    return pd.concat(kept, ignore_index=True) if kept else pd.DataFrame(columns=POINT_COLUMNS)


def _frames(
    samples: dict[tuple[str, str, str], tuple[np.ndarray, np.ndarray, int]],
    quarantine: Sequence[tuple[str, str, str, int]],
) -> dict[str, pd.DataFrame]:
    """Daily and trailing-7-day summaries/points (plus the ``__all__`` row) from samples."""
    summary: list[dict[str, Any]] = []
    summary_7d: list[dict[str, Any]] = []
    points: list[pd.DataFrame | None] = []
    points_7d: list[pd.DataFrame | None] = []
    for (dt, endpoint, variant), (scores, labels, unlabeled) in sorted(samples.items()):
        row, pts = _pr_rows(dt, endpoint, variant, scores, labels, unlabeled)
        summary.append(row)
        points.append(pts)
    days = sorted({k[0] for k in samples})
    for dt in days:
        start = (datetime.fromisoformat(dt) - timedelta(days=6)).strftime("%Y-%m-%d")
        for endpoint in sorted({k[1] for k in samples}):
            window = {k: v for k, v in samples.items() if k[1] == endpoint and start <= k[0] <= dt}
            groups: dict[str, list[tuple[np.ndarray, np.ndarray, int]]] = {"__all__": []}
            for (_, _, variant), sample in sorted(window.items()):
                groups.setdefault(variant, []).append(sample)
                groups["__all__"].append(sample)
            for variant, parts in groups.items():
                scores = np.concatenate([p[0] for p in parts])
                labels = np.concatenate([p[1] for p in parts])
                row, pts = _pr_rows(dt, endpoint, variant, scores, labels, sum(p[2] for p in parts))
                summary_7d.append(row)
                points_7d.append(pts)
    return {
        "summary": pd.DataFrame(summary, columns=SUMMARY_COLUMNS),
        "points": _concat(points),
        "summary_7d": pd.DataFrame(summary_7d, columns=SUMMARY_COLUMNS),
        "points_7d": _concat(points_7d),
        "quarantine": pd.DataFrame(list(quarantine), columns=QUARANTINE_COLUMNS),
    }


@pytest.fixture
def small_frames() -> dict[str, pd.DataFrame]:
    """3 days x 2 variants; variant-b has no positives on day 2; no quarantine on day 3."""
    s = np.array([0.95, 0.9, 0.8, 0.7, 0.6, 0.45, 0.4, 0.3, 0.2, 0.1])
    y = np.array([1, 1, 0, 1, 0, 1, 0, 0, 0, 0])
    samples = {
        ("2025-01-18", "fraud-scorer", "variant-a"): (s, y, 2),
        ("2025-01-18", "fraud-scorer", "variant-b"): (s[::-1].copy(), y, 0),
        ("2025-01-19", "fraud-scorer", "variant-a"): (s, np.roll(y, 1), 5),
        ("2025-01-19", "fraud-scorer", "variant-b"): (s, np.zeros_like(y), 5),
        ("2025-01-20", "fraud-scorer", "variant-a"): (s, np.roll(y, 2), 1),
        ("2025-01-20", "fraud-scorer", "variant-b"): (s, np.roll(y, 3), 3),
    }
    quarantine = [
        ("2025-01-18", "capture", "base64_decode_error", 3),
        ("2025-01-18", "ground_truth", "label_not_binary", 1),
        ("2025-01-19", "capture", "score_not_numeric", 2),
    ]
    return _frames(samples, quarantine)


def _demo_frames() -> dict[str, pd.DataFrame]:
    """Three weeks, two endpoints; deterministic scores. canary-v14 has no positives one day."""
    rng = np.random.default_rng(20250101)
    days = [(datetime(2025, 1, 1) + timedelta(days=i)).strftime("%Y-%m-%d") for i in range(21)]
    separation = {"champion-v12": 1.7, "challenger-v13": 2.0, "canary-v14": 1.35}
    samples: dict[tuple[str, str, str], tuple[np.ndarray, np.ndarray, int]] = {}
    quarantine: list[tuple[str, str, str, int]] = []
    for i, dt in enumerate(days):
        age = len(days) - 1 - i  # labels arrive late: recent days are less covered
        coverage = 0.97 - 0.5 * np.exp(-age / 2.0)
        drift = 0.25 * np.sin(i / 3.0)
        for k, (variant, sep) in enumerate(separation.items()):
            n = 500 if variant == "canary-v14" else 1600
            n_labeled = int(n * (coverage - 0.015 * k))
            labels = (rng.random(n_labeled) < 0.09).astype(int)
            if variant == "canary-v14" and i == 15:
                labels[:] = 0
            z = rng.normal(0.0, 1.0, n_labeled) + labels * (sep + drift) - 2.2
            samples[(dt, "fraud-scorer", variant)] = (1 / (1 + np.exp(-z)), labels, n - n_labeled)
        labels = (rng.random(1500) < 0.2).astype(int)
        z = rng.normal(0.0, 1.0, 1500) + labels * 1.2 - 1.0
        samples[(dt, "returns-model", "AllTraffic")] = (1 / (1 + np.exp(-z)), labels, 300)
        if i % 4 != 3:
            quarantine.append((dt, "capture", "base64_decode_error", int(rng.integers(1, 40))))
            quarantine.append((dt, "capture", "score_not_numeric", int(rng.integers(0, 6))))
            quarantine.append((dt, "ground_truth", "unknown_event_id", int(rng.integers(5, 90))))
    return _frames(samples, quarantine)


def _render(frames: dict[str, pd.DataFrame], **kwargs: Any) -> str:
    return render_dashboard(
        frames["summary"], frames["points"], frames["summary_7d"], frames["points_7d"],
        frames["quarantine"], kwargs.pop("refreshed_at", REFRESHED), **kwargs,
    )  # fmt: skip


def _data_block(page: str) -> dict[str, Any]:
    match = DATA_BLOCK.search(page)
    assert match, "the page has no prviz-data JSON block"
    return json.loads(match.group(1))


def _plain(frame: pd.DataFrame) -> list[list[Any]]:
    """Rows of a DataFrame as plain Python values, missing values as None."""
    rows = frame.astype(object).where(frame.notna(), None).to_numpy().tolist()
    return [[None if isinstance(v, float) and np.isnan(v) else v for v in row] for row in rows]


# ---- fast tests: the HTML as text --------------------------------------------------------------


def test_page_is_self_contained(small_frames: dict[str, pd.DataFrame]) -> None:
    page = _render(small_frames)
    assert page.startswith("<!DOCTYPE html>")
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"""(?:src|href|action)\s*=\s*["']?(?!data:|#)[^"'\s>]""", page)
    assert "@import" not in page and "url(" not in page
    assert "fetch(" not in page and "XMLHttpRequest" not in page and "WebSocket" not in page
    assert "default-src 'none'" in page  # CSP meta: the page may not connect anywhere
    for element_id in (
        "day-select", "pr-chart", "pr7d-chart", "trend-ap", "trend-f1", "trend-coverage",
        "summary-table", "quarantine-table", "refreshed-at",
    ):  # fmt: skip
        assert f'id="{element_id}"' in page, element_id
    assert ">2025-01-21 06:30 UTC</time>" in page
    assert "read-only" in page.lower()


def test_embedded_json_equals_the_inputs(small_frames: dict[str, pd.DataFrame]) -> None:
    data = _data_block(_render(small_frames))
    for name, frame in small_frames.items():
        table = data[name]
        assert table["columns"] == list(frame.columns), name
        assert table["data"] == _plain(frame), name
    assert data["meta"]["refreshed_at"] == "2025-01-21T06:30:00+00:00"
    # The day with no positives keeps its counts and carries null metrics (not NaN, not 0).
    row = dict(zip(data["summary"]["columns"], data["summary"]["data"][3], strict=True))
    assert (row["dt"], row["variant"], row["n_positives"]) == ("2025-01-19", "variant-b", 0)
    assert row["average_precision"] is None and row["best_f1"] is None
    assert row["n_predictions"] == 15


def test_script_breakout_in_data_is_escaped(small_frames: dict[str, pd.DataFrame]) -> None:
    evil = "</script><script>alert(1)</script><!--"
    frames = {k: v.copy() for k, v in small_frames.items()}
    frames["summary"].loc[0, "variant"] = evil
    frames["quarantine"].loc[0, "reason"] = "</SCRIPT>&amp;"
    page = _render(frames, title="<b>PR</b> & co")
    assert page.lower().count("</script") == 2  # only the two real closing tags
    assert "<script>alert" not in page and "<!--" not in page
    assert "<b>PR</b>" not in page and "&lt;b&gt;PR&lt;/b&gt; &amp; co" in page
    data = _data_block(page)
    assert data["summary"]["data"][0][2] == evil
    assert data["quarantine"]["data"][0][2] == "</SCRIPT>&amp;"


def test_empty_inputs_render() -> None:
    empty_summary = pd.DataFrame(columns=SUMMARY_COLUMNS)
    page = render_dashboard(
        empty_summary, pd.DataFrame(), pd.DataFrame(), pd.DataFrame(columns=POINT_COLUMNS),
        pd.DataFrame(columns=QUARANTINE_COLUMNS), datetime(2025, 1, 1),
    )  # fmt: skip
    data = _data_block(page)
    assert data["summary"] == {"columns": SUMMARY_COLUMNS, "data": []}
    assert data["points"] == {"columns": [], "data": []}
    assert data["quarantine"]["data"] == []
    assert 'id="day-select"' in page and "No data yet" in page


def test_refreshed_at_is_shown_in_utc(small_frames: dict[str, pd.DataFrame]) -> None:
    plus_two = timezone(timedelta(hours=2))
    page = _render(small_frames, refreshed_at=datetime(2025, 1, 21, 8, 30, tzinfo=plus_two))
    assert 'datetime="2025-01-21T06:30:00+00:00">2025-01-21 06:30 UTC</time>' in page
    naive = _render(small_frames, refreshed_at=datetime(2025, 1, 21, 6, 30))
    assert ">2025-01-21 06:30 UTC</time>" in naive


def test_dt_dates_and_numpy_values_become_plain_json() -> None:
    summary = pd.DataFrame(
        {
            "dt": pd.to_datetime(["2025-01-02"]), "endpoint": ["e"], "variant": ["v"],
            "n_predictions": pd.array([7], dtype="Int64"), "average_precision": [np.inf],
            "base_rate": pd.array([None], dtype="Float64"),
        }
    )  # fmt: skip
    empty = pd.DataFrame()
    data = _data_block(render_dashboard(summary, empty, empty, empty, empty, REFRESHED))
    assert data["summary"]["data"] == [["2025-01-02", "e", "v", 7, None, None]]


def test_write_dashboard_is_atomic(tmp_path: Path) -> None:
    target = tmp_path / "site" / "index.html"
    assert write_dashboard("<p>one</p>", target) == target
    write_dashboard("<p>two</p>", target)
    assert target.read_text(encoding="utf-8") == "<p>two</p>"
    assert oct(target.stat().st_mode & 0o777) == oct(0o644)
    with pytest.raises(TypeError):
        write_dashboard(None, target)  # type: ignore[arg-type]
    assert target.read_text(encoding="utf-8") == "<p>two</p>"
    assert sorted(p.name for p in target.parent.iterdir()) == ["index.html"]


# ---- browser test: headless Chromium over the DevTools protocol ------------------------------


def _find_chromium() -> tuple[str | None, str]:
    """A Chromium binary, installing Debian's package as root if none is there; or a reason."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found, ""
    apt = shutil.which("apt-get")
    if not apt or not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None, "no Chromium binary, and apt-get is unavailable or we are not root"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [apt, "install", "-y", "chromium"]
    for cmd in (install, [apt, "update"], install):
        try:
            subprocess.run(cmd, env=env, capture_output=True, timeout=900, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, f"installing Chromium failed: {exc}"
        if shutil.which("chromium"):
            return shutil.which("chromium"), ""
    return None, "`apt-get install -y chromium` did not provide a chromium binary"


class _Cdp:
    """A minimal Chrome DevTools Protocol client over one websocket (flattened sessions)."""

    def __init__(self, ws: Any) -> None:
        self._ws = ws
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self._ws.send(json.dumps(message))
        deadline = time.monotonic() + 15
        while True:
            reply = json.loads(self._ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for event in self.events[seen:]:
                if event.get("method") == method:
                    self.events.remove(event)
                    return event
            seen = len(self.events)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {method} event within {timeout} s")
            self.events.append(json.loads(self._ws.recv(timeout=remaining)))


class _Page:
    def __init__(self, cdp: _Cdp, session: str) -> None:
        self.cdp, self.session = cdp, session

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        return self.cdp.call(method, params, self.session)

    def js(self, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise AssertionError(f"JS failed: {result['exceptionDetails']}\n{expression}")
        return result["result"].get("value")

    def wait_js(self, expression: str, timeout: float = 5) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.05)
        raise TimeoutError(f"never true: {expression}")

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)
        self.cdp.wait_for("Page.loadEventFired")
        self.wait_js("document.documentElement.dataset.ready === '1'")

    def errors(self) -> list[str]:
        found = []
        for event in self.cdp.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(json.dumps(params["exceptionDetails"])[:500])
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append(json.dumps(params.get("args"))[:500])
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                found.append(params["entry"].get("text", ""))
        return found

    def requested_urls(self) -> list[str]:
        return [
            e["params"]["request"]["url"]
            for e in self.cdp.events
            if e.get("method") == "Network.requestWillBeSent"
        ]

    def choose(self, select_id: str, value: str) -> None:
        self.js(
            f"(() => {{ const s = document.getElementById({json.dumps(select_id)}); "
            f"s.value = {json.dumps(value)}; "
            "s.dispatchEvent(new Event('change', { bubbles: true })); })()"
        )

    def tooltip(self) -> str:
        """The text of the hover tooltip once it shows."""
        return self.wait_js(
            "(() => { const t = document.getElementById('tooltip');"
            " return t.hidden ? '' : t.textContent; })()"
        )

    def hover(self, expression: str) -> None:
        """Move the real mouse to the centre of the element ``expression`` evaluates to."""
        x, y = self.js(
            f"(async () => {{ const e = {expression}; e.scrollIntoView({{ block: 'nearest' }}); "
            "for (let i = 0; i < 3; i++) await new Promise((r) => requestAnimationFrame(r)); "
            "const b = e.getBoundingClientRect(); return [b.x + b.width / 2, b.y + b.height / 2];"
            " })()"
        )
        self.call("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)


@pytest.fixture(scope="module")
def browser() -> Iterator[_Page]:
    binary, reason = _find_chromium()
    if binary is None:
        message = f"headless Chromium test skipped: {reason}"
        warnings.warn(message, stacklevel=1)
        pytest.skip(message)
    from websockets.sync.client import connect

    profile = tempfile.mkdtemp(prefix="prviz-chromium-")
    proc = subprocess.Popen(
        [
            binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-extensions",
            "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
            f"--user-data-dir={profile}", "--remote-debugging-port=0",
            "--remote-debugging-address=127.0.0.1", "--window-size=1280,900", "about:blank",
        ],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        port_file = Path(profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 20
        while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Chromium did not start (exit code {proc.poll()})")
            time.sleep(0.05)
        port, path = port_file.read_text().splitlines()[:2]
        with connect(f"ws://127.0.0.1:{port}{path}", max_size=None, proxy=None) as ws:
            cdp = _Cdp(ws)
            target = cdp.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = cdp.call("Target.attachToTarget", {"targetId": target, "flatten": True})
            page = _Page(cdp, session["sessionId"])
            for domain in ("Page", "Runtime", "Log", "Network"):
                page.call(f"{domain}.enable")
            page.call(
                "Emulation.setDeviceMetricsOverride", width=1280, height=900,
                deviceScaleFactor=1, mobile=False,
            )  # fmt: skip
            yield page
            with contextlib.suppress(Exception):  # the browser may already be gone
                cdp.call("Browser.close")
    finally:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        shutil.rmtree(profile, ignore_errors=True)


EVIL = '<img src=x onerror="document.title=1">'


def _odd_frames() -> dict[str, pd.DataFrame]:
    """Missing columns, nulls in keys and counts, infinities, and HTML in a variant name."""
    return {
        "summary": pd.DataFrame(
            {
                "dt": ["2025-01-02", "2025-01-03", None], "endpoint": ["e", "e", None],
                "variant": [EVIL, "v2", None], "n_predictions": [10, None, 3],
                "average_precision": [np.nan, 0.5, np.inf],
            }
        ),
        "points": pd.DataFrame(
            {
                "dt": ["2025-01-02"] * 4, "endpoint": ["e"] * 4, "variant": [EVIL] * 4,
                "threshold": [np.nan, 0.5, np.inf, 0.2], "precision": [1.0, np.nan, 0.5, 0.4],
                "recall": [0.0, 0.5, 1.0, 0.9],
            }
        ),
        "quarantine": pd.DataFrame(
            {"dt": ["2025-01-02", None], "source": ["elsewhere", None], "reason": [EVIL, None],
             "n": [None, 4]}
        ),
    }  # fmt: skip


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, Any]]]:
    folder = tmp_path_factory.mktemp("site")
    frames = _demo_frames()
    write_dashboard(_render(frames, refreshed_at=REFRESHED), folder / "index.html")
    empty = pd.DataFrame()
    write_dashboard(
        render_dashboard(empty, empty, empty, empty, empty, REFRESHED), folder / "empty.html"
    )
    odd = _odd_frames()
    write_dashboard(
        render_dashboard(
            odd["summary"], odd["points"], pd.DataFrame(columns=SUMMARY_COLUMNS), empty,
            odd["quarantine"], REFRESHED,
        ),
        folder / "odd.html",
    )  # fmt: skip
    server, url = make_server(folder, port=0)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield url, frames
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _expected_row_texts(summary: pd.DataFrame, dt: str, endpoint: str) -> dict[str, list[str]]:
    day = summary[(summary["dt"] == dt) & (summary["endpoint"] == endpoint)]
    out = {}
    for row in day.itertuples():
        ap = "\u2014" if pd.isna(row.average_precision) else f"{row.average_precision:.3f}"
        out[row.variant] = [f"{row.n_predictions:,}", f"{row.n_labeled:,}", ap]
    return out


def _assert_table_shows(
    page: _Page, summary: pd.DataFrame, dt: str, endpoint: str
) -> dict[str, list[str]]:
    """The day's rows of the summary table show that day's counts and AP; returns the cells."""
    rows = page.js(
        "Object.fromEntries(Array.from(document.querySelectorAll("
        "'#summary-table tbody.rows-day tr[data-variant]')).map((tr) => [tr.dataset.variant, "
        "Array.from(tr.cells).map((c) => c.textContent)]))"
    )
    expected = _expected_row_texts(summary, dt, endpoint)
    assert sorted(rows) == sorted(expected)
    for variant, (n_pred, n_lab, ap) in expected.items():
        assert rows[variant][1:3] == [n_pred, n_lab] and rows[variant][5] == ap, variant
    return rows


def _curves(page: _Page, chart: str) -> dict[str, str]:
    return page.js(
        f"Object.fromEntries(Array.from(document.querySelectorAll('#{chart} svg path.curve'))"
        ".map((p) => [p.dataset.variant, p.getAttribute('d')]))"
    )


def test_dashboard_in_headless_chromium(browser: _Page, site: tuple[str, dict[str, Any]]) -> None:
    url, frames = site
    summary, points = frames["summary"], frames["points"]
    other = "fraud-scorer"  # the first endpoint in sorted order is shown first
    days = sorted(summary["dt"].unique())
    browser.open(url)

    # Default view: the latest day, one curve per variant, every trend drawn.
    assert browser.js("document.getElementById('day-select').value") == days[-1]
    assert browser.js("document.getElementById('endpoint-select').value") == other
    assert browser.js("!document.getElementById('endpoint-field').hidden")
    variants = sorted(summary.loc[summary["endpoint"] == other, "variant"].unique())
    latest = _curves(browser, "pr-chart")
    assert sorted(latest) == variants
    assert all(len(re.findall(r"[ML][\d.]+,[\d.]+", d)) > 20 for d in latest.values())
    assert sorted(_curves(browser, "pr7d-chart")) == sorted([*variants, "__all__"])
    for trend in ("trend-ap", "trend-f1", "trend-coverage"):
        drawn = browser.js(
            f"Array.from(document.querySelectorAll('#{trend} svg path.trend'))"
            ".map((p) => [p.dataset.variant, p.getAttribute('d').split('L').length])"
        )
        assert sorted(v for v, _ in drawn) == variants, trend
        assert all(n >= 15 for _, n in drawn), trend
    _assert_table_shows(browser, summary, days[-1], other)

    # The day where canary-v14 had no positives: its metrics show as dashes, no curve.
    null_day = summary.loc[summary["average_precision"].isna(), "dt"].item()
    browser.choose("day-select", null_day)
    assert browser.js("document.getElementById('pr-chart').dataset.day") == null_day
    assert sorted(_curves(browser, "pr-chart")) == ["challenger-v13", "champion-v12"]
    rows = _assert_table_shows(browser, summary, null_day, other)
    assert "no positives" in rows["canary-v14"][0] and rows["canary-v14"][5] == "\u2014"

    # Another day: the table and the curves follow.
    browser.choose("day-select", days[5])
    moved = _curves(browser, "pr-chart")
    assert moved["champion-v12"] != latest["champion-v12"]
    _assert_table_shows(browser, summary, days[5], other)
    qtext = browser.js("document.getElementById('quarantine-table').textContent")
    assert "unknown_event_id" in qtext and "Ground truth" in qtext

    # Hover on a trend: the tooltip names the day and the value.
    browser.hover("document.querySelector('#trend-ap svg line.cursor')")
    tip = browser.tooltip()
    ap_day = summary[(summary["dt"] == days[5]) & (summary["endpoint"] == other)]
    assert days[5] in tip
    for variant, ap in ap_day[["variant", "average_precision"]].itertuples(index=False):
        assert f"{variant}{ap:.3f}" in tip, tip

    # Back to the latest day; hover a curve: threshold, precision, recall and F1 of a point.
    browser.choose("day-select", days[-1])
    browser.js("window.scrollTo(0, 0)")
    browser.hover("Array.from(document.querySelectorAll('#pr-chart svg circle.best')).at(-1)")
    tip = browser.tooltip()
    assert all(word in tip for word in ("threshold", "precision", "recall", "F1")), tip
    variant = next(v for v in variants if tip.startswith(v))
    shown = float(re.search(r"threshold([\d.e-]+)", tip).group(1))
    day_points = points[(points["dt"] == days[-1]) & (points["variant"] == variant)]
    assert np.isclose(day_points["threshold"], shown, rtol=1e-3).any()

    png = base64.b64decode(browser.call("Page.captureScreenshot", format="png")["data"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (1280, 900)
    shot = Path(tempfile.gettempdir()) / "prviz-dashboard.png"
    shot.write_bytes(png)
    if UPDATE_SCREENSHOT:
        SCREENSHOT_PATH.parent.mkdir(parents=True, exist_ok=True)
        SCREENSHOT_PATH.write_bytes(png)

    # Another endpoint: its own variants.
    browser.choose("endpoint-select", "returns-model")
    assert list(_curves(browser, "pr-chart")) == ["AllTraffic"]
    _assert_table_shows(browser, summary, days[-1], "returns-model")

    # The empty page says so in every panel, and does not throw either.
    browser.open(url + "empty.html")
    for panel in ("pr-chart", "pr7d-chart", "trend-ap", "summary-table", "quarantine-table"):
        text = browser.js(f"document.getElementById('{panel}').textContent")
        assert "No data yet" in text, panel

    # Odd data (missing columns, nulls, HTML in names) draws without errors, as text.
    browser.open(url + "odd.html")
    browser.choose("day-select", "2025-01-02")
    assert list(_curves(browser, "pr-chart")) == [EVIL]
    assert browser.js("document.querySelectorAll('img').length") == 0
    assert EVIL in browser.js("document.getElementById('summary-table').textContent")
    assert EVIL in browser.js("document.getElementById('quarantine-table').textContent")
    browser.hover("document.querySelector('#pr-chart svg path.curve')")
    assert "threshold" in browser.tooltip()
    assert browser.js("document.title") != "1"

    assert browser.errors() == []
    assert all(u.startswith((url, "data:", "about:")) for u in browser.requested_urls())
