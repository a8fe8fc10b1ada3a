"""Render bench/run_bench.py's results.json as markdown (the tables and docs/performance.md).

    .venv/bin/python bench/bench_report.py bench/out/results.json [--write docs/performance.md]

Every figure printed here comes from the results file, i.e. from one run of run_bench.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ORDER = (
    "prviz",
    "prviz_q4",
    "mllib_py",
    "ml_evaluator",
    "mllib_exact",
    "sklearn",
    "arrow_read",
)
LABEL = {
    "prviz": "prviz (exact)",
    "prviz_q4": "prviz, score_decimals=4",
    "mllib_py": "MLlib BinaryClassificationMetrics (pyspark.mllib)",
    "ml_evaluator": "Spark ML BinaryClassificationEvaluator",
    "mllib_exact": "MLlib BinaryClassificationMetrics numBins=0 (JVM)",
    "sklearn": "scikit-learn (pandas read + compute)",
    "arrow_read": "floor: pyarrow Parquet read (score, label)",
}
MLLIB_PEERS = ("mllib_py", "ml_evaluator", "mllib_exact")
TARGET_MLLIB_SPEEDUP = 5.0
TARGET_FLOOR_RATIO = 2.0


def _f(value, digits=2, suffix=""):
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if value == 0:
        return "0"
    if abs(value) < 1e-3 or abs(value) >= 1e6:
        return f"{value:.1e}{suffix}"
    return f"{value:,.{digits}f}{suffix}"


def _peak(run) -> str:
    """Peak RSS Python / JVM, with the growth over the RSS at the start in parentheses."""
    peak, start = run.get("peak_rss_mb") or {}, run.get("rss_start_mb") or {}
    cells = []
    for name in ("python", "jvm"):
        value = peak.get(name)
        if value is None:
            cells.append("–")
        elif start.get(name) is not None:
            cells.append(f"{value:,.0f} (+{max(value - start[name], 0):,.0f})")
        else:
            cells.append(f"{value:,.0f}")
    return " / ".join(cells)


def _mrows(value):
    return "–" if value is None else f"{value / 1e6:,.2f} M"


def _rows_label(n: int) -> str:
    return f"{n / 1e6:g}M" if n >= 1e6 else f"{n / 1e3:g}k"


def _load(record) -> str:
    start, end = record.get("load_start"), record.get("load_end")
    if not start or not end:
        return "–"
    return f"{start[0]:.2f} → {end[0]:.2f}"


def _runs(results) -> dict[tuple[int, bool], dict[str, dict]]:
    grouped: dict[tuple[int, bool], dict[str, dict]] = {}
    for run in results["runs"]:
        grouped.setdefault((run["rows"], run["ties"]), {})[run["method"]] = run
    return grouped


def error_text(run) -> str:
    """The informative line of a failed run's error (older results kept only the first line)."""
    text = (run.get("error") or "") + "\n" + (run.get("traceback") or "")
    for key in ("maxResultSize", "OutOfMemoryError", "SparkException:"):
        for line in text.splitlines():
            if key in line:
                return line.strip()[:240]
    return (run.get("error") or "")[:240]


def _ok(run) -> bool:
    return bool(run) and "error" not in run and not run.get("skipped")


