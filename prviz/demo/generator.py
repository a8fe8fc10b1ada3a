"""Deterministic demo data in the real SageMaker formats (DESIGN.md section 5).

``write_demo_data`` writes Data Capture files and Model Monitor ground-truth files under
``out`` and returns a :class:`DemoReport` with the exact ground truth of what it wrote, so
tests of the readers, the join and the metrics can compare against exact numbers.

Layout::

    {out}/capture/{endpoint}/{variant}/yyyy/mm/dd/hh/{MM}-{SS}-{mmm}-{uuid}.jsonl
    {out}/ground-truth/yyyy/mm/dd/hh/{MM}-{SS}-{mmm}-{uuid}.jsonl

A capture file's hour folder is the UTC hour of every call in it and its name is the time
of its first record; every hour of every day has ``files_per_hour`` files per variant.
A ground-truth folder is the hour the labels were *collected* (1 hour to 9 days after the
prediction), its file name the collection time of its first label.

The mix (all rates are per record, drawn independently with the seeded RNG):

* variants take turns in two roles: even positions (``champion``) send 85 % CSV payloads /
  15 % JSON, odd positions (``challenger``) 15 % CSV / 85 % JSON; independently 15 % of
  records of both are captured with encoding ``BASE64`` (the CSV or JSON payload encoded,
  with the real content type). Input and output of a record share format and encoding.
* 40 % of records carry an ``inferenceId`` (``txn-yyyymmdd-nnnnnnn``, unique); the join key
  is the inferenceId if present, else the eventId (a uuid4 string drawn from the RNG).
* 50 % of ``inferenceTime`` values carry milliseconds (``...T10:42:07.123Z``), the rest not.
* 5 % of good CSV-payload records (plain or BASE64) are mini-batches of k = 2..5 lines
  with k newline-separated scores.
* labels ~ Bernoulli(base_rate) per prediction; scores ~ Beta(1.3, 5) for negatives and
  Beta(4, 2.5) (champion role) or Beta(3.5, 2.5) (challenger role) for positives (AP about
  0.6 and 0.54 at base_rate 0.04). The champion prints scores with 4 decimals (ties), the
  challenger with full ``repr`` precision.
* ``bad_fraction`` of records are broken on purpose; the reason is uniform over
  :data:`BAD_REASONS`: ``malformed_json`` (the line is cut at 30-90 % of its length),
  ``unknown_encoding`` (``endpointOutput.encoding`` is ``"UTF16"``), ``unparseable_score``
  (the score is ``NaN?`` or ``n/a``: CSV output ``"NaN?"``/``"n/a"``, JSON output
  ``{"predictions":[{"score":"NaN?"}]}``), ``missing_score`` (a JSON record whose output is
  ``{"predictions":[]}``). A bad record is never a mini-batch, yields no prediction and
  gets no label.

Labels, per good capture record (its key):

* 3 % never delivered;
* 1 % ``duplicate``: delivered twice with the same value, the copy 0-48 h later (so
  sometimes in the same file, sometimes in a later one);
* 0.5 % ``conflicting``: first a wrong value (every value flipped), then the true value
  1-48 h later, always in a strictly later hour folder: the latest collection is the truth;
* 0.2 % ``invalid``: a line whose data is ``"2"`` or ``"yes"`` (for a mini-batch, its
  first value is replaced). Half of those keys get their correct label 1-48 h later in a
  strictly later hour folder (``invalid_corrected``), the other half never
  (``invalid_uncorrected``, unlabeled);
* 10 % of the remaining (normally delivered) mini-batch labels have the wrong number of
  values (k-1 or k+1, ``wrong_count``): they count as unlabeled and are never corrected;
* the rest are delivered once (``normal``).

First deliveries arrive after 1-6 h (5 %), 6 h-3 days (80 %) or 3-9 days (15 %), so some
land after the default 7-day label window.

Line kinds in the report (``label_lines``): ``normal`` = a valid line carrying the true
value that is not a repeat (the single line of a normal key, the first line of a duplicate
key, the correcting line of a conflicting or invalid key), ``duplicate`` = the repeated
copy, ``conflicting`` = the superseded wrong line, ``invalid`` = the invalid line,
``wrong_count`` = the mini-batch line with the wrong number of values.

Resolution used for the ``labeled_*`` figures: per key, among the label lines visible (all
of them, or those in folders dated D .. D+window_days for the ``*_in_window`` figures) the
latest collected line wins; if it is invalid or has the wrong number of values the key's
predictions are unlabeled. A conflicting key whose correction lies outside the window is
therefore labeled with the wrong (flipped) value in the window figures.

Randomness is drawn from ``numpy.random.default_rng([seed, day ordinal, ...])``, per day
and variant, so a day's files do not depend on the other days written with it, and the
same seed gives the same bytes.

``write_hostile_day`` writes one *hostile* day beside that (bad input at volume: about 1 %
malformed lines and 1 % unknown encodings, non-numeric scores, a missing hour, an empty
variant, one 100 MB capture file, labels for unknown keys, duplicate, conflicting and bad label
lines) and a :class:`HostileReport` with the exact count of each kind and every bad line, so a
run of the pipeline can be checked line by line. It reuses the line builders above and draws
from its own random streams: the demo days' bytes do not change. From the shell:
``python -m prviz.demo.generator OUT --hostile --start 2025-06-01 [--big-file-mb 100]``.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

BAD_REASONS: tuple[str, ...] = (
    "malformed_json",
    "unknown_encoding",
    "unparseable_score",
    "missing_score",
)
LABEL_KINDS: tuple[str, ...] = ("normal", "duplicate", "conflicting", "invalid", "wrong_count")
ENCODINGS: tuple[str, ...] = ("CSV", "JSON", "BASE64")

CSV_SHARE_BY_ROLE = (0.85, 0.15)  # share of CSV payloads: champion role, challenger role
BASE64_RATE = 0.15
INFERENCE_ID_RATE = 0.40
MILLIS_RATE = 0.50
MINIBATCH_RATE = 0.05  # of good CSV-payload records
MINIBATCH_MAX = 5
UNDELIVERED_RATE = 0.03
DUPLICATE_RATE = 0.01
CONFLICTING_RATE = 0.005
INVALID_RATE = 0.002
INVALID_CORRECTED_SHARE = 0.5
WRONG_COUNT_RATE = 0.10  # of otherwise normally delivered mini-batch labels
DEFAULT_WINDOW_DAYS = 7
# Beta parameters (negatives, positives) per role.
BETA_BY_ROLE = (((1.3, 5.0), (4.0, 2.5)), ((1.3, 5.0), (3.5, 2.5)))

_HOUR_MS = 3_600_000
_DAY_MS = 24 * _HOUR_MS

# per-key label kinds (internal codes)
_K_NORMAL, _K_DUP, _K_CONFLICT, _K_INV_CORR, _K_INV_UNCORR, _K_WRONG, _K_NONE = range(7)
# line kinds, indexes into LABEL_KINDS
_L_NORMAL, _L_DUP, _L_CONFLICT, _L_INVALID, _L_WRONG = range(5)


@dataclass(frozen=True)
class DemoSpec:
    endpoint: str = "fraud-scorer"
    variants: tuple[str, ...] = ("champion", "challenger")
    records_per_day: int = 20_000  # capture records (a mini-batch counts once), all variants
    base_rate: float = 0.04  # realistic class imbalance
    bad_fraction: float = 0.002  # fraction of capture records made bad on purpose
    files_per_hour: int = 1  # capture files per variant per hour


def _zero_counts(keys: tuple[str, ...]) -> dict[str, int]:
    return {k: 0 for k in keys}


@dataclass
class VariantDayReport:
    """Exact figures for one variant on one prediction day."""

    capture_records: int = 0  # lines written, bad ones included
    predictions: int = 0  # good scores (a mini-batch record of k lines gives k)
    positives: int = 0  # true label 1 among the predictions
    labeled_predictions: int = 0  # resolved from all label lines ever written
    labeled_positives: int = 0
    labeled_predictions_in_window: int = 0  # from label folders D .. D+window_days only
    labeled_positives_in_window: int = 0


@dataclass
class DayReport:
    """Exact figures for one prediction day (labels are counted by the day they label)."""

    date: str
    capture_records: int = 0  # lines written, bad ones included
    predictions: int = 0  # good scores
    positives: int = 0
    minibatch_records: int = 0  # good records with k >= 2 lines
    records_with_inference_id: int = 0  # good records carrying an inferenceId
    # good records by encoding (BASE64 whatever the payload format under it)
    records_by_encoding: dict[str, int] = field(default_factory=lambda: _zero_counts(ENCODINGS))
    bad_records: dict[str, int] = field(default_factory=lambda: _zero_counts(BAD_REASONS))
    capture_files: int = 0
    capture_bytes: int = 0
    # label lines for this day's predictions, by line kind (see the module docstring)
    label_lines: dict[str, int] = field(default_factory=lambda: _zero_counts(LABEL_KINDS))
    labels_never_delivered: int = 0  # good capture records (keys) with no label line at all
    invalid_corrected: int = 0  # keys whose invalid label was followed by the right one
    invalid_uncorrected: int = 0  # keys with only an invalid label
    label_files: int = 0  # a ground-truth file holds labels of one prediction day only
    label_bytes: int = 0
    # predictions with a valid resolved label (latest line wins), and how many are positive:
    # from all label lines ever written, and from folders D .. D+window_days only
    labeled_predictions: int = 0
    labeled_positives: int = 0
    labeled_predictions_in_window: int = 0
    labeled_positives_in_window: int = 0
    by_variant: dict[str, VariantDayReport] = field(default_factory=dict)

    @property
    def bad_total(self) -> int:
        return sum(self.bad_records.values())

    @property
    def label_lines_total(self) -> int:
        return sum(self.label_lines.values())


@dataclass
class DemoReport:
    """What ``write_demo_data`` wrote, exactly; ``per_day`` is indexed by prediction day."""

    out: str
    capture_root: str  # {out}/capture: the Data Capture root, endpoint folders below
    ground_truth_root: str  # {out}/ground-truth
    variant_dirs: dict[str, str]
    endpoint: str
    variants: tuple[str, ...]
    seed: int
    start: str
    n_days: int
    window_days: int
    per_day: list[DayReport]
    label_lines_by_collection_day: dict[str, int]  # label lines per folder date, all days
    spec: DemoSpec

    def day(self, date: dt.date | str) -> DayReport:
        key = date if isinstance(date, str) else date.isoformat()
        for d in self.per_day:
            if d.date == key:
                return d
        raise KeyError(key)

    def totals(self) -> dict[str, int]:
        """Sums of the integer fields and of the per-reason / per-kind counts over all days."""
        out: dict[str, int] = {}
        for d in self.per_day:
            for name, value in asdict(d).items():
                if isinstance(value, int):
                    out[name] = out.get(name, 0) + value
                elif name in ("bad_records", "label_lines", "records_by_encoding"):
                    for k, v in value.items():
                        out[f"{name}.{k}"] = out.get(f"{name}.{k}", 0) + v
        return out

    def to_dict(self) -> dict:
        d = asdict(self)
        d["variants"] = list(self.variants)
        d["spec"]["variants"] = list(self.spec.variants)
        d["totals"] = self.totals()
        return d


# --------------------------------------------------------------------------------------
# lookup tables (built once)

_TABLES: dict[str, np.ndarray] = {}


def _tables() -> dict[str, np.ndarray]:
    if not _TABLES:
        _TABLES["hm"] = np.array(
            [f"{i // 60:02d}:{i % 60:02d}:" for i in range(1440)], dtype=object
        )
        _TABLES["s"] = np.array([f"{i:02d}" for i in range(60)], dtype=object)
        _TABLES["ms"] = np.array([f".{i:03d}" for i in range(1000)], dtype=object)
        _TABLES["age"] = np.array([f"{i}," for i in range(100)], dtype=object)
        _TABLES["cnt"] = np.array([f"{i}," for i in range(10)], dtype=object)
        _TABLES["ratio"] = np.array([f"{i // 10}.{i % 10}," for i in range(1000)], dtype=object)
        _TABLES["dollars"] = np.array([f"{i}." for i in range(20_000)], dtype=object)
        _TABLES["digit"] = np.array([str(i) for i in range(10)], dtype=object)
        _TABLES["s4"] = np.array(
            [f"{i // 10000}.{i % 10000:04d}" for i in range(10_001)], dtype=object
        )
    return _TABLES


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_UUID_POS = np.array([i for i in range(36) if i not in (8, 13, 18, 23)])


def _uuid4_bytes(rng: np.random.Generator, n: int) -> np.ndarray:
    b = np.frombuffer(rng.bytes(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    b[:, 6] = (b[:, 6] & 0x0F) | 0x40
    b[:, 8] = (b[:, 8] & 0x3F) | 0x80
    return b


def _uuid_strings(b: np.ndarray) -> np.ndarray:
    """(n, 16) uint8 -> object array of canonical uuid strings."""
    n = b.shape[0]
    nib = np.empty((n, 32), dtype=np.uint8)
    nib[:, 0::2] = b >> 4
    nib[:, 1::2] = b & 15
    chars = np.full((n, 36), ord("-"), dtype=np.uint8)
    chars[:, _UUID_POS] = _HEX[nib]
    text = chars.tobytes().decode("ascii")
    return np.array([text[i : i + 36] for i in range(0, 36 * n, 36)], dtype=object)


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def _esc(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


_CT_IN = ("text/csv", "application/json")
_CT_OUT = ("text/csv; charset=utf-8", "application/json")


def _parts(fmt: int, encoding: str, out_encoding: str | None = None) -> tuple[str, str, str]:
    """Constant pieces of a capture line around input data, output data and eventId."""
    out_encoding = out_encoding or encoding
    head = (
        '{"captureData":{"endpointInput":{"observedContentType":"'
        f'{_CT_IN[fmt]}","mode":"INPUT","data":"'
    )
    mid = (
        f'","encoding":"{encoding}"}},"endpointOutput":{{"observedContentType":"'
        f'{_CT_OUT[fmt]}","mode":"OUTPUT","data":"'
    )
    tail = f'","encoding":"{out_encoding}"}}}},"eventMetadata":{{"eventId":"'
    return head, mid, tail


# code = fmt + 2 * base64: 0 CSV, 1 JSON, 2 CSV as BASE64, 3 JSON as BASE64
_PARTS = [_parts(c % 2, ("CSV", "JSON")[c % 2] if c < 2 else "BASE64") for c in range(4)]
_TIME_KEY = '","inferenceTime":"'
_END = '"},"eventVersion":"0"}\n'
_JIN = ('{"instances":[[', "]]}")
_JOUT = ('{"predictions":[{"score":', "}]}")
_JIN_E = tuple(_esc(x) for x in _JIN)
_JOUT_E = tuple(_esc(x) for x in _JOUT)
_GT_HEAD = '{"groundTruthData":{"data":"'
_GT_MID = '","encoding":"CSV"},"eventMetadata":{"eventId":"'
_GT_END = '"},"eventVersion":"0"}\n'


def _raw_payloads(fmt: int, feats: list[str], scores: list[str]) -> tuple[str, str]:
    if fmt == 0:
        return "\n".join(feats), "\n".join(scores)
    inp = '{"instances":[' + ",".join(f"[{f}]" for f in feats) + "]}"
    out = '{"predictions":[' + ",".join(f'{{"score":{s}}}' for s in scores) + "]}"
    return inp, out


def _bad_line(
    reason: int, code: int, feat: str, score: str, alt: bool, cut: float, rest: str
) -> str:
    """A deliberately bad capture line; ``rest`` = eventId + inferenceId + time + end."""
    fmt, is_b64 = code % 2, code >= 2
    if reason == 2:  # unparseable_score
        bad = "NaN?" if alt else "n/a"
        raw_in, raw_out = _raw_payloads(fmt, [feat], ['"' + bad + '"' if fmt else bad])
    elif reason == 3:  # missing_score
        raw_in, raw_out = _raw_payloads(1, [feat], [])
    else:
        raw_in, raw_out = _raw_payloads(fmt, [feat], [score])
    enc = _b64 if is_b64 else _esc
    encoding = "BASE64" if is_b64 else ("CSV", "JSON")[fmt]
    head, mid, tail = _parts(fmt, encoding, "UTF16" if reason == 1 else None)
    line = f"{head}{enc(raw_in)}{mid}{enc(raw_out)}{tail}{rest}"
    if reason == 0:  # malformed_json: a strict prefix of an object never parses
        line = line[: max(1, int((len(line) - 1) * cut))] + "\n"
    return line


# --------------------------------------------------------------------------------------


@dataclass
class _VariantDay:
    """Numeric draws of one variant on one day (records in time order)."""

    n: int
    t_ms: np.ndarray  # ms since the day's midnight
    file_bounds: np.ndarray  # nf + 1 record offsets
    file_uuid: np.ndarray  # (nf, 16)
    code: np.ndarray  # 0..3, see _PARTS
    bad: np.ndarray  # -1 good, else index into BAD_REASONS
    bad_alt: np.ndarray
    bad_cut: np.ndarray
    k: np.ndarray  # lines per record
    off: np.ndarray  # n + 1 prediction offsets
    y: np.ndarray  # per prediction line, int8
    score_str: np.ndarray  # per prediction line, object
    feat_str: np.ndarray  # per prediction line, object
    eid: np.ndarray  # (n, 16) uint8
    iid: np.ndarray  # inference id number or -1
    with_ms: np.ndarray
    lkind: np.ndarray  # per record label kind (_K_*)
    t1: np.ndarray  # collection times, ms since the prediction day's midnight
    t2: np.ndarray
    inv_alt: np.ndarray
    wrong_more: np.ndarray


def _draw_variant_day(
    rng: np.random.Generator, spec: DemoSpec, n: int, role: int, iid_start: int
) -> _VariantDay:
    fph = spec.files_per_hour
    nf = 24 * fph
    # traffic per file: one record each, the rest diurnal (peak 15:00 UTC)
    hours = np.repeat(np.arange(24), fph)
    w = 1.0 + 0.5 * np.cos(2 * np.pi * (hours - 15) / 24)
    cnt = 1 + rng.multinomial(n - nf, w / w.sum())
    starts = (np.arange(nf) * _DAY_MS) // nf
    ends = (np.arange(1, nf + 1) * _DAY_MS) // nf
    fidx = np.repeat(np.arange(nf), cnt)
    t_ms = np.sort(starts[fidx] + (rng.random(n) * (ends - starts)[fidx]).astype(np.int64))
    bounds = np.concatenate(([0], np.cumsum(cnt)))
    file_uuid = _uuid4_bytes(rng, nf)
    return _draw_records(rng, spec, n, role, iid_start, t_ms, bounds, file_uuid)


def _draw_records(
    rng: np.random.Generator,
    spec: DemoSpec,
    n: int,
    role: int,
    iid_start: int,
    t_ms: np.ndarray,
    bounds: np.ndarray,
    file_uuid: np.ndarray,
) -> _VariantDay:
    """Everything about ``n`` records but their times and files (drawn by the caller)."""
    bad = np.full(n, -1, dtype=np.int8)
    bad_mask = rng.random(n) < spec.bad_fraction
    bad[bad_mask] = rng.integers(0, len(BAD_REASONS), int(bad_mask.sum()))
    bad_alt = rng.random(n) < 0.5
    bad_cut = rng.uniform(0.3, 0.9, n)

    is_csv = rng.random(n) < CSV_SHARE_BY_ROLE[role]
    is_csv[bad == 3] = False  # missing_score is a JSON record
    is_b64 = rng.random(n) < BASE64_RATE
    code = (~is_csv).astype(np.int8) + 2 * is_b64.astype(np.int8)

    k = np.ones(n, dtype=np.int64)
    mb = is_csv & (bad < 0) & (rng.random(n) < MINIBATCH_RATE)
    k[mb] = rng.integers(2, MINIBATCH_MAX + 1, int(mb.sum()))
    off = np.concatenate(([0], np.cumsum(k)))
    p = int(off[-1])

    y = (rng.random(p) < spec.base_rate).astype(np.int8)
    (a0, b0), (a1, b1) = BETA_BY_ROLE[role]
    s = np.where(y == 1, rng.beta(a1, b1, p), rng.beta(a0, b0, p))
    tab = _tables()
    if role == 0:
        score_str = tab["s4"][np.rint(s * 10_000).astype(np.int64)]
    else:
        score_str = np.array([repr(x) for x in s.tolist()], dtype=object)
    age = rng.integers(18, 90, p)
    cnt_f = rng.integers(0, 10, p)
    ratio = rng.integers(0, 1000, p)
    amount = np.minimum((rng.lognormal(3.5 + 0.8 * y, 1.0, p) * 10).astype(np.int64), 199_999)
    feat_str = (
        tab["age"][age]
        + tab["cnt"][cnt_f]
        + tab["ratio"][ratio]
        + tab["dollars"][amount // 10]
        + tab["digit"][amount % 10]
    )

    eid = _uuid4_bytes(rng, n)
    has_iid = rng.random(n) < INFERENCE_ID_RATE
    iid = np.where(has_iid, iid_start + np.cumsum(has_iid) - 1, -1)
    with_ms = rng.random(n) < MILLIS_RATE

    # labels
    u = rng.random(n)
    lkind = np.full(n, _K_NORMAL, dtype=np.int8)
    edges = np.cumsum([UNDELIVERED_RATE, DUPLICATE_RATE, CONFLICTING_RATE, INVALID_RATE])
    lkind[u < edges[3]] = _K_INV_CORR
    lkind[u < edges[2]] = _K_CONFLICT
    lkind[u < edges[1]] = _K_DUP
    lkind[u < edges[0]] = _K_NONE
    inv_uncorr = rng.random(n) >= INVALID_CORRECTED_SHARE
    lkind[(lkind == _K_INV_CORR) & inv_uncorr] = _K_INV_UNCORR
    wrong = rng.random(n) < WRONG_COUNT_RATE
    lkind[(lkind == _K_NORMAL) & (k > 1) & wrong] = _K_WRONG
    lkind[bad >= 0] = _K_NONE
    mix = rng.random(n)
    d1 = np.where(
        mix < 0.05,
        rng.uniform(1, 6, n),
        np.where(mix < 0.85, rng.uniform(6, 72, n), rng.uniform(72, 216, n)),
    )
    # the second line of a key comes 0-48 h (a duplicate) or 1-48 h (a correction: so always
    # in a strictly later hour folder) after the first, and both within 9 days
    d2 = np.where(lkind == _K_DUP, rng.uniform(0, 48, n), rng.uniform(1, 48, n))
    d1 = np.where(np.isin(lkind, (_K_DUP, _K_CONFLICT, _K_INV_CORR)), np.minimum(d1, 216 - d2), d1)
    t1 = t_ms + (d1 * _HOUR_MS).astype(np.int64)
    t2 = t1 + (d2 * _HOUR_MS).astype(np.int64)
    inv_alt = rng.random(n) < 0.5
    wrong_more = rng.random(n) < 0.5
    return _VariantDay(
        n,
        t_ms,
        bounds,
        file_uuid,
        code,
        bad,
        bad_alt,
        bad_cut,
        k,
        off,
        y,
        score_str,
        feat_str,
        eid,
        iid,
        with_ms,
        lkind,
        t1,
        t2,
        inv_alt,
        wrong_more,
    )


def _file_text(vd: _VariantDay, a: int, b: int, date_t: str, ymd: str) -> str:
    """The capture lines of records [a, b) of a variant-day, joined."""
    tab = _tables()
    t = vd.t_ms[a:b]
    sec, ms = t // 1000, t % 1000
    tstr = (
        date_t
        + tab["hm"][sec // 60]
        + tab["s"][sec % 60]
        + np.where(vd.with_ms[a:b], tab["ms"][ms], "")
        + "Z"
    )
    eids = _uuid_strings(vd.eid[a:b])
    iid = vd.iid[a:b]
    iid_part = [f'","inferenceId":"txn-{ymd}-{i:07d}' if i >= 0 else "" for i in iid.tolist()]
    rest = eids + np.array(iid_part, dtype=object) + _TIME_KEY + tstr + _END
    p0, p1 = int(vd.off[a]), int(vd.off[b])
    feats = vd.feat_str[p0:p1].tolist()
    scores = vd.score_str[p0:p1].tolist()
    offs = (vd.off[a:b] - p0).tolist()
    lines = []
    append = lines.append
    for c, o, kk, br, r in zip(
        vd.code[a:b].tolist(),
        offs,
        vd.k[a:b].tolist(),
        vd.bad[a:b].tolist(),
        rest.tolist(),
        strict=True,
    ):
        head, mid, tail = _PARTS[c]
        if br >= 0:
            i = a + len(lines)
            append(
                _bad_line(br, c, feats[o], scores[o], bool(vd.bad_alt[i]), float(vd.bad_cut[i]), r)
            )
        elif kk == 1:
            f, s = feats[o], scores[o]
            if c == 0:
                append(f"{head}{f}{mid}{s}{tail}{r}")
            elif c == 1:
                append(f"{head}{_JIN_E[0]}{f}{_JIN_E[1]}{mid}{_JOUT_E[0]}{s}{_JOUT_E[1]}{tail}{r}")
            else:
                ri, ro = (f, s) if c == 2 else (_JIN[0] + f + _JIN[1], _JOUT[0] + s + _JOUT[1])
                append(f"{head}{_b64(ri)}{mid}{_b64(ro)}{tail}{r}")
        else:
            ri, ro = _raw_payloads(c % 2, feats[o : o + kk], scores[o : o + kk])
            enc = _b64 if c >= 2 else _esc
            append(f"{head}{enc(ri)}{mid}{enc(ro)}{tail}{r}")
    return "".join(lines)


def _label_data(vd: _VariantDay) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per record: true, flipped, invalid and wrong-count label data (JSON-escaped)."""
    n = vd.n
    single = vd.k == 1
    yfirst = vd.y[vd.off[:-1]]
    lbl = np.array(["0", "1"], dtype=object)
    true = lbl[yfirst]
    flip = lbl[1 - yfirst]
    inv_val = np.where(vd.inv_alt, "2", "yes").astype(object)
    invalid = inv_val.copy()
    wrong = np.full(n, "", dtype=object)
    for r in np.flatnonzero(~single).tolist():
        ys = vd.y[vd.off[r] : vd.off[r + 1]].tolist()
        true[r] = "\\n".join(map(str, ys))
        flip[r] = "\\n".join(str(1 - v) for v in ys)
        invalid[r] = "\\n".join([inv_val[r]] + [str(v) for v in ys[1:]])
        wrong_ys = ys + [ys[-1]] if vd.wrong_more[r] else ys[:-1]  # k+1 or k-1 values
        wrong[r] = "\\n".join(map(str, wrong_ys))
    return true, flip, invalid, wrong


