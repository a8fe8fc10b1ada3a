"""The local, read-only PR dashboard: one self-contained HTML page.

Why one file with everything inline: the page must open from ``file://`` on a laptop with no
network, and be safe to serve from anywhere. So the data travels inside the page as a JSON block
(``<script type="application/json" id="prviz-data">``), the charts are SVG drawn by a small
vanilla-JS renderer, and a Content-Security-Policy ``<meta>`` forbids every network fetch
(``default-src 'none'``): the page cannot load or send anything, even if the data held a URL.

The JSON keeps every input column and value exactly (NaN / None / NaT become ``null``); ``<``,
``>`` and ``&`` are written as ``\\u003c`` etc., so no value can close the script element.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import math
import os
import tempfile
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

DEFAULT_TITLE = "prviz — precision-recall"

#: The element ids that tests and readers can rely on.
ELEMENT_IDS = (
    "day-select",
    "endpoint-select",
    "pr-chart",
    "pr7d-chart",
    "trend-ap",
    "trend-f1",
    "trend-coverage",
    "summary-table",
    "quarantine-table",
    "refreshed-at",
    "tooltip",
)

#: Content-Security-Policy for the page: inline script/style only, no connections of any kind.
PAGE_CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data:; base-uri 'none'; form-action 'none'"
)


def render_dashboard(
    summary: pd.DataFrame,
    points: pd.DataFrame,
    summary_7d: pd.DataFrame,
    points_7d: pd.DataFrame,
    quarantine: pd.DataFrame,
    refreshed_at: datetime,
    title: str = DEFAULT_TITLE,
) -> str:
    """Render the whole dashboard as one HTML string (inline CSS, JS, SVG; no external fetch).

    ``summary`` / ``summary_7d`` hold one row per (dt, endpoint, variant) as in the lake's
    ``pr_summary`` / ``pr_curves_7d_summary``; ``points`` / ``points_7d`` the thinned curve points;
    ``quarantine`` the per-day counts ``dt, source, reason, n``. Any of them may be empty; the
    page then says "No data yet" in the panels that need it. ``refreshed_at`` is shown in UTC
    (a naive datetime is taken to be UTC already).
    """
    refreshed_utc = _as_utc(refreshed_at)
    payload = {
        "meta": {"title": title, "refreshed_at": refreshed_utc.isoformat()},
        "summary": frame_to_table(summary),
        "points": frame_to_table(points),
        "summary_7d": frame_to_table(summary_7d),
        "points_7d": frame_to_table(points_7d),
        "quarantine": frame_to_table(quarantine),
    }
    replacements = {
        "@@CSP@@": html.escape(PAGE_CSP, quote=False),
        "@@TITLE@@": html.escape(title),
        "@@STYLE@@": _STYLE,
        "@@REFRESHED_ISO@@": html.escape(refreshed_utc.isoformat(), quote=True),
        "@@REFRESHED@@": refreshed_utc.strftime("%Y-%m-%d %H:%M UTC"),
        "@@SCRIPT@@": _SCRIPT,
        "@@DATA@@": dumps_for_script(payload),
    }
    page = _PAGE
    for marker, value in replacements.items():
        page = page.replace(marker, value)
    return page


def write_dashboard(html_text: str, path: Path) -> Path:
    """Write ``html_text`` to ``path`` atomically (temp file in the same folder + ``os.replace``).

    A reader (or the server) sees either the old page or the new one, never half a page. The
    parent folder is created if needed. Returns ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(html_text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def frame_to_table(frame: pd.DataFrame | None) -> dict[str, list[Any]]:
    """A DataFrame as ``{"columns": [...], "data": [[...], ...]}`` of plain JSON values.

    Missing values (NaN, None, NaT, pd.NA) and infinities become ``None``; numpy scalars become
    Python numbers; dates in the ``dt`` column become ``YYYY-MM-DD`` strings, other timestamps
    ISO-8601 strings.
    """
    if frame is None or len(frame.columns) == 0:
        return {"columns": [], "data": []}
    columns = [str(c) for c in frame.columns]
    converted = [
        _column_values(frame.iloc[:, i], is_day=(name == "dt")) for i, name in enumerate(columns)
    ]
    data = [list(row) for row in zip(*converted, strict=True)]
    return {"columns": columns, "data": data}


def _column_values(column: pd.Series, *, is_day: bool) -> list[Any]:
    """One column as plain JSON values; numeric numpy columns take a vectorised fast path."""
    dtype = column.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "iub":
        return column.to_numpy().tolist()
    if isinstance(dtype, np.dtype) and dtype.kind == "f":
        values = column.to_numpy()
        finite = np.isfinite(values)
        if finite.all():
            return values.tolist()
        out = values.astype(object)
        out[~finite] = None
        return out.tolist()
    values = column.tolist()
    if all(type(v) is str for v in values):
        return values
    return [_json_value(v, is_day=is_day) for v in values]


def dumps_for_script(payload: Mapping[str, Any]) -> str:
    """JSON text that is safe inside a ``<script>`` element (no ``</script``, no ``<!--``)."""
    text = json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _json_value(value: Any, *, is_day: bool = False) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return _json_value(float(value))
    if isinstance(value, pd.Timestamp | datetime | _dt.date):
        if pd.isna(value):
            return None
        return value.strftime("%Y-%m-%d") if is_day else value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=_dt.UTC)
    return moment.astimezone(_dt.UTC)


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="@@CSP@@">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>@@TITLE@@</title>
<style>@@STYLE@@</style>
</head>
<body>
<header class="top">
  <div class="wrap top-row">
    <div>
      <h1>@@TITLE@@</h1>
      <p class="sub"><span class="badge" title="This page only shows published results.">
        Read-only</span> Last refreshed <time id="refreshed-at"
        datetime="@@REFRESHED_ISO@@">@@REFRESHED@@</time></p>
    </div>
    <form class="controls" id="controls" onsubmit="return false">
      <label id="endpoint-field" hidden>Endpoint
        <select id="endpoint-select"></select></label>
      <label>Day
        <span class="day-nav">
          <button type="button" id="day-prev" title="Previous day"
            aria-label="Previous day">&#8249;</button>
          <select id="day-select"></select>
          <button type="button" id="day-next" title="Next day"
            aria-label="Next day">&#8250;</button>
        </span></label>
    </form>
  </div>