def ratios(results) -> list[dict]:
    """Per size and tie mode: prviz against each peer measured in the same run."""
    rows = []
    for (n, ties), runs in sorted(_runs(results).items()):
        prviz = runs.get("prviz")
        row = {"rows": n, "ties": ties, "prviz_wall_s": None}
        if _ok(prviz):
            wall = prviz["wall_s"]
            row["prviz_wall_s"] = wall
            for peer in (*MLLIB_PEERS, "sklearn"):
                if _ok(runs.get(peer)):
                    row[f"vs_{peer}"] = runs[peer]["wall_s"] / wall
            if _ok(runs.get("sklearn")):
                row["vs_sklearn_compute"] = runs["sklearn"]["parts"]["compute_s"] / wall
            if _ok(runs.get("arrow_read")):
                floor = runs["arrow_read"]["wall_s"]
                row["arrow_read_s"] = floor
                row["off_spark_s"] = prviz["parts"]["off_spark_s"]
                row["off_spark_vs_floor"] = prviz["parts"]["off_spark_s"] / floor
                alone = (
                    results.get("prviz_profile", {})
                    .get(f"{n}_{'ties' if ties else 'noties'}_prviz", {})
                    .get("off_spark_alone")
                )
                if alone:
                    row["off_spark_alone_vs_floor"] = alone["wall_s"] / floor
        if _ok(runs.get("prviz_q4")):
            row["prviz_q4_wall_s"] = runs["prviz_q4"]["wall_s"]
            for peer in MLLIB_PEERS:
                if _ok(runs.get(peer)):
                    row[f"q4_vs_{peer}"] = runs[peer]["wall_s"] / runs["prviz_q4"]["wall_s"]
        rows.append(row)
    return rows