def _write(path: Path, text: str) -> int:
    data = text.encode("ascii")
    with open(path, "wb") as fh:
        fh.write(data)
    return len(data)


def _ymdh(d: dt.date, hour: int) -> str:
    return f"{d.year:04d}/{d.month:02d}/{d.day:02d}/{hour:02d}"


def _time_name(ms_in_hour: int) -> str:
    return f"{ms_in_hour // 60_000:02d}-{ms_in_hour // 1000 % 60:02d}-{ms_in_hour % 1000:03d}"


def _validate(spec: DemoSpec, days: int, seed: int) -> None:
    if days < 1:
        raise ValueError("days must be >= 1")
    if seed < 0:
        raise ValueError("seed must be >= 0")
    if not spec.variants or len(set(spec.variants)) != len(spec.variants):
        raise ValueError("variants must be non-empty and unique")
    for name in (spec.endpoint, *spec.variants):
        if not name or "/" in name or name in (".", ".."):
            raise ValueError(f"invalid endpoint/variant name: {name!r}")
    if spec.files_per_hour < 1:
        raise ValueError("files_per_hour must be >= 1")
    per_variant = spec.records_per_day // len(spec.variants)
    if per_variant < 24 * spec.files_per_hour:
        raise ValueError(
            "records_per_day too small: every variant needs one record per capture file "
            f"({24 * spec.files_per_hour} a day)"
        )
    for name in ("base_rate", "bad_fraction"):
        if not 0.0 <= getattr(spec, name) <= 1.0:
            raise ValueError(f"{name} must be in [0, 1]")