</header>
<main class="wrap">
  <noscript><p class="empty">This dashboard needs JavaScript to draw its charts.</p></noscript>
  <section class="cards" id="day-cards" aria-label="The chosen day at a glance"></section>
  <section class="grid two">
    <article class="panel">
      <h2>Precision-recall curves <span class="muted" id="pr-day"></span></h2>
      <div class="chart" id="pr-chart"></div>
      <div class="legend" id="pr-legend"></div>
    </article>
    <article class="panel">
      <h2>Trailing 7 days <span class="muted" id="pr7d-day"></span></h2>
      <div class="chart" id="pr7d-chart"></div>
      <div class="legend" id="pr7d-legend"></div>
    </article>
  </section>
  <section class="grid three">
    <article class="panel">
      <h2>Average precision <span class="muted">by day</span></h2>
      <div class="chart" id="trend-ap"></div>
    </article>
    <article class="panel">
      <h2>Best F1 <span class="muted">by day</span></h2>
      <div class="chart" id="trend-f1"></div>
    </article>
    <article class="panel">
      <h2>Label coverage <span class="muted">by day</span></h2>
      <div class="chart" id="trend-coverage"></div>
    </article>
  </section>
  <div class="legend trend-legend" id="trend-legend"></div>
  <section class="panel" style="margin-bottom: 12px">
    <h2>Per variant <span class="muted" id="table-day"></span></h2>
    <div class="table-wrap"><table id="summary-table"></table></div>
  </section>
  <section class="grid bottom">
    <article class="panel">
      <h2>Quarantined records <span class="muted" id="quarantine-day"></span></h2>
      <div class="table-wrap"><table id="quarantine-table"></table></div>
    </article>
    <footer class="panel notes">
    <h2>About this page</h2>
    <p><strong>This page is read-only.</strong> It shows results that prviz has already
    published and cannot change them; it loads nothing from the network.</p>
    <p><abbr title="average precision">AP</abbr> is the step-wise average precision
    (scikit-learn's <code>average_precision_score</code>); <abbr
    title="area under the precision-recall curve">PR-AUC</abbr> is the trapezoidal area
    (Spark MLlib's <code>areaUnderPR</code>). P@R&nbsp;0.8 is the best precision at recall
    &ge;&nbsp;0.8, R@P&nbsp;0.8 the best recall at precision &ge;&nbsp;0.8. Metrics show
    &ldquo;&mdash;&rdquo; when a variant had no positive labels that day. Curves are thinned
    to at most 200 points; dotted grey lines are iso-F1 contours. Label coverage is the share
    of predictions that have a label so far: recent days fill in as labels arrive.
    Quarantined records are inputs that could not be parsed or matched; they are counted,
    not used.</p>
    </footer>
  </section>
</main>
<div id="tooltip" role="tooltip" hidden></div>
<script type="application/json" id="prviz-data">@@DATA@@</script>
<script>@@SCRIPT@@</script>
</body>
</html>
"""

_STYLE = r"""
:root {
  --bg: #f5f6f8; --panel: #ffffff; --ink: #1d2329; --muted: #5a6570; --line: #d5dbe1;
  --grid: #e9edf1; --accent: #0b5cad; --bad: #a3330f;
}
* { box-sizing: border-box; }
[hidden] { display: none !important; }
html { -webkit-text-size-adjust: 100%; }
body {
  margin: 0; background: var(--bg); color: var(--ink);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
    "Noto Sans", "Liberation Sans", sans-serif;
  font-variant-numeric: tabular-nums;
}
.wrap { max-width: 1260px; margin: 0 auto; padding: 0 20px; }
.top { background: var(--panel); border-bottom: 1px solid var(--line); }
.top-row { display: flex; align-items: center; justify-content: space-between;
  gap: 16px; padding-top: 12px; padding-bottom: 12px; flex-wrap: wrap; }
h1 { font-size: 20px; margin: 0; letter-spacing: -0.01em; }
.sub { margin: 2px 0 0; color: var(--muted); font-size: 13px; }
.badge { display: inline-block; font-size: 11px; font-weight: 600; text-transform: uppercase;
  letter-spacing: 0.04em; color: var(--accent); border: 1px solid currentColor;
  border-radius: 999px; padding: 0 7px; margin-right: 6px; }
.controls { display: flex; gap: 18px; align-items: center; margin: 0; }
.controls label { display: flex; align-items: center; gap: 8px; font-weight: 600;
  color: var(--muted); font-size: 13px; }
select, button { font: inherit; color: var(--ink); background: var(--panel);
  border: 1px solid var(--line); border-radius: 6px; padding: 5px 8px; }
select { min-width: 150px; font-weight: 600; }
button { cursor: pointer; padding: 5px 11px; font-weight: 700; }
button:disabled { opacity: 0.4; cursor: default; }
select:focus-visible, button:focus-visible { outline: 2px solid var(--accent);
  outline-offset: 1px; }
.day-nav { display: inline-flex; gap: 4px; align-items: center; }
main.wrap { padding-top: 16px; padding-bottom: 28px; }
.cards { display: grid; grid-template-columns: repeat(4, 1fr); gap: 12px; margin-bottom: 12px; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 8px;
  padding: 9px 14px; }
.card .k { color: var(--muted); font-size: 12px; font-weight: 600; }
.card .v { font-size: 22px; font-weight: 700; line-height: 1.25; }
.card .d { color: var(--muted); font-size: 12px; }
.grid { display: grid; gap: 12px; margin-bottom: 12px; }
.grid.two { grid-template-columns: 1fr 1fr; }
.grid.three { grid-template-columns: 1fr 1fr 1fr; margin-bottom: 4px; }
.grid.bottom { grid-template-columns: 1fr 1.25fr; align-items: start; }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 8px;
  padding: 10px 14px 12px; min-width: 0; }
h2 { font-size: 15px; margin: 0 0 4px; }
.muted { color: var(--muted); font-weight: 400; }
.chart svg { display: block; width: 100%; height: auto; overflow: visible; }
.chart svg text { font-family: inherit; fill: var(--muted); font-size: 12px; }
.chart .axis-title { fill: var(--ink); font-weight: 600; }
.chart .grid-line { stroke: var(--grid); stroke-width: 1; }
.chart .frame { fill: none; stroke: #b9c2cb; stroke-width: 1; }
.chart .iso { fill: none; stroke: #c3cad1; stroke-width: 1; stroke-dasharray: 1 3; }
.chart svg text.iso-label { fill: #98a2ad; font-size: 10px; }
.chart .curve { fill: none; stroke-width: 2.2; stroke-linejoin: round; stroke-linecap: round; }
.chart .trend { fill: none; stroke-width: 2; stroke-linejoin: round; }
.chart .cursor { stroke: #8a949e; stroke-width: 1; stroke-dasharray: 3 3; }
.chart .dot { stroke: #fff; stroke-width: 1; }
.chart .best { stroke: #fff; stroke-width: 1.5; }
.chart .hl { fill: none; stroke: var(--ink); stroke-width: 2; pointer-events: none; }
.chart svg text.empty-msg { fill: var(--muted); font-size: 15px; font-weight: 600; }
.chart .hit { fill: transparent; cursor: crosshair; }
.chart.trendc .hit { cursor: pointer; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 16px; font-size: 13px; margin-top: 2px; }
.legend .item { display: inline-flex; align-items: center; gap: 6px; }
.legend .item span.val { color: var(--muted); }
.trend-legend { justify-content: center; margin-bottom: 12px; }
.sw { display: inline-block; width: 22px; height: 0; border-top: 3px solid; }
.sw.dashed { border-top-style: dashed; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { padding: 5px 8px; border-bottom: 1px solid var(--grid); text-align: right;
  white-space: nowrap; }
th:first-child, td:first-child, th.l, td.l { text-align: left; }
thead th { color: var(--muted); font-weight: 600; font-size: 12px;
  border-bottom: 1px solid var(--line); vertical-align: bottom; }
tbody tr:hover { background: #f3f6f9; }
tr.group th { text-align: left; color: var(--ink); font-size: 12px; background: #f7f9fb;
  border-bottom: 1px solid var(--line); padding-top: 7px; }
tfoot td { font-weight: 700; border-bottom: 0; }
td.na { color: #8a949e; }
.vname { display: inline-flex; align-items: center; gap: 7px; font-weight: 600; }
.vdot { width: 10px; height: 10px; border-radius: 50%; display: inline-block; }
.flag { font-size: 11px; color: var(--bad); font-weight: 600; margin-left: 6px; }
.empty { color: var(--muted); font-weight: 600; margin: 18px 0; text-align: center; }
.notes { color: var(--muted); font-size: 13px; }
.notes p { margin: 4px 0 8px; }
.notes strong, .notes h2 { color: var(--ink); }
code { font-size: 12px; }
#tooltip { position: fixed; z-index: 10; pointer-events: none; background: #1d2329;
  color: #fff; font-size: 12.5px; line-height: 1.45; padding: 7px 10px; border-radius: 6px;
  box-shadow: 0 4px 14px rgba(0, 0, 0, 0.18); max-width: 320px; }
#tooltip .tt-h { font-weight: 700; margin-bottom: 2px; }
#tooltip .tt-row { display: flex; justify-content: space-between; gap: 14px; }
#tooltip .tt-k { color: #c9d1d9; }
@media (max-width: 900px) {
  .grid.two, .grid.three, .grid.bottom { grid-template-columns: 1fr; }
  .cards { grid-template-columns: 1fr 1fr; }
}
"""

_SCRIPT = r"""
(() => {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const RAW = JSON.parse($("prviz-data").textContent || "{}");
  const ALL = "__all__";
  // Okabe-Ito (colour-blind safe), yellow dropped for contrast on white.
  const PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#332288"];
  const ALL_COLOR = "#30363d";
  const DASHES = ["", "7 3", "2 3", "9 3 2 3"];
  const NO_DATA = "No data yet";

  // ---- data -------------------------------------------------------------------------------
  const rows = (t) => {
    if (!t || !Array.isArray(t.columns) || !Array.isArray(t.data)) return [];
    return t.data.map((r) => {
      const o = {};
      t.columns.forEach((c, i) => { o[c] = Array.isArray(r) ? r[i] : null; });
      return o;
    });
  };
  const str = (v) => (v === null || v === undefined ? "" : String(v));
  const num = (v) => (typeof v === "number" && isFinite(v) ? v : null);
  const esc = (v) => str(v).replace(/[&<>"']/g, (c) => (
    { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const uniqSorted = (a) => Array.from(new Set(a)).sort();
  const keyOf = (dt, ep, v) => str(dt) + "\u0001" + str(ep) + "\u0001" + str(v);

  const T = {
    summary: rows(RAW.summary), points: rows(RAW.points), summary7: rows(RAW.summary_7d),
    points7: rows(RAW.points_7d), quarantine: rows(RAW.quarantine),
  };
  const indexRows = (list) => {
    const m = new Map();
    for (const r of list) m.set(keyOf(r.dt, r.endpoint, r.variant), r);
    return m;
  };
  const thr = (p) => (p.t === null ? Infinity : p.t);
  const groupPoints = (list) => {
    const m = new Map();
    for (const r of list) {
      const p = num(r.precision), rc = num(r.recall);
      if (p === null || rc === null) continue;
      const k = keyOf(r.dt, r.endpoint, r.variant);
      if (!m.has(k)) m.set(k, []);
      let f = num(r.f1);
      if (f === null && p + rc > 0) f = (2 * p * rc) / (p + rc);
      m.get(k).push({ t: num(r.threshold), p: p, r: rc, f: f });
    }
    // Recall ascending; at equal recall the higher threshold (higher precision) first.
    const cmp = (a, b) => (a.r - b.r) || (thr(a) === thr(b) ? 0 : (thr(a) > thr(b) ? -1 : 1));
    for (const arr of m.values()) arr.sort(cmp);
    return m;
  };
  const S1 = indexRows(T.summary), S7 = indexRows(T.summary7);
  const P1 = groupPoints(T.points), P7 = groupPoints(T.points7);
  const curveTables = [T.summary, T.points, T.summary7, T.points7];
  // Rows without an endpoint are listed last, as "(none)".
  const endpoints = uniqSorted(curveTables.flatMap((t) => t.map((r) => str(r.endpoint))))
    .sort((a, b) => (a === "") - (b === ""));

  const daysFor = (ep) => uniqSorted(curveTables
    .flatMap((t) => t.filter((r) => str(r.endpoint) === ep).map((r) => str(r.dt)))
    .concat(T.quarantine.map((r) => str(r.dt)))
    .filter((d) => d !== ""));
  const summaryDaysFor = (ep) => uniqSorted(T.summary
    .filter((r) => str(r.endpoint) === ep && str(r.dt) !== "").map((r) => str(r.dt)));
  const variantsFor = (ep) => uniqSorted(curveTables
    .flatMap((t) => t.filter((r) => str(r.endpoint) === ep).map((r) => str(r.variant)))
    .filter((v) => v !== ALL));
  const styleFor = (variants) => {
    const m = new Map();
    variants.forEach((v, i) => m.set(v, {
      color: PALETTE[i % PALETTE.length],
      dash: DASHES[Math.floor(i / PALETTE.length) % DASHES.length],
    }));
    m.set(ALL, { color: ALL_COLOR, dash: "" });
    return m;
  };
  const label = (v) => (v === ALL ? "all variants" : v === "" ? "(unnamed)" : v);

  // ---- formatting -------------------------------------------------------------------------
  const DASH = "\u2014";
  const fInt = (v) => (num(v) === null ? DASH : Math.round(v).toLocaleString("en-US"));
  const f3 = (v) => (num(v) === null ? DASH : v.toFixed(3));
  const fPct = (v) => (num(v) === null ? DASH : (100 * v).toFixed(1) + "%");
  const fThr = (v) => (num(v) === null ? DASH : Number(v.toPrecision(4)).toString());
  const fBound = (v) => (num(v) === null ? DASH : v === 0 ? "0 (exact)" : "\u00b1" +
    Number(v.toPrecision(2)).toString());
  const c1 = (x) => (Math.round(x * 10) / 10).toString();

  // ---- state ------------------------------------------------------------------------------
  const state = { endpoint: endpoints.length ? endpoints[0] : "", day: "", days: [] };

  // ---- tooltip ----------------------------------------------------------------------------
  const tip = $("tooltip");
  const showTip = (htmlText, x, y) => {
    tip.innerHTML = htmlText;
    tip.hidden = false;
    const w = tip.offsetWidth, h = tip.offsetHeight;
    let left = x + 14, top = y + 14;
    if (left + w > window.innerWidth - 4) left = x - w - 14;
    if (top + h > window.innerHeight - 4) top = y - h - 14;
    tip.style.left = Math.max(4, left) + "px";
    tip.style.top = Math.max(4, top) + "px";
  };
  const hideTip = () => { tip.hidden = true; };
  const ttRow = (k, v) => `<div class="tt-row"><span class="tt-k">${esc(k)}</span>` +
    `<span>${esc(v)}</span></div>`;

  // Hover: `pick(x, y)` (SVG coordinates) returns {html, marks: [{x, y, color}]} or null.
  const attachHover = (svg, pick, onClick) => {
    const toSvg = (ev) => {
      const m = svg.getScreenCTM();
      if (!m) return null;
      const pt = svg.createSVGPoint();
      pt.x = ev.clientX; pt.y = ev.clientY;
      return pt.matrixTransform(m.inverse());
    };
    const hl = svg.querySelector("g.hl-layer");
    const clear = () => { if (hl) hl.innerHTML = ""; hideTip(); };
    svg.addEventListener("mousemove", (ev) => {
      const q = toSvg(ev);
      const hit = q ? pick(q.x, q.y) : null;
      if (!hit) { clear(); return; }
      if (hl) {
        hl.innerHTML = hit.marks.map((mk) => `<circle class="hl" cx="${c1(mk.x)}" ` +
          `cy="${c1(mk.y)}" r="5.5" style="stroke:${mk.color}"></circle>`).join("");
      }
      showTip(hit.html, ev.clientX, ev.clientY);
    });
    svg.addEventListener("mouseleave", clear);
    if (onClick) {
      svg.addEventListener("click", (ev) => {
        const q = toSvg(ev);
        if (q) onClick(q.x, q.y);
      });
    }
  };

  // ---- PR chart ---------------------------------------------------------------------------
  const PR = { w: 560, h: 350, m: { l: 50, r: 44, t: 10, b: 42 } };
  const drawPR = (el, series, aria, emptyMsg) => {
    const { w: W, h: H, m } = PR;
    const iw = W - m.l - m.r, ih = H - m.t - m.b;
    const sx = (r) => m.l + r * iw, sy = (p) => m.t + (1 - p) * ih;
    const drawn = series.filter((s) => s.points.length > 0);
    const out = [`<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(aria)}">`];
    for (let i = 0; i <= 5; i++) {
      const v = i / 5, x = c1(sx(v)), y = c1(sy(v));
      out.push(`<line class="grid-line" x1="${x}" x2="${x}" y1="${m.t}" y2="${m.t + ih}"/>`);
      out.push(`<line class="grid-line" x1="${m.l}" x2="${m.l + iw}" y1="${y}" y2="${y}"/>`);
      out.push(`<text x="${x}" y="${m.t + ih + 16}" text-anchor="middle">${v.toFixed(1)}</text>`);
      out.push(`<text x="${m.l - 7}" y="${c1(sy(v) + 4)}" text-anchor="end">` +
        `${v.toFixed(1)}</text>`);
    }
    for (const fv of [0.2, 0.4, 0.6, 0.8]) {
      const pts = [];
      const r0 = fv / (2 - fv);
      for (let k = 0; k <= 40; k++) {
        const r = r0 + (1 - r0) * (k / 40);
        const p = (fv * r) / (2 * r - fv);
        if (p <= 1.0001) pts.push(`${c1(sx(r))},${c1(sy(Math.min(p, 1)))}`);
      }
      out.push(`<polyline class="iso" points="${pts.join(" ")}"/>`);
      const pl = (fv * 1) / (2 - fv);
      out.push(`<text class="iso-label" x="${c1(sx(1) + 4)}" y="${c1(sy(pl) + 3.5)}">` +
        `F1 ${fv.toFixed(1)}</text>`);
    }
    out.push(`<rect class="frame" x="${m.l}" y="${m.t}" width="${iw}" height="${ih}"/>`);
    out.push(`<text class="axis-title" x="${m.l + iw / 2}" y="${H - 6}" ` +
      `text-anchor="middle">Recall</text>`);
    out.push(`<text class="axis-title" transform="translate(14 ${m.t + ih / 2}) rotate(-90)" ` +
      `text-anchor="middle">Precision</text>`);
    const hov = [];
    for (const s of drawn) {
      const d = s.points.map((p, i) => `${i ? "L" : "M"}${c1(sx(p.r))},${c1(sy(p.p))}`).join("");
      const dash = s.dash ? ` stroke-dasharray="${s.dash}"` : "";
      out.push(`<path class="curve" data-variant="${esc(s.variant)}" d="${d}" ` +
        `style="stroke:${s.color}"${dash}/>`);
      s.points.forEach((p) => hov.push({ x: sx(p.r), y: sy(p.p), s: s, p: p }));
    }
    for (const s of drawn) {
      let best = null;
      for (const p of s.points) if (p.f !== null && (best === null || p.f > best.f)) best = p;
      if (best) {
        out.push(`<circle class="best" data-variant="${esc(s.variant)}" cx="${c1(sx(best.r))}" ` +
          `cy="${c1(sy(best.p))}" r="4.5" style="fill:${s.color}"><title>best F1 ` +
          `${esc(f3(best.f))}</title></circle>`);
      }
    }
    if (!drawn.length) {
      out.push(`<text class="empty-msg" x="${m.l + iw / 2}" y="${m.t + ih / 2}" ` +
        `text-anchor="middle">${esc(emptyMsg)}</text>`);
    }
    out.push(`<g class="hl-layer"></g>`);
    out.push(`<rect class="hit" x="${m.l}" y="${m.t}" width="${iw}" height="${ih}"/>`);
    out.push("</svg>");
    el.innerHTML = out.join("");
    const svg = el.querySelector("svg");
    attachHover(svg, (x, y) => {
      if (!hov.length || x < m.l - 8 || x > m.l + iw + 8 || y < m.t - 8 || y > m.t + ih + 8) {
        return null;
      }
      let best = null, bd = Infinity;
      for (const h of hov) {
        const dd = (h.x - x) ** 2 + (h.y - y) ** 2;
        if (dd < bd) { bd = dd; best = h; }
      }
      const p = best.p;
      const thrText = p.t === null ? DASH + " (curve end)" : fThr(p.t);
      return {
        marks: [{ x: best.x, y: best.y, color: best.s.color }],
        html: `<div class="tt-h">${esc(label(best.s.variant))}</div>` +
          ttRow("threshold", thrText) + ttRow("precision", f3(p.p)) +
          ttRow("recall", f3(p.r)) + ttRow("F1", f3(p.f)),
      };
    });
  };

  const legendHtml = (series, metricName) => series.map((s) => {
    const dash = s.dash ? " dashed" : "";
    const val = metricName ? `<span class="val">${esc(metricName)} ${esc(f3(s.ap))}</span>` : "";
    return `<span class="item" data-variant="${esc(s.variant)}"><span class="sw${dash}" ` +
      `style="border-top-color:${s.color}"></span>${esc(label(s.variant))} ${val}</span>`;
  }).join("");

  // ---- trend charts -----------------------------------------------------------------------
  const TR = { w: 400, h: 214, m: { l: 46, r: 12, t: 10, b: 28 } };
  const niceDomain = (vals) => {
    let lo = Math.min(...vals), hi = Math.max(...vals);
    const vmin = lo, vmax = hi;
    if (hi - lo < 0.02) { const c = (hi + lo) / 2; lo = c - 0.01; hi = c + 0.01; }
    const pad = (hi - lo) * 0.08;
    lo -= pad; hi += pad;
    const steps = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5];
    const step = steps.find((s) => (hi - lo) / s <= 5) || 10;
    lo = Math.floor(lo / step + 1e-9) * step;
    hi = Math.ceil(hi / step - 1e-9) * step;
    if (lo < 0 && vmin >= 0) lo = 0;
    if (hi > 1 && vmax <= 1) hi = 1;
    const ticks = [];
    for (let v = lo; v <= hi + step / 2; v += step) ticks.push(Math.round(v * 1e6) / 1e6);
    return { lo: lo, hi: hi > lo ? hi : lo + step, ticks: ticks, step: step };
  };
  const drawTrend = (el, spec) => {
    const { w: W, h: H, m } = TR;
    const iw = W - m.l - m.r, ih = H - m.t - m.b;
    const days = spec.days, series = spec.series;
    const vals = series.flatMap((s) => s.values.filter((v) => v !== null));
    const out = [`<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(spec.aria)}">`];
    if (!days.length || !vals.length) {
      out.push(`<rect class="frame" x="${m.l}" y="${m.t}" width="${iw}" height="${ih}"/>`);
      out.push(`<text class="empty-msg" x="${m.l + iw / 2}" y="${m.t + ih / 2}" ` +
        `text-anchor="middle">${esc(days.length ? "No values (no positives)" : NO_DATA)}` +
        `</text></svg>`);
      el.innerHTML = out.join("");
      return;
    }
    const dom = niceDomain(vals);
    const n = days.length;
    const sx = (i) => m.l + (n === 1 ? iw / 2 : (i * iw) / (n - 1));
    const sy = (v) => m.t + (1 - (v - dom.lo) / (dom.hi - dom.lo)) * ih;
    const dec = dom.step < 0.01 ? 3 : dom.step < 0.1 ? 2 : 1;
    const yl = (v) => (spec.percent ? (100 * v).toFixed(Math.max(0, dec - 2)) + "%" :
      v.toFixed(dec));
    for (const v of dom.ticks) {
      const y = c1(sy(v));
      out.push(`<line class="grid-line" x1="${m.l}" x2="${m.l + iw}" y1="${y}" y2="${y}"/>`);
      out.push(`<text x="${m.l - 6}" y="${c1(sy(v) + 4)}" text-anchor="end">${yl(v)}</text>`);
    }
    const nTicks = Math.min(n, 6);
    const tickIdx = new Set();
    for (let k = 0; k < nTicks; k++) {
      tickIdx.add(nTicks === 1 ? 0 : Math.round((k * (n - 1)) / (nTicks - 1)));
    }
    for (const i of tickIdx) {
      out.push(`<text x="${c1(sx(i))}" y="${m.t + ih + 17}" text-anchor="middle">` +
        `${esc(days[i].slice(5))}</text>`);
    }
    out.push(`<rect class="frame" x="${m.l}" y="${m.t}" width="${iw}" height="${ih}"/>`);
    const sel = days.indexOf(spec.selected);
    if (sel >= 0) {
      out.push(`<line class="cursor" x1="${c1(sx(sel))}" x2="${c1(sx(sel))}" y1="${m.t}" ` +
        `y2="${m.t + ih}"/>`);
    }
    const r = n > 45 ? 1.8 : 3;
    for (const s of series) {
      let d = "", pen = false;
      s.values.forEach((v, i) => {
        if (v === null) { pen = false; return; }
        d += `${pen ? "L" : "M"}${c1(sx(i))},${c1(sy(v))}`;
        pen = true;
      });
      if (d) {
        const dash = s.dash ? ` stroke-dasharray="${s.dash}"` : "";
        out.push(`<path class="trend" data-variant="${esc(s.variant)}" d="${d}" ` +
          `style="stroke:${s.color}"${dash}/>`);
      }
      s.values.forEach((v, i) => {
        if (v === null) return;
        out.push(`<circle class="dot" cx="${c1(sx(i))}" cy="${c1(sy(v))}" r="${r}" ` +
          `style="fill:${s.color}"/>`);
      });
    }
    out.push(`<g class="hl-layer"></g>`);
    out.push(`<rect class="hit" x="${m.l - 6}" y="${m.t}" width="${iw + 12}" height="${ih}"/>`);
    out.push("</svg>");
    el.innerHTML = out.join("");
    el.classList.add("trendc");
    const nearest = (x) => {
      let bi = 0, bd = Infinity;
      for (let i = 0; i < n; i++) {
        const dd = Math.abs(sx(i) - x);
        if (dd < bd) { bd = dd; bi = i; }
      }
      return bi;
    };
    attachHover(el.querySelector("svg"), (x, y) => {
      if (x < m.l - 10 || x > m.l + iw + 10 || y < m.t - 10 || y > m.t + ih + 10) return null;
      const i = nearest(x);
      const marks = [];
      let body = "";
      for (const s of series) {
        const v = s.values[i];
        if (v !== null) marks.push({ x: sx(i), y: sy(v), color: s.color });
        body += `<div class="tt-row"><span class="tt-k"><span class="vdot" ` +
          `style="background:${s.color}"></span> ${esc(label(s.variant))}</span>` +
          `<span>${esc(spec.fmt(v))}</span></div>`;
      }
      return { marks: marks, html: `<div class="tt-h">${esc(days[i])} \u00b7 ` +
        `${esc(spec.metric)}</div>${body}` };
    }, (x) => setDay(days[nearest(x)]));
  };

  // ---- tables and cards -------------------------------------------------------------------
  const td = (text, title) => {
    const na = text === DASH ? " class=\"na\"" : "";
    const t = title ? ` title="${esc(title)}"` : "";
    return `<td${na}${t}>${esc(text)}</td>`;
  };
  const SUMMARY_HEAD = ["Variant", "Predictions", "Labeled", "Positives", "Coverage", "AP",
    "PR-AUC", "Best F1 (threshold)", "P@R 0.8", "R@P 0.8", "AP error bound"];
  const summaryRow = (r, st) => {
    const noPos = num(r.n_positives) === 0 || num(r.average_precision) === null;
    const why = noPos ? "undefined: no positive labels" : "";
    const bf = num(r.best_f1) === null ? DASH :
      `${f3(r.best_f1)} (${fThr(r.best_f1_threshold)})`;
    const color = st ? st.color : ALL_COLOR;
    return `<tr data-variant="${esc(r.variant)}"><td><span class="vname"><span class="vdot" ` +
      `style="background:${color}"></span>${esc(label(str(r.variant)))}</span>` +
      (noPos ? `<span class="flag">no positives</span>` : "") + "</td>" +
      td(fInt(r.n_predictions)) + td(fInt(r.n_labeled)) + td(fInt(r.n_positives)) +
      td(fPct(r.label_coverage)) + td(f3(r.average_precision), why) +
      td(f3(r.pr_auc), why) + td(bf, why) + td(f3(r.precision_at_recall_80), why) +
      td(f3(r.recall_at_precision_80), why) + td(fBound(r.ap_error_bound), why) + "</tr>";
  };
  const renderSummaryTable = (variants, styles) => {
    const el = $("summary-table");
    const day = state.day, ep = state.endpoint;
    $("table-day").textContent = day ? "\u00b7 " + day : "";
    if (!T.summary.length && !T.summary7.length) {
      el.innerHTML = `<caption class="empty">${NO_DATA}</caption>`;
      return;
    }
    const daily = T.summary.filter((r) => str(r.dt) === day && str(r.endpoint) === ep);
    const weekly = T.summary7.filter((r) => str(r.dt) === day && str(r.endpoint) === ep);
    const order = (a, b) => {
      const va = str(a.variant), vb = str(b.variant);
      if (va === ALL || vb === ALL) return va === ALL ? 1 : -1;
      return va < vb ? -1 : va > vb ? 1 : 0;
    };
    daily.sort(order); weekly.sort(order);
    const cols = SUMMARY_HEAD.length;
    let body = `<thead><tr>${SUMMARY_HEAD.map((h) => `<th scope="col">${h}</th>`).join("")}` +
      "</tr></thead>";
    body += `<tbody class="rows-day"><tr class="group"><th colspan="${cols}">Day ${esc(day)}` +
      "</th></tr>";
    body += daily.length ? daily.map((r) => summaryRow(r, styles.get(str(r.variant)))).join("") :
      `<tr><td colspan="${cols}" class="na">No summary for this day yet.</td></tr>`;
    body += "</tbody>";
    if (weekly.length) {
      body += `<tbody class="rows-7d"><tr class="group"><th colspan="${cols}">Trailing 7 days ` +
        `ending ${esc(day)}</th></tr>` +
        weekly.map((r) => summaryRow(r, styles.get(str(r.variant)))).join("") + "</tbody>";
    }
    el.innerHTML = body;
  };
  const SOURCE_LABEL = { capture: "Data Capture", ground_truth: "Ground truth" };
  const renderQuarantine = () => {
    const el = $("quarantine-table");
    const day = state.day;
    $("quarantine-day").textContent = day ? "\u00b7 " + day : "";
    if (!T.quarantine.length) {
      el.innerHTML = `<caption class="empty">${NO_DATA}</caption>`;
      return;
    }
    const list = T.quarantine.filter((r) => str(r.dt) === day);
    if (!list.length) {
      el.innerHTML = `<caption class="empty">No quarantined records on ${esc(day)}.</caption>`;
      return;
    }
    list.sort((a, b) => (str(a.source) < str(b.source) ? -1 : str(a.source) > str(b.source) ?
      1 : (num(b.n) || 0) - (num(a.n) || 0)));
    const total = list.reduce((acc, r) => acc + (num(r.n) || 0), 0);
    el.innerHTML = "<thead><tr><th scope=\"col\">Source</th><th class=\"l\" scope=\"col\">" +
      "Reason</th>" +
      "<th scope=\"col\">Records</th></tr></thead><tbody>" + list.map((r) =>
        `<tr><td>${esc(SOURCE_LABEL[str(r.source)] || str(r.source))}</td>` +
        `<td class="l">${esc(str(r.reason))}</td>${td(fInt(r.n))}</tr>`).join("") +
      `</tbody><tfoot><tr><td colspan="2">Total</td>${td(fInt(total))}</tr></tfoot>`;
  };
  const renderCards = () => {
    const el = $("day-cards");
    const day = state.day, ep = state.endpoint;
    const daily = T.summary.filter((r) => str(r.dt) === day && str(r.endpoint) === ep);
    const sum = (f) => daily.reduce((a, r) => a + (num(r[f]) || 0), 0);
    const pred = sum("n_predictions"), lab = sum("n_labeled"), pos = sum("n_positives");
    const q = T.quarantine.filter((r) => str(r.dt) === day);
    const qBy = (s) => q.filter((r) => str(r.source) === s).reduce((a, r) => a + (num(r.n) || 0),
      0);
    const has = daily.length > 0;
    const card = (k, v, d) => `<div class="card"><div class="k">${esc(k)}</div>` +
      `<div class="v">${esc(v)}</div><div class="d">${esc(d)}</div></div>`;
    el.innerHTML =
      card("Predictions", has ? fInt(pred) : DASH, has ? `${daily.length} variant` +
        (daily.length === 1 ? "" : "s") + (ep ? ` \u00b7 ${ep}` : "") : NO_DATA) +
      card("Labeled", has ? fInt(lab) : DASH, has && pred > 0 ?
        `${fPct(lab / pred)} label coverage` : "") +
      card("Positives", has ? fInt(pos) : DASH, has && lab > 0 ? `${fPct(pos / lab)} base rate` :
        "") +
      card("Quarantined", T.quarantine.length ? fInt(qBy("capture") + qBy("ground_truth") +
        q.filter((r) => !SOURCE_LABEL[str(r.source)]).reduce((a, r) => a + (num(r.n) || 0), 0)) :
        DASH, T.quarantine.length ? `capture ${fInt(qBy("capture"))} \u00b7 labels ` +
        `${fInt(qBy("ground_truth"))}` : NO_DATA);
  };

  // ---- render -----------------------------------------------------------------------------
  const guard = (name, fn) => {
    try { fn(); } catch (err) {
      console.error("prviz: could not draw " + name, err);
      const el = $(name);
      if (el) el.innerHTML = `<p class="empty">Could not draw this panel.</p>`;
    }
  };
  const render = () => {
    hideTip();
    const ep = state.endpoint, day = state.day;
    const variants = variantsFor(ep);
    const styles = styleFor(variants);
    const curveSeries = (pts, sums, names) => names.map((v) => {
      const st = styles.get(v);
      const s = sums.get(keyOf(day, ep, v));
      return { variant: v, color: st.color, dash: st.dash, points: pts.get(keyOf(day, ep, v)) || [],
        ap: s ? num(s.average_precision) : null };
    });
    guard("day-cards", renderCards);
    guard("pr-chart", () => {
      const series = curveSeries(P1, S1, variants);
      const msg = T.points.length ? "No curve for this day yet" : NO_DATA;
      $("pr-day").textContent = day ? "\u00b7 " + day : "";
      drawPR($("pr-chart"), series, `Precision-recall curves for ${day}`, msg);
      $("pr-chart").dataset.day = day;
      $("pr-legend").innerHTML = legendHtml(series.filter((s) => s.points.length), "AP");
    });
    guard("pr7d-chart", () => {
      const names = variants.concat(uniqSorted(T.points7.concat(T.summary7)
        .filter((r) => str(r.variant) === ALL && str(r.endpoint) === ep).map(() => ALL)));
      const series = curveSeries(P7, S7, names).map((s) => (
        { ...s, dash: s.variant === ALL ? "" : "7 4" }));
      const msg = T.points7.length ? "No 7-day curve for this day yet" : NO_DATA;
      $("pr7d-day").textContent = day ? "\u00b7 7 days ending " + day : "";
      drawPR($("pr7d-chart"), series, `Trailing 7-day precision-recall curves ending ${day}`,
        msg);
      $("pr7d-chart").dataset.day = day;
      $("pr7d-legend").innerHTML = legendHtml(series.filter((s) => s.points.length), "AP");
    });
    const tdays = summaryDaysFor(ep);
    const trend = (id, field, metric, fmt, percent) => guard(id, () => {
      const series = variants.map((v) => ({
        variant: v, color: styles.get(v).color, dash: styles.get(v).dash,
        values: tdays.map((d) => { const r = S1.get(keyOf(d, ep, v)); return r ? num(r[field]) :
          null; }),
      })).filter((s) => s.values.some((x) => x !== null) || tdays.length === 0);
      drawTrend($(id), { days: tdays, series: series, selected: day, metric: metric, fmt: fmt,
        percent: percent, aria: `${metric} by day` });
    });
    trend("trend-ap", "average_precision", "AP", f3, false);
    trend("trend-f1", "best_f1", "best F1", f3, false);
    trend("trend-coverage", "label_coverage", "label coverage", fPct, true);
    guard("trend-legend", () => {
      $("trend-legend").innerHTML = tdays.length ? legendHtml(variants.map((v) => (
        { variant: v, color: styles.get(v).color, dash: styles.get(v).dash })), "") : "";
    });
    guard("summary-table", () => renderSummaryTable(variants, styles));
    guard("quarantine-table", renderQuarantine);
    const i = state.days.indexOf(day);
    $("day-prev").disabled = i <= 0;
    $("day-next").disabled = i < 0 || i >= state.days.length - 1;
  };

  const daySelect = $("day-select"), epSelect = $("endpoint-select");
  const fillDays = () => {
    state.days = daysFor(state.endpoint);
    if (!state.days.includes(state.day)) state.day = state.days.length ?
      state.days[state.days.length - 1] : "";
    daySelect.innerHTML = state.days.length ? state.days.slice().reverse().map((d) =>
      `<option value="${esc(d)}">${esc(d)}</option>`).join("") :
      `<option value="">${NO_DATA}</option>`;
    daySelect.value = state.day;
    daySelect.disabled = state.days.length === 0;
  };
  const setDay = (d) => {
    if (!d || d === state.day || !state.days.includes(d)) return;
    state.day = d;
    daySelect.value = d;
    render();
  };
  epSelect.innerHTML = endpoints.map((e) => `<option value="${esc(e)}">${esc(e || "(none)")}` +
    "</option>").join("");
  $("endpoint-field").hidden = endpoints.length <= 1;
  epSelect.addEventListener("change", () => {
    state.endpoint = epSelect.value;
    fillDays();
    render();
  });
  daySelect.addEventListener("change", () => {
    if (state.days.includes(daySelect.value)) { state.day = daySelect.value; render(); }
  });
  $("day-prev").addEventListener("click", () => setDay(state.days[state.days.indexOf(state.day)
    - 1]));
  $("day-next").addEventListener("click", () => setDay(state.days[state.days.indexOf(state.day)
    + 1]));
  window.addEventListener("scroll", hideTip, { passive: true });

  fillDays();
  render();
  document.documentElement.dataset.ready = "1";
})();
"""