def method_table(results, n: int, ties: bool) -> str:
    runs = _runs(results).get((n, ties), {})
    prviz = runs.get("prviz")
    lines = [
        "| method | definition | wall s | rows/s | peak RSS MB, Python / JVM (+ growth) "
        "| abs(value − sklearn AP) | abs(value − exact trapezoid) | curve max abs diff "
        "| speed-up of prviz | load 1-min (start → end) |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    definitions = results.get("definitions", {})
    for method in ORDER:
        run = runs.get(method)
        if not run:
            continue
        if run.get("skipped"):
            lines.append(f"| {LABEL[method]} | skipped (--skip) | | | | | | | | |")
            continue
        if "error" in run:
            lines.append(f"| {LABEL[method]} | **failed**: {error_text(run)} | | | | | | | | |")
            continue
        ex = run.get("exactness", {})
        if "ap_vs_sklearn_ap" in ex:
            dap = _f(ex["ap_vs_sklearn_ap"], 6)
        elif "pr_auc_vs_sklearn_ap" in ex:
            dap = _f(ex["pr_auc_vs_sklearn_ap"], 6)
        else:
            dap = "–"
        if method == "prviz_q4" and "ap_error_bound" in ex:
            dap += f" (bound {_f(ex['ap_error_bound'], 6)}, within: {_f(ex['ap_within_bound'])})"
        vs_trap = _f(ex.get("pr_auc_vs_exact_trapezoid"), 6)
        if "curve_max_abs_diff" in ex:
            curve = (
                f"{_f(ex['curve_max_abs_diff'], 6)} ({ex['curve_points']:,} of "
                f"{ex['curve_reference_points']:,} pts)"
            )
        elif "curve_note" in ex:
            curve = "n/a (bucket thresholds)"
        else:
            curve = "– (no curve)" if method not in ("sklearn", "arrow_read") else "reference"
        if method == "sklearn":
            dap, vs_trap = "reference", "reference"
        speed = "–"
        if _ok(prviz) and method != "prviz":
            speed = f"{run['wall_s'] / prviz['wall_s']:.2f}×"
        wall = _f(run["wall_s"])
        if len(run.get("walls", [])) > 1:
            wall += f" (median of {len(run['walls'])}, min {_f(run['wall_min_s'])})"
        if method == "sklearn":
            parts = run.get("parts", {})
            wall += f" (read {_f(parts.get('read_s'))} + compute {_f(parts.get('compute_s'))})"
        if method in ("prviz", "prviz_q4"):
            parts = run.get("parts", {})
            wall += (
                f" (Spark {_f(parts.get('spark_s'))} + off-Spark {_f(parts.get('off_spark_s'))})"
            )
        lines.append(
            f"| {LABEL[method]} | {definitions.get(method, 'read only')} | {wall} "
            f"| {_mrows(run.get('rows_per_s'))} "
            f"| {_peak(run)} "
            f"| {dap} | {vs_trap} | {curve} | {speed} | {_load(run)} |"
        )
    return "\n".join(lines)


def ratio_table(results) -> str:
    lines = [
        "| rows | ties | prviz wall s | vs MLlib (pyspark.mllib) | vs Spark ML evaluator "
        "| vs MLlib numBins=0 | vs sklearn (read+compute) | vs sklearn compute only "
        "| off-Spark s / Parquet-read floor s | off-Spark / floor |",
        "|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in ratios(results):

        def x(key, row=row):
            return f"{row[key]:.2f}×" if row.get(key) is not None else "–"

        floor = "–"
        if row.get("arrow_read_s") is not None:
            floor = f"{row['off_spark_s']:.3f} / {row['arrow_read_s']:.3f}"
        lines.append(
            f"| {_rows_label(row['rows'])} | {'ties' if row['ties'] else 'no ties'} "
            f"| {_f(row['prviz_wall_s'])} | {x('vs_mllib_py')} | {x('vs_ml_evaluator')} "
            f"| {x('vs_mllib_exact')} | {x('vs_sklearn')} | {x('vs_sklearn_compute')} "
            f"| {floor} | {x('off_spark_vs_floor')} |"
        )
    return "\n".join(lines)


def prviz_breakdown_table(results) -> str:
    """prviz's own parts and the breakdown jobs (each a separate Spark job, noop sink)."""
    lines = [
        "| rows | ties | method | count rows | Spark part s (incl. toArrow) "
        "| scan only | `score_counts` → noop | lean aggregates → noop | int variant key → noop "
        "| `score_counts(4)` → noop | int key + `floor` bucket → noop "
        "| off-Spark s (to_pandas + curves) | off-Spark alone, re-run s |",
        "|--:|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for (n, ties), runs in sorted(_runs(results).items()):
        for method in ("prviz", "prviz_q4"):
            run = runs.get(method)
            if not _ok(run):
                continue
            key = f"{n}_{'ties' if ties else 'noties'}_{method}"
            prof = results.get("prviz_profile", {}).get(key, {})
            sb = prof.get("spark_breakdown", {})
            parts = run["parts"]
            alone = prof.get("off_spark_alone", {}).get("wall_s")
            cells = [
                _f(sb.get(k))
                for k in (
                    "scan_s",
                    "score_counts_noop_s",
                    "lean_group_by_noop_s",
                    "int_key_group_by_noop_s",
                    "score_counts_round4_noop_s",
                    "int_key_floor_bucket_noop_s",
                )
            ]
            lines.append(
                f"| {_rows_label(n)} | {'ties' if ties else 'no ties'} | {method} "
                f"| {run.get('counts_rows', 0):,} | {_f(parts['spark_s'])} | "
                + " | ".join(cells)
                + f" | {_f(parts['off_spark_s'])} ({_f(parts['off_spark_to_pandas_s'])} + "
                f"{_f(parts['off_spark_curves_s'])}) | {_f(alone)} |"
            )
    return "\n".join(lines)


PARSE_STEPS = {
    "read_text": "read the lines (`read_lines`)",
    "from_json": "+ `from_json` of the whole record",
    "from_json_and_timestamp": "+ `from_json` + a `coalesce` of 3 `try_to_timestamp` formats",
    "from_json_and_one_timestamp": "+ `from_json` + one pattern with optional fraction "
    "(alternative)",
    "path_regexp_extract_x6": "read + 6 × `regexp_extract` on the file path",
    "path_split_once": "read + one `split` of the path + 6 × `element_at`",
    "parse_captures": "`parse_captures` (everything)",
    "parse_ground_truth": "`parse_ground_truth` (label files)",
}


def parse_breakdown_table(results) -> str:
    e2e = results.get("e2e") or {}
    pb = e2e.get("parse_breakdown")
    if not pb:
        return "(not measured)"
    cores = e2e.get("cores") or 1
    lines = [
        f"Every {pb['every_nth_hour']}th hour folder: {pb['capture_bytes'] / 1e6:,.1f} MB of "
        f"capture, {pb['label_bytes'] / 1e6:,.1f} MB of ground truth (label folders of the "
        "window); each step is its own Spark job writing to the noop sink; median of the "
        "repeats.",
        "",
        "| step | wall s | MB/s | MB/s per core | load 1-min (start → end) |",
        "|---|--:|--:|--:|--:|",
    ]
    for key, label in PARSE_STEPS.items():
        step = pb.get(key)
        if not step:
            continue
        if not step.get("wall_s"):
            lines.append(f"| {label} | failed: {step.get('error')} | | | |")
            continue
        load = step.get("load") or [[0], [0]]
        lines.append(
            f"| {label} | {step['wall_s']:.2f} | {step['mb_per_s']:.2f} "
            f"| {step['mb_per_s'] / cores:.2f} | {load[0][0]:.2f} → {load[1][0]:.2f} |"
        )
    return "\n".join(lines)


def profile_table(results, limit: int = 10) -> str:
    profiles = results.get("prviz_profile", {})
    if not profiles:
        return "(no profile)"
    # the largest exact no-ties run: where the off-Spark part is heaviest
    keys = [k for k in profiles if k.endswith("_noties_prviz") and profiles[k]]
    if not keys:
        return "(no profile)"
    key = max(keys, key=lambda k: int(k.split("_")[0]))
    prof = profiles[key]["off_spark_cprofile"]
    lines = [
        f"cProfile of the off-Spark part, {_rows_label(int(key.split('_')[0]))} rows, no ties "
        f"({profiles[key]['counts_rows']:,} count rows); cumulative seconds under the profiler:",
        "",
        "| function | calls | cumulative s | own s |",
        "|---|--:|--:|--:|",
    ]
    seen = set()
    for row in prof["by_cumtime"][:limit] + prof["by_tottime"][:limit]:
        if row["function"] in seen:
            continue
        seen.add(row["function"])
        lines.append(
            f"| `{row['function']}` | {row['calls']:,} | {row['cumtime_s']:.3f} "
            f"| {row['tottime_s']:.3f} |"
        )
    return "\n".join(lines)


def e2e_table(results) -> str:
    e2e = results.get("e2e")
    if not e2e:
        return "(not run)"
    stages = e2e["stage_seconds"]
    lines = [
        "| figure | value |",
        "|---|--:|",
        f"| capture records (lines) | {e2e['capture_records']:,} |",
        f"| predictions (scores) | {e2e['predictions']:,} |",
        f"| labeled predictions | {e2e['n_labeled']:,} |",
        f"| capture files | {e2e['input_files']:,} |",
        f"| capture bytes (report `input_bytes`) | {e2e['capture_bytes'] / 1e6:,.1f} MB |",
        f"| ground-truth bytes also read (all label folders) | "
        f"{e2e['label_bytes_all_folders'] / 1e6:,.1f} MB |",
        *[
            f"| stage `{name}` (report `spark_seconds`/`seconds`) | {sec:,.1f} s |"
            for name, sec in stages.items()
        ],
        f"| run_job wall time | {e2e['wall_s']:,.1f} s |",
        f"| records/s | {e2e['records_per_s']:,.0f} |",
        f"| capture MB/s (whole job) | {e2e['capture_mb_per_s']:.2f} |",
        f"| capture MB/s per core ({e2e['cores']} cores, local[*]) | "
        f"{e2e['capture_mb_per_s_per_core']:.2f} |",
        f"| capture MB/s per core, parse stage alone | {e2e['parse_stage_mb_per_s_per_core']:.2f} |",
        f"| peak RSS MB, Python / JVM (+ growth over the start) | {_peak(e2e)} |",
        f"| load 1/5/15-min at start → end | {e2e['load_start']} → {e2e['load_end']} |",
        f"| demo data generation (not in the job time) | {e2e['generate_s']:.1f} s |",
    ]
    return "\n".join(lines)


def machine_table(results) -> str:
    m = results["machine"]
    s = results["session_start"]
    lines = [
        "| fact | value |",
        "|---|---|",
        f"| nproc | {m['nproc']} |",
        f"| CPU | {m['cpu_model']} |",
        f"| memory | {m['memory_gib']} GiB |",
        f"| kernel | {m['kernel']} |",
        f"| Python | {m['python']} |",
        f"| Java | {m['java']} |",
        f"| Spark (pyspark) | {m['spark']} (master {m['spark_master']}, driver memory "
        f"{m['spark_driver_memory']}, shuffle partitions {m['spark_shuffle_partitions']}) |",
        f"| numpy / pandas / pyarrow / scikit-learn | {m['numpy']} / {m['pandas']} / "
        f"{m['pyarrow']} / {m['scikit_learn']} |",
        f"| Spark session start (measured separately) | {s['wall_s']:.1f} s |",
        f"| load 1/5/15-min at start of run | {results['load_at_start']} |",
        f"| load 1/5/15-min at end of run | {results.get('load_at_end')} |",
        f"| whole run | {results.get('total_s', 0) / 60:.1f} min (warm-up {results['warmup_s']:.0f} s) |",
        "| prviz files measured (sha256, 12 hex) | "
        + ", ".join(f"`{k}` {v}" for k, v in (results.get("code") or {}).items())
        + " |",
    ]
    return "\n".join(lines)


def targets(results) -> list[str]:
    """The issue's two targets, on its 10M rows (or the largest size run), with verdicts."""
    out = []
    rows = ratios(results)
    sizes = sorted({r["rows"] for r in rows})
    up_to_10m = [n for n in sizes if n <= 1e7]
    target_rows = max(up_to_10m) if up_to_10m else max(sizes, default=0)
    for row in rows:
        if row["rows"] != target_rows:
            continue  # the targets are stated on 10M rows
        tag = f"{_rows_label(row['rows'])} rows, {'ties' if row['ties'] else 'no ties'}"
        for key, name in (
            ("vs_mllib_py", "pyspark.mllib's BinaryClassificationMetrics (the issue's MLlib)"),
            ("vs_ml_evaluator", "Spark ML's BinaryClassificationEvaluator"),
            ("vs_mllib_exact", "MLlib's BinaryClassificationMetrics with numBins=0"),
        ):
            speed = row.get(key)
            if speed is not None:
                verdict = "met" if speed >= TARGET_MLLIB_SPEEDUP else "**not met**"
                out.append(
                    f"{tag}: prviz (exact) vs {name}: {speed:.2f}× "
                    f"(target ≥ {TARGET_MLLIB_SPEEDUP:g}×): {verdict}."
                )
        ratio = row.get("off_spark_vs_floor")
        if ratio is not None:
            verdict = "met" if ratio <= TARGET_FLOOR_RATIO else "**not met**"
            out.append(
                f"{tag}: off-Spark part {row['off_spark_s']:.3f} s = {ratio:.2f}× the "
                f"Parquet read floor ({row['arrow_read_s']:.3f} s; target ≤ "
                f"{TARGET_FLOOR_RATIO:g}×): {verdict}."
            )
    return out


def render_tables(results) -> str:
    sizes = sorted({(r["rows"], r["ties"]) for r in results["runs"]})
    parts = []
    for n, ties in sizes:
        parts.append(f"### {_rows_label(n)} rows, {'ties (4 decimals)' if ties else 'no ties'}\n")
        parts.append(method_table(results, n, ties) + "\n")
    parts.append("### Ratios (peer wall time / prviz wall time, same run)\n")
    parts.append(ratio_table(results) + "\n")
    parts.append("### End to end\n")
    parts.append(e2e_table(results) + "\n")
    return "\n".join(parts)


def render(results, extras=()) -> str:
    from bench_doc import document

    return document(results, extras)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Render bench results as markdown")
    parser.add_argument("results")
    parser.add_argument("--write", help="write the full document here (e.g. docs/performance.md)")
    parser.add_argument(
        "--extra", action="append", default=[], help="results of a separate (larger) run"
    )
    args = parser.parse_args(argv)
    results = json.loads(Path(args.results).read_text())
    extras = [json.loads(Path(p).read_text()) for p in args.extra]
    if args.write:
        from doc_sections import write_keeping

        write_keeping(Path(args.write), render(results, extras))
        print(f"wrote {args.write}")
    else:
        print(render_tables(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