def write_demo_data(
    out: Path | str,
    start: dt.date,
    days: int,
    seed: int = 0,
    spec: DemoSpec = DemoSpec(),  # noqa: B008 - frozen dataclass, safe default
) -> DemoReport:
    """Write ``days`` days of captures (from ``start``) and their labels under ``out``."""
    if isinstance(start, dt.datetime):
        start = start.date()
    _validate(spec, days, seed)
    out = Path(out)
    cap_root = out / "capture"
    gt_root = out / "ground-truth"
    variant_dirs = {v: cap_root / spec.endpoint / v for v in spec.variants}
    nv = len(spec.variants)
    per_variant = [
        spec.records_per_day // nv + (1 if i < spec.records_per_day % nv else 0) for i in range(nv)
    ]
    made_dirs: set[Path] = set()

    def ensure(d: Path) -> None:
        if d not in made_dirs:
            d.mkdir(parents=True, exist_ok=True)
            made_dirs.add(d)

    per_day: list[DayReport] = []
    by_collection_day: dict[str, int] = {}
    for di in range(days):
        day = start + dt.timedelta(days=di)
        ymd = day.strftime("%Y%m%d")
        date_t = day.isoformat() + "T"
        rep = DayReport(date=day.isoformat())
        iid_next = 0
        vds: list[_VariantDay] = []
        label_parts: list[tuple[np.ndarray, ...]] = []
        for vi, variant in enumerate(spec.variants):
            rng = np.random.default_rng([seed, day.toordinal(), 0, vi])
            vd = _draw_variant_day(rng, spec, per_variant[vi], vi % 2, iid_next)
            iid_next += int((vd.iid >= 0).sum())
            vds.append(vd)
            vrep = VariantDayReport()
            # ---- capture files
            for f in range(len(vd.file_bounds) - 1):
                a, b = int(vd.file_bounds[f]), int(vd.file_bounds[f + 1])
                t0 = int(vd.t_ms[a])
                d = variant_dirs[variant] / _ymdh(day, t0 // _HOUR_MS)
                ensure(d)
                name = f"{_time_name(t0 % _HOUR_MS)}-{_uuid_strings(vd.file_uuid[f : f + 1])[0]}"
                rep.capture_bytes += _write(d / f"{name}.jsonl", _file_text(vd, a, b, date_t, ymd))
                rep.capture_files += 1
            # ---- counts
            good = vd.bad < 0
            kg = vd.k * good
            ysum = np.add.reduceat(vd.y.astype(np.int64), vd.off[:-1])
            vrep.capture_records = vd.n
            vrep.predictions = int(kg.sum())
            vrep.positives = int((ysum * good).sum())
            rep.records_with_inference_id += int((good & (vd.iid >= 0)).sum())
            rep.minibatch_records += int((good & (vd.k > 1)).sum())
            for ci, enc in ((0, "CSV"), (1, "JSON")):
                rep.records_by_encoding[enc] += int((good & (vd.code == ci)).sum())
            rep.records_by_encoding["BASE64"] += int((good & (vd.code >= 2)).sum())
            for ri, reason in enumerate(BAD_REASONS):
                rep.bad_records[reason] += int((vd.bad == ri).sum())
            lk = vd.lkind
            rep.labels_never_delivered += int(((lk == _K_NONE) & good).sum())
            rep.invalid_corrected += int((lk == _K_INV_CORR).sum())
            rep.invalid_uncorrected += int((lk == _K_INV_UNCORR).sum())
            # resolution, all time and within the window
            w_end = (DEFAULT_WINDOW_DAYS + 1) * _DAY_MS
            in1, in2 = vd.t1 < w_end, vd.t2 < w_end
            true_all = np.isin(lk, (_K_NORMAL, _K_DUP, _K_CONFLICT, _K_INV_CORR))
            true_w = (np.isin(lk, (_K_NORMAL, _K_DUP)) & in1) | (
                np.isin(lk, (_K_CONFLICT, _K_INV_CORR)) & in2
            )
            flip_w = (lk == _K_CONFLICT) & in1 & ~in2
            vrep.labeled_predictions = int(vd.k[true_all].sum())
            vrep.labeled_positives = int(ysum[true_all].sum())
            vrep.labeled_predictions_in_window = int(vd.k[true_w | flip_w].sum())
            vrep.labeled_positives_in_window = int(ysum[true_w].sum() + (vd.k - ysum)[flip_w].sum())
            rep.by_variant[variant] = vrep
            # ---- label lines of this variant: (time, record, data, line kind)
            true, flip, invalid, wrong = _label_data(vd)
            first = lk != _K_NONE
            data1 = np.where(np.isin(lk, (_K_INV_CORR, _K_INV_UNCORR)), invalid, true)
            data1 = np.where(lk == _K_CONFLICT, flip, data1)
            data1 = np.where(lk == _K_WRONG, wrong, data1)
            kind1 = np.select(
                [lk == _K_CONFLICT, np.isin(lk, (_K_INV_CORR, _K_INV_UNCORR)), lk == _K_WRONG],
                [_L_CONFLICT, _L_INVALID, _L_WRONG],
                _L_NORMAL,
            )
            second = np.isin(lk, (_K_DUP, _K_CONFLICT, _K_INV_CORR))
            kind2 = np.where(lk == _K_DUP, _L_DUP, _L_NORMAL)
            base = sum(v.n for v in vds[:-1])
            recs = np.arange(vd.n) + base
            label_parts.append(
                (
                    np.concatenate((vd.t1[first], vd.t2[second])),
                    np.concatenate((recs[first], recs[second])),
                    np.concatenate((data1[first], true[second])),
                    np.concatenate((kind1[first], kind2[second])),
                )
            )
        for name in (
            "capture_records",
            "predictions",
            "positives",
            "labeled_predictions",
            "labeled_positives",
            "labeled_predictions_in_window",
            "labeled_positives_in_window",
        ):
            setattr(rep, name, sum(getattr(v, name) for v in rep.by_variant.values()))
        # ---- ground-truth files of this prediction day, one per collection hour
        lt, lrec, ldata, lkind = (np.concatenate(x) for x in zip(*label_parts, strict=True))
        order = np.argsort(lt, kind="stable")
        lt, lrec, ldata, lkind = lt[order], lrec[order], ldata[order], lkind[order]
        for i, kind in enumerate(LABEL_KINDS):
            rep.label_lines[kind] = int((lkind == i).sum())
        all_eid = np.concatenate([v.eid for v in vds])
        all_iid = np.concatenate([v.iid for v in vds])
        hours = lt // _HOUR_MS
        cuts = np.flatnonzero(np.diff(hours)) + 1
        starts = np.concatenate(([0], cuts)).astype(np.int64)
        ends = np.concatenate((cuts, [len(lt)])).astype(np.int64)
        lrng = np.random.default_rng([seed, day.toordinal(), 1])
        gt_uuids = _uuid_strings(_uuid4_bytes(lrng, len(starts)))
        for g, (a, b) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
            h = int(hours[a])
            cday = day + dt.timedelta(days=h // 24)
            d = gt_root / _ymdh(cday, h % 24)
            ensure(d)
            idx = lrec[a:b]
            keys = _uuid_strings(all_eid[idx])
            iids = all_iid[idx]
            for j in np.flatnonzero(iids >= 0).tolist():
                keys[j] = f"txn-{ymd}-{int(iids[j]):07d}"
            text = "".join((_GT_HEAD + ldata[a:b] + _GT_MID + keys + _GT_END).tolist())
            name = f"{_time_name(int(lt[a]) % _HOUR_MS)}-{gt_uuids[g]}.jsonl"
            rep.label_bytes += _write(d / name, text)
            rep.label_files += 1
            ckey = cday.isoformat()
            by_collection_day[ckey] = by_collection_day.get(ckey, 0) + (b - a)
        per_day.append(rep)

    return DemoReport(
        out=str(out),
        capture_root=str(cap_root),
        ground_truth_root=str(gt_root),
        variant_dirs={k: str(v) for k, v in variant_dirs.items()},
        endpoint=spec.endpoint,
        variants=tuple(spec.variants),
        seed=seed,
        start=start.isoformat(),
        n_days=days,
        window_days=DEFAULT_WINDOW_DAYS,
        per_day=per_day,
        label_lines_by_collection_day=dict(sorted(by_collection_day.items())),
        spec=spec,
    )


# --------------------------------------------------------------------------------------
# the hostile day: bad input at volume

HOSTILE_CAPTURE_REASONS: tuple[str, ...] = (
    "malformed_json",
    "unknown_encoding",
    "unparseable_score",
)
HOSTILE_LABEL_REASONS: tuple[str, ...] = (
    "malformed_json",
    "unknown_encoding",
    "invalid_label",
    "unknown_key",
)
# line kinds of the hostile day's labels: the three valid kinds, then the quarantine reasons
HOSTILE_LABEL_KINDS: tuple[str, ...] = (
    "normal",
    "duplicate",
    "conflicting",
    *HOSTILE_LABEL_REASONS,
)
_PAD_POOL = 64  # distinct wide feature tails the big file's records draw from


@dataclass(frozen=True)
class HostileSpec:
    """One day of hostile input (see ``write_hostile_day``). Rates become exact counts."""

    endpoint: str = "fraud-scorer"
    variants: tuple[str, ...] = ("champion", "challenger")  # the variants with traffic
    records_per_variant: int = 1_200  # in small hourly files, one per hour and variant
    missing_hour_variant: str = "champion"  # has no folder at all for missing_hour
    missing_hour: int = 13
    empty_variant: str = "shadow"  # a file in each of its 24 hour folders, not one record
    big_file_variant: str = "challenger"
    big_file_hour: int = 15
    big_file_bytes: int = 100_000_000  # the big file is the shortest run of records reaching it
    big_file_features: int = 250  # extra request features of its records (7 bytes each)
    base_rate: float = 0.04
    # capture records made bad, per file group (each variant's hourly files, the big file)
    malformed_rate: float = 0.01
    unknown_encoding_rate: float = 0.01
    unparseable_score_rate: float = 0.005
    # label lines, as shares of the good capture records (keys)
    undelivered_rate: float = 0.05
    duplicate_rate: float = 0.01
    conflicting_rate: float = 0.01
    label_malformed_rate: float = 0.01
    label_unknown_encoding_rate: float = 0.01
    invalid_label_rate: float = 0.005
    unknown_key_rate: float = 0.01  # labels for keys that were never captured


def _hostile_zero(keys: tuple[str, ...]) -> dict[str, int]:
    return {k: 0 for k in keys}


@dataclass
class HostileReport:
    """What ``write_hostile_day`` wrote, exactly. Streams are named ``endpoint/variant``;
    ``*_lines`` lists hold ``(reason, path relative to out, line without its newline)``."""

    out: str
    capture_root: str
    ground_truth_root: str
    date: str
    endpoint: str
    seed: int
    spec: HostileSpec
    # ---- captures
    capture_records: int = 0  # non-blank lines, bad ones included
    good_records: int = 0
    predictions: int = 0  # good scores (a mini-batch record of k lines gives k)
    positives: int = 0  # true label 1 among the predictions
    bad_records: dict[str, int] = field(
        default_factory=lambda: _hostile_zero(HOSTILE_CAPTURE_REASONS)
    )
    records_by_stream: dict[str, int] = field(default_factory=dict)  # 0 for the empty variant
    predictions_by_stream: dict[str, int] = field(default_factory=dict)
    capture_files: int = 0  # every file written, the empty variant's included
    capture_files_with_records: int = 0
    capture_bytes: int = 0
    hours_by_stream: dict[str, list[int]] = field(default_factory=dict)  # hour folders written
    missing_hours: dict[str, list[int]] = field(default_factory=dict)
    empty_streams: list[str] = field(default_factory=list)
    empty_stream_files: int = 0
    empty_stream_bytes: int = 0
    big_file: str = ""  # path relative to out ("" when big_file_bytes is 0)
    big_file_bytes: int = 0
    big_file_records: int = 0
    big_file_bad_records: dict[str, int] = field(
        default_factory=lambda: _hostile_zero(HOSTILE_CAPTURE_REASONS)
    )
    bad_capture_lines: list[tuple[str, str, str]] = field(default_factory=list)
    # ---- labels (every line is collected on the day itself)
    label_lines: int = 0  # non-blank lines
    label_lines_by_kind: dict[str, int] = field(
        default_factory=lambda: _hostile_zero(HOSTILE_LABEL_KINDS)
    )
    label_lines_matched: int = 0  # valid lines whose key is a prediction of the day
    label_quarantine: dict[str, int] = field(
        default_factory=lambda: _hostile_zero(HOSTILE_LABEL_REASONS)
    )
    unknown_key_for_quarantined_captures: int = 0  # one label per bad capture record
    unknown_key_never_captured: int = 0
    bad_label_lines: list[tuple[str, str, str]] = field(default_factory=list)
    keys_delivered: int = 0  # good keys with at least one valid label line
    keys_undelivered: int = 0
    duplicate_keys: int = 0  # two identical valid lines
    conflicting_keys: int = 0  # a wrong line, then the right one in a later hour folder
    labeled_predictions: int = 0  # predictions whose resolved label is valid (latest wins)
    labeled_positives: int = 0
    labeled_by_stream: dict[str, int] = field(default_factory=dict)
    labeled_positives_by_stream: dict[str, int] = field(default_factory=dict)
    label_files: int = 0
    label_bytes: int = 0

    @property
    def quarantined_records(self) -> int:
        return sum(self.bad_records.values())

    @property
    def quarantined_label_lines(self) -> int:
        return sum(self.label_quarantine.values())

    def to_dict(self) -> dict:
        d = asdict(self)
        d["spec"]["variants"] = list(self.spec.variants)
        return d


def _validate_hostile(spec: HostileSpec, seed: int) -> None:
    if seed < 0:
        raise ValueError("seed must be >= 0")
    names = (*spec.variants, spec.empty_variant)
    if not spec.variants or len(set(names)) != len(names):
        raise ValueError("variants must be non-empty and unique, and not the empty variant")
    for name in (spec.endpoint, *names):
        if not name or "/" in name or name in (".", ".."):
            raise ValueError(f"invalid endpoint/variant name: {name!r}")
    for name in ("missing_hour_variant", "big_file_variant"):
        if getattr(spec, name) not in spec.variants:
            raise ValueError(f"{name} must be one of the variants {spec.variants}")
    for name in ("missing_hour", "big_file_hour"):
        if not 0 <= getattr(spec, name) <= 23:
            raise ValueError(f"{name} must be an hour, 0-23")
    if spec.records_per_variant < 24:
        raise ValueError("records_per_variant must be >= 24 (one record per hourly file)")
    if spec.big_file_bytes < 0 or spec.big_file_features < 0:
        raise ValueError("big_file_bytes and big_file_features must be >= 0")
    rates = (
        "base_rate", "malformed_rate", "unknown_encoding_rate", "unparseable_score_rate",
        "undelivered_rate", "duplicate_rate", "conflicting_rate", "label_malformed_rate",
        "label_unknown_encoding_rate", "invalid_label_rate", "unknown_key_rate",
    )  # fmt: skip
    for name in rates:
        if not 0.0 <= getattr(spec, name) <= 1.0:
            raise ValueError(f"{name} must be in [0, 1]")
    bad = spec.malformed_rate + spec.unknown_encoding_rate + spec.unparseable_score_rate
    kinds = spec.undelivered_rate + spec.duplicate_rate + spec.conflicting_rate
    if bad > 0.5 or kinds > 1.0:
        raise ValueError("bad capture rates must sum to <= 0.5, label key rates to <= 1")


def _make_bad(rng: np.random.Generator, vd: _VariantDay, candidates: np.ndarray, spec) -> None:
    """Mark exact numbers of single-line records among ``candidates`` bad (in place)."""
    n = len(candidates)
    counts = [
        round(spec.malformed_rate * n),
        round(spec.unknown_encoding_rate * n),
        round(spec.unparseable_score_rate * n),
    ]
    single = candidates[vd.k[candidates] == 1]
    chosen = rng.permutation(single)[: sum(counts)]
    # HOSTILE_CAPTURE_REASONS index -> BAD_REASONS index (the line builder's codes)
    codes = np.repeat([BAD_REASONS.index(r) for r in HOSTILE_CAPTURE_REASONS], counts)
    vd.bad[chosen] = codes[: len(chosen)]


def _gt_line(data: str, key: str, encoding: str = "CSV") -> str:
    return (
        f'{{"groundTruthData":{{"data":"{data}","encoding":"{encoding}"}},'
        f'"eventMetadata":{{"eventId":"{key}"}},"eventVersion":"0"}}'
    )


def write_hostile_day(
    out: Path | str,
    day: dt.date,
    seed: int = 0,
    spec: HostileSpec = HostileSpec(),  # noqa: B008 - frozen dataclass, safe default
) -> HostileReport:
    """Write one day of hostile captures and labels under ``out``; report exactly what.

    The day (defaults of :class:`HostileSpec`):

    * ``champion`` and ``challenger`` send ``records_per_variant`` records each in one small
      file per hour, in the formats and mix of ``write_demo_data`` (CSV/JSON/BASE64,
      inferenceIds, milliseconds, mini-batches); ``champion`` has **no folder for hour 13**;
    * ``challenger`` also has **one big file** in hour 15: the shortest run of wide records
      (250 extra request features each, like real payloads) reaching ``big_file_bytes``
      (100 MB), uncompressed JSON Lines, so Spark can split it;
    * ``shadow`` is an **empty variant**: a file in each of its 24 hour folders, half of them
      0 bytes and half one blank line (blank lines are not records);
    * in each file group (a variant's hourly files, the big file) exactly round(rate x records)
      single-line records are ``malformed_json`` (cut at 30-90 %), ``unknown_encoding``
      (``"UTF16"``) and ``unparseable_score`` (``NaN?`` / ``n/a``).

    Labels are all collected on the day itself, after their prediction (one ground-truth file
    per collection hour). Of the good keys, exactly round(rate x keys): ``undelivered``; a
    ``duplicate`` (the same line twice); ``conflicting`` (the flipped value, then the true one
    in a strictly later hour folder: the latest wins). Every other good key gets one line.
    Extra quarantinable lines, on keys that also have their valid line: ``malformed_json`` (a
    valid line cut), ``unknown_encoding`` (``"UTF16"``), ``invalid_label`` (``yes`` or ``2``).
    And ``unknown_key`` lines: one for every bad capture record (the model was called, its
    capture could not be used, its label still arrives) plus round(unknown_key_rate x keys)
    for keys never captured. So label lines = matched (normal + duplicate + conflicting) +
    quarantined (the four reasons), exactly.

    Randomness comes from ``numpy.random.default_rng([seed, day ordinal, ...])``: the same
    seed gives the same bytes.
    """
    if isinstance(day, dt.datetime):
        day = day.date()
    _validate_hostile(spec, seed)
    out = Path(out)
    cap_root, gt_root = out / "capture", out / "ground-truth"
    ymd, date_t, ordinal = day.strftime("%Y%m%d"), day.isoformat() + "T", day.toordinal()
    rep = HostileReport(
        out=str(out),
        capture_root=str(cap_root),
        ground_truth_root=str(gt_root),
        date=day.isoformat(),
        endpoint=spec.endpoint,
        seed=seed,
        spec=spec,
    )
    base = DemoSpec(endpoint=spec.endpoint, base_rate=spec.base_rate, bad_fraction=0.0)
    # a file group: (variant, draws, [(first record, end record, hour)])
    groups: list[tuple[str, _VariantDay, list[tuple[int, int, int]]]] = []
    iid_next = 0
    for vi, variant in enumerate(spec.variants):
        rng = np.random.default_rng([seed, ordinal, 10, vi])
        vd = _draw_variant_day(rng, base, spec.records_per_variant, vi % 2, iid_next)
        iid_next += int((vd.iid >= 0).sum())
        files = [
            (int(vd.file_bounds[h]), int(vd.file_bounds[h + 1]), h)
            for h in range(24)
            if not (variant == spec.missing_hour_variant and h == spec.missing_hour)
        ]
        written = np.concatenate([np.arange(a, b) for a, b, _ in files])
        _make_bad(rng, vd, written, spec)
        groups.append((variant, vd, files))
    big = None
    if spec.big_file_bytes:
        rng = np.random.default_rng([seed, ordinal, 11])
        pad = 7 * spec.big_file_features
        # every line is longer than pad + 200 bytes, so n records reach the target
        n = spec.big_file_bytes // (pad + 200) + 100
        hour_ms = spec.big_file_hour * _HOUR_MS
        t_ms = np.sort(hour_ms + (rng.random(n) * _HOUR_MS).astype(np.int64))
        role = spec.variants.index(spec.big_file_variant) % 2
        vd = _draw_records(
            rng, base, n, role, iid_next, t_ms, np.array([0, n]), _uuid4_bytes(rng, 1)
        )
        pads = np.array(
            ["".join(f",{x:.4f}" for x in rng.random(spec.big_file_features).tolist())
             for _ in range(_PAD_POOL)],
            dtype=object,
        )  # fmt: skip
        vd.feat_str = vd.feat_str + pads[rng.integers(0, _PAD_POOL, len(vd.feat_str))]
        _make_bad(rng, vd, np.arange(n), spec)
        lines = _file_text(vd, 0, n, date_t, ymd).split("\n")[:-1]
        ends = np.cumsum([len(line) + 1 for line in lines])
        keep = int(np.searchsorted(ends, spec.big_file_bytes)) + 1
        if keep > n:  # pragma: no cover - the bound above makes this impossible
            raise RuntimeError("big file: not enough records drawn")
        big = (vd, keep, "\n".join(lines[:keep]) + "\n")
        groups.append((spec.big_file_variant, vd, [(0, keep, spec.big_file_hour)]))

    # ---- capture files
    def stream(variant: str) -> str:
        return f"{spec.endpoint}/{variant}"

    for variant in (*spec.variants, spec.empty_variant):
        rep.records_by_stream[stream(variant)] = 0
        rep.predictions_by_stream[stream(variant)] = 0
        rep.hours_by_stream[stream(variant)] = []
    per_record: list[tuple[np.ndarray, ...]] = []  # per group, over its written records
    for gi, (variant, vd, files) in enumerate(groups):
        is_big = big is not None and vd is big[0]
        for a, b, hour in files:
            folder = cap_root / spec.endpoint / variant / _ymdh(day, hour)
            folder.mkdir(parents=True, exist_ok=True)
            t0 = int(vd.t_ms[a])
            row = 0 if is_big else hour  # small groups have one file (uuid) per hour
            uid = _uuid_strings(vd.file_uuid[row : row + 1])[0]
            path = folder / f"{_time_name(t0 % _HOUR_MS)}-{uid}.jsonl"
            text = big[2] if is_big else _file_text(vd, a, b, date_t, ymd)
            size = _write(path, text)
            rel = path.relative_to(out).as_posix()
            rep.capture_files += 1
            rep.capture_files_with_records += 1
            rep.capture_bytes += size
            if hour not in rep.hours_by_stream[stream(variant)]:
                rep.hours_by_stream[stream(variant)].append(hour)
            lines = text.split("\n")
            for r in np.flatnonzero(vd.bad[a:b] >= 0).tolist():
                reason = BAD_REASONS[int(vd.bad[a + r])]
                rep.bad_capture_lines.append((reason, rel, lines[r]))
            if is_big:
                rep.big_file, rep.big_file_bytes, rep.big_file_records = rel, size, b - a
                for reason in HOSTILE_CAPTURE_REASONS:
                    rep.big_file_bad_records[reason] = int(
                        (vd.bad[a:b] == BAD_REASONS.index(reason)).sum()
                    )
        idx = np.concatenate([np.arange(a, b) for a, b, _ in files])
        keys = _uuid_strings(vd.eid[idx])
        for j in np.flatnonzero(vd.iid[idx] >= 0).tolist():
            keys[j] = f"txn-{ymd}-{int(vd.iid[idx[j]]):07d}"
        true, flip, _, _ = _label_data(vd)
        ysum = np.add.reduceat(vd.y.astype(np.int64), vd.off[:-1])
        per_record.append(
            (
                keys,
                vd.t_ms[idx],
                vd.k[idx],
                true[idx],
                flip[idx],
                ysum[idx],
                vd.bad[idx] < 0,
                np.full(len(idx), gi),
            )
        )
    erng = np.random.default_rng([seed, ordinal, 12])
    empty_uuids = _uuid_strings(_uuid4_bytes(erng, 24))
    rep.empty_streams.append(stream(spec.empty_variant))
    for hour in range(24):
        folder = cap_root / spec.endpoint / spec.empty_variant / _ymdh(day, hour)
        folder.mkdir(parents=True, exist_ok=True)
        size = _write(folder / f"00-00-000-{empty_uuids[hour]}.jsonl", "\n" if hour % 2 else "")
        rep.capture_files += 1
        rep.capture_bytes += size
        rep.empty_stream_files += 1
        rep.empty_stream_bytes += size
        rep.hours_by_stream[stream(spec.empty_variant)].append(hour)
    for name, hours in rep.hours_by_stream.items():
        hours.sort()
        if len(hours) < 24:
            rep.missing_hours[name] = sorted(set(range(24)) - set(hours))

    keys, t, k, true, flip, ysum, good, gidx = (
        np.concatenate(x) for x in zip(*per_record, strict=True)
    )
    names = np.array([stream(groups[g][0]) for g in range(len(groups))], dtype=object)[gidx]
    rep.capture_records = len(keys)
    rep.good_records = int(good.sum())
    rep.predictions = int(k[good].sum())
    rep.positives = int(ysum[good].sum())
    for reason in HOSTILE_CAPTURE_REASONS:
        rep.bad_records[reason] = sum(1 for r, _, _ in rep.bad_capture_lines if r == reason)
    for name in np.unique(names).tolist():
        mine = names == name
        rep.records_by_stream[name] = int(mine.sum())
        rep.predictions_by_stream[name] = int(k[mine & good].sum())

    # ---- labels: (collection ms, kind, data, key, encoding, cut) per line
    lrng = np.random.default_rng([seed, ordinal, 13])
    good_idx = np.flatnonzero(good)
    n_keys = len(good_idx)
    n_conf = round(spec.conflicting_rate * n_keys)
    eligible = good_idx[t[good_idx] < 23 * _HOUR_MS]  # a correction needs a later hour
    conf = np.sort(lrng.choice(eligible, min(n_conf, len(eligible)), replace=False))
    rest = lrng.permutation(np.setdiff1d(good_idx, conf))
    n_undel = round(spec.undelivered_rate * n_keys)
    n_dup = round(spec.duplicate_rate * n_keys)
    undelivered = rest[:n_undel]
    dup = np.sort(rest[n_undel : n_undel + n_dup])
    normal = np.sort(rest[n_undel + n_dup :])
    delivered = np.sort(np.concatenate((conf, dup, normal)))

    def after(start: np.ndarray, end: np.ndarray | int = _DAY_MS) -> np.ndarray:
        """Uniform collection times in [start, end)."""
        return start + (lrng.random(len(start)) * (end - start)).astype(np.int64)

    lines: list[tuple[int, str, str, str, str, float]] = []

    def add(times, kind, data, idx_or_keys, encoding="CSV", cuts=None):
        keys_ = keys[idx_or_keys] if isinstance(idx_or_keys, np.ndarray) else idx_or_keys
        for j, (tt, dd, kk) in enumerate(zip(times.tolist(), data, keys_, strict=True)):
            lines.append((tt, kind, dd, kk, encoding, 0.0 if cuts is None else float(cuts[j])))

    t1 = after(t[normal])
    add(t1, "normal", true[normal], normal)
    t1 = after(t[dup])
    add(t1, "normal", true[dup], dup)
    add(after(t1), "duplicate", true[dup], dup)
    t1 = after(t[conf], 23 * _HOUR_MS)
    add(t1, "conflicting", flip[conf], conf)
    add(after((t1 // _HOUR_MS + 1) * _HOUR_MS), "normal", true[conf], conf)

    def some(rate: float) -> np.ndarray:
        count = min(round(rate * n_keys), len(delivered))
        return np.sort(lrng.choice(delivered, count, replace=False))

    pick = some(spec.label_malformed_rate)
    add(after(t[pick]), "malformed_json", true[pick], pick, cuts=lrng.uniform(0.3, 0.9, len(pick)))
    pick = some(spec.label_unknown_encoding_rate)
    add(after(t[pick]), "unknown_encoding", true[pick], pick, encoding="UTF16")
    pick = some(spec.invalid_label_rate)
    invalid = np.where(lrng.random(len(pick)) < 0.5, "yes", "2").astype(object)
    add(after(t[pick]), "invalid_label", invalid, pick)
    bad_idx = np.flatnonzero(~good)
    coin = np.array(["0", "1"], dtype=object)
    add(after(t[bad_idx]), "unknown_key", coin[lrng.integers(0, 2, len(bad_idx))], bad_idx)
    n_fresh = round(spec.unknown_key_rate * n_keys)
    known = set(keys.tolist())
    fresh: list[str] = []
    while len(fresh) < n_fresh:
        for key in _uuid_strings(_uuid4_bytes(lrng, n_fresh - len(fresh))).tolist():
            if key not in known:
                known.add(key)
                fresh.append(key)
    add(
        after(np.zeros(n_fresh, dtype=np.int64)),
        "unknown_key",
        coin[lrng.integers(0, 2, n_fresh)],
        fresh,
    )

    lines.sort(key=lambda x: x[0])  # stable: equal times keep their order
    hours = np.array([x[0] // _HOUR_MS for x in lines], dtype=np.int64)
    cuts = np.flatnonzero(np.diff(hours)) + 1
    starts = np.concatenate(([0], cuts)).astype(np.int64).tolist()
    ends = np.concatenate((cuts, [len(lines)])).astype(np.int64).tolist()
    gt_uuids = _uuid_strings(_uuid4_bytes(lrng, len(starts)))
    for g, (a, b) in enumerate(zip(starts, ends, strict=True)):
        folder = gt_root / _ymdh(day, int(hours[a]))
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{_time_name(lines[a][0] % _HOUR_MS)}-{gt_uuids[g]}.jsonl"
        rel = path.relative_to(out).as_posix()
        texts = []
        for _, kind, data, key, encoding, cut in lines[a:b]:
            text = _gt_line(data, key, encoding)
            if kind == "malformed_json":  # a strict prefix of an object never parses
                text = text[: max(1, int(len(text) * cut))]
            if kind in HOSTILE_LABEL_REASONS:
                rep.bad_label_lines.append((kind, rel, text))
            rep.label_lines_by_kind[kind] += 1
            texts.append(text + "\n")
        rep.label_bytes += _write(path, "".join(texts))
        rep.label_files += 1

    rep.label_lines = len(lines)
    rep.label_lines_matched = sum(rep.label_lines_by_kind[x] for x in HOSTILE_LABEL_KINDS[:3])
    for reason in HOSTILE_LABEL_REASONS:
        rep.label_quarantine[reason] = rep.label_lines_by_kind[reason]
    rep.unknown_key_for_quarantined_captures = len(bad_idx)
    rep.unknown_key_never_captured = n_fresh
    rep.keys_delivered = len(delivered)
    rep.keys_undelivered = len(undelivered)
    rep.duplicate_keys = len(dup)
    rep.conflicting_keys = len(conf)
    rep.labeled_predictions = int(k[delivered].sum())
    rep.labeled_positives = int(ysum[delivered].sum())
    for name in rep.records_by_stream:
        mine = delivered[names[delivered] == name]
        rep.labeled_by_stream[name] = int(k[mine].sum())
        rep.labeled_positives_by_stream[name] = int(ysum[mine].sum())
    return rep


def _main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Write demo SageMaker capture + ground truth.")
    ap.add_argument("out")
    ap.add_argument("--start", default="2025-01-01")
    ap.add_argument("--days", type=int, default=1)
    ap.add_argument("--records-per-day", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--hostile",
        action="store_true",
        help="write one hostile day instead (write_hostile_day): bad input at volume",
    )
    ap.add_argument("--big-file-mb", type=float, default=100.0, help="with --hostile")
    args = ap.parse_args(argv)
    if args.hostile:
        return _main_hostile(args)
    spec = DemoSpec(records_per_day=args.records_per_day)
    t0 = time.perf_counter()
    rep = write_demo_data(args.out, dt.date.fromisoformat(args.start), args.days, args.seed, spec)
    secs = time.perf_counter() - t0
    tot = rep.totals()
    mb = (tot["capture_bytes"] + tot["label_bytes"]) / 1e6
    n_labels = sum(v for k, v in tot.items() if k.startswith("label_lines."))
    sys.stdout.write(
        f"{tot['capture_records']} records, {tot['predictions']} predictions, "
        f"{n_labels} label lines, {mb:.1f} MB in {secs:.2f} s: "
        f"{tot['capture_records'] / secs:,.0f} records/s, {mb / secs:.1f} MB/s\n"
    )
    return 0


def _main_hostile(args) -> int:
    spec = HostileSpec(big_file_bytes=int(args.big_file_mb * 1e6))
    t0 = time.perf_counter()
    rep = write_hostile_day(args.out, dt.date.fromisoformat(args.start), args.seed, spec)
    secs = time.perf_counter() - t0
    sys.stdout.write(
        f"hostile day {rep.date}: {rep.capture_records} capture records "
        f"({rep.quarantined_records} bad: {rep.bad_records}), {rep.capture_bytes / 1e6:.1f} MB "
        f"(big file {rep.big_file_bytes / 1e6:.1f} MB, {rep.big_file_records} records); "
        f"missing hours {rep.missing_hours}; empty {rep.empty_streams}; "
        f"{rep.label_lines} label lines = {rep.label_lines_matched} matched + "
        f"{rep.quarantined_label_lines} quarantined {rep.label_quarantine}; "
        f"{rep.duplicate_keys} duplicate, {rep.conflicting_keys} conflicting keys; "
        f"{secs:.2f} s\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(_main())
