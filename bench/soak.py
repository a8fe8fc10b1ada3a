"""Soak: a month of demo days through the real path, one daily run after another, then as one
backfill; reports wall time per run, where it goes (Dagster step durations) and peak memory.

    .venv/bin/python bench/soak.py --days 30 [--records-per-day 20000] [--out bench/out/soak]

Phase "daily": 30 runs of `prviz backfill --start D --end D`, in day order, against ONE lake and
ONE Dagster instance (what the daily schedule produces: each run a new process, a new JVM). For
each run: wall time, the step durations from the instance's event log (spark_stages,
pr_curves_7d, quicksight_dataset, pr_dashboard), the peak RSS of the whole process tree (the
prviz process plus its JVM, sampled from /proc every 0.1 s), the days and bytes already in the
lake before it, and the 1-minute load. Phase "backfill": the same 30 days as one run
(`prviz backfill --start D1 --end D30`: one Spark application) into a fresh lake and instance.

The question it answers: does a day cost more once many days are stored? A least-squares slope of
each step's time against the number of days already stored, with its share of the mean, is in
the output. Results: `{out}/soak.json` and `{out}/soak.md` (the section pasted into
docs/performance.md).
"""

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRVIZ = Path(sys.executable).parent / "prviz"
STEPS = ("spark_stages", "pr_curves_7d", "quicksight_dataset", "pr_dashboard")


def _children(pid: int) -> list[int]:
    out = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                out += [int(c) for c in handle.read().split()]
    except OSError:
        pass
    return out


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_kib(pid: int) -> int:
    """Resident memory of a process and all its descendants, now."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        total += _rss_kib(current)
        todo += _children(current)
    return total


class Sampler(threading.Thread):
    def __init__(self, pid: int, interval: float = 0.1):
        super().__init__(daemon=True)
        self.pid, self.interval, self.peak_kib, self.done = pid, interval, 0, threading.Event()

    def run(self):
        while not self.done.is_set():
            self.peak_kib = max(self.peak_kib, tree_rss_kib(self.pid))
            self.done.wait(self.interval)


def du_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def run_prviz(args: list[str], env: dict) -> dict:
    started = time.monotonic()
    load = os.getloadavg()[0]
    proc = subprocess.Popen(
        [str(PRVIZ), *args], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    sampler = Sampler(proc.pid)
    sampler.start()
    output, _ = proc.communicate()
    sampler.done.set()
    sampler.join()
    wall = time.monotonic() - started
    if proc.returncode != 0:
        sys.stderr.write(output.decode(errors="replace")[-4000:])
        raise SystemExit(f"prviz {' '.join(args)} failed with exit code {proc.returncode}")
    return {
        "wall_s": wall,
        "peak_rss_mib": sampler.peak_kib / 1024,
        "load_1m_start": load,
        "load_1m_end": os.getloadavg()[0],
    }


def step_durations(dagster_home: Path) -> dict[str, dict[str, float]]:
    """run_id -> step key -> seconds, from STEP_START / STEP_SUCCESS in the event log."""
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        out: dict[str, dict[str, float]] = {}
        for record in instance.get_run_records():
            run_id = record.dagster_run.run_id
            starts, ends = {}, {}
            for entry in instance.all_logs(run_id):
                event = entry.dagster_event
                if event is None or not event.step_key:
                    continue
                if event.event_type_value == "STEP_START":
                    starts[event.step_key] = entry.timestamp
                elif event.event_type_value == "STEP_SUCCESS":
                    ends[event.step_key] = entry.timestamp
            out[run_id] = {k: ends[k] - starts[k] for k in ends if k in starts}
            out[run_id]["_start"] = record.start_time or 0.0
        return out


# the windows a day reads fill up over the first days: labels' prediction keys (8 days) and the
# 7-day curve; growth is also measured after them
WINDOW_DAYS = 8


def growth(daily: list[dict], min_stored: int = 0) -> dict:
    rows = [r for r in daily if r["days_stored"] >= min_stored]
    xs = [r["days_stored"] for r in rows]
    out = {}
    for name in ("wall_s", *STEPS):
        ys = [r["wall_s"] if name == "wall_s" else r["steps_s"].get(name, 0.0) for r in rows]
        mean = statistics.fmean(ys)
        out[name] = {
            "mean_s": mean,
            "first5_mean_s": statistics.fmean(ys[:5]),
            "last5_mean_s": statistics.fmean(ys[-5:]),
            "slope_s_per_stored_day": slope(xs, ys),
            "slope_share_of_mean": slope(xs, ys) / mean if mean else 0.0,
        }
    return out


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys against xs."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--start", default="2025-01-01")
    parser.add_argument("--records-per-day", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "soak")
    parser.add_argument("--skip-backfill", action="store_true")
    parser.add_argument("--write-docs", action="store_true", help="also update docs/performance.md")
    parser.add_argument("--from-json", type=Path, help="only render (and write) a saved soak.json")
    args = parser.parse_args(argv)
    if args.from_json:
        return publish(json.loads(args.from_json.read_text()), args.write_docs)

    out = args.out.resolve()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    start = dt.date.fromisoformat(args.start)
    days = [(start + dt.timedelta(days=k)).isoformat() for k in range(args.days)]
    data = out / "data"
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("PRVIZ_", "DAGSTER_"))} | {
        "PRVIZ_START_DATE": args.start
    }
    print(f"demo data: {args.days} days x {args.records_per_day:,} records -> {data}", flush=True)
    generated = run_prviz(
        ["demo-data", "--out", str(data), "--start", args.start, "--days", str(args.days),
         "--records-per-day", str(args.records_per_day)],
        base_env,
    )  # fmt: skip

    def env_for(home: Path) -> dict:
        return base_env | {
            "PRVIZ_HOME": str(home),
            "PRVIZ_CAPTURE_URI": str(data / "capture"),
            "PRVIZ_GROUND_TRUTH_URI": str(data / "ground-truth"),
            "DAGSTER_HOME": str(home / "dagster_home"),
        }

    results = {
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"nproc": os.cpu_count(), "platform": platform.platform()},
        "days": args.days,
        "records_per_day": args.records_per_day,
        "capture_bytes": du_bytes(data / "capture"),
        "label_bytes": du_bytes(data / "ground-truth"),
        "generate": generated,
        "daily": [],
    }

    daily_home = out / "daily"
    daily_home.mkdir()
    env = env_for(daily_home)
    phase_started = time.monotonic()
    for index, day in enumerate(days):
        before = {"days_stored": index, "lake_bytes": du_bytes(daily_home / "lake")}
        measured = run_prviz(["backfill", "--start", day, "--end", day], env)
        results["daily"].append({"day": day, **before, **measured})
        print(
            f"{day}: {measured['wall_s']:6.1f} s  peak {measured['peak_rss_mib']:6.0f} MiB  "
            f"load {measured['load_1m_start']:.2f}  ({index} days stored)",
            flush=True,
        )
    results["daily_total_s"] = time.monotonic() - phase_started
    durations = step_durations(daily_home / "dagster_home")
    runs = sorted(durations.values(), key=lambda d: d["_start"])
    if len(runs) != len(days):
        raise SystemExit(f"expected {len(days)} runs in the daily instance, found {len(runs)}")
    for row, steps in zip(results["daily"], runs, strict=True):
        row["steps_s"] = {k: v for k, v in steps.items() if k != "_start"}

    if not args.skip_backfill:
        backfill_home = out / "backfill"
        backfill_home.mkdir()
        measured = run_prviz(
            ["backfill", "--start", days[0], "--end", days[-1]], env_for(backfill_home)
        )
        (steps,) = step_durations(backfill_home / "dagster_home").values()
        results["backfill"] = {
            **measured,
            "steps_s": {k: v for k, v in steps.items() if k != "_start"},
        }
        print(f"one backfill of {len(days)} days: {measured['wall_s']:.1f} s", flush=True)

    results["growth"] = growth(results["daily"])
    (out / "soak.json").write_text(json.dumps(results, indent=2))
    (out / "soak.md").write_text(render(results))
    return publish(results, args.write_docs)


def publish(results: dict, write_docs: bool) -> int:
    section = SECTION_HEAD + render(results)
    print(section)
    if write_docs:
        sys.path.insert(0, str(ROOT / "bench"))
        from doc_sections import splice

        path = ROOT / "docs" / "performance.md"
        path.write_text(splice(path.read_text(), "soak", section))
        print(f"wrote the soak section of {path}")
    return 0


SECTION_HEAD = """## Soak: a month of daily runs

`bench/soak.py` (`.venv/bin/python bench/soak.py --days 30 --write-docs`): 30 demo days through
the real path, as the daily schedule runs them: one `prviz backfill --start D --end D` per day, in
day order, each a new process with its own JVM, against one lake and one Dagster instance; then
the same 30 days as one backfill run into a fresh lake. Per run: wall time, Dagster's step
durations from the event log, and the peak resident memory of the whole process tree (prviz and
its JVM, sampled every 0.1 s). The question: does a day cost more once many days are stored?

"""


def render(results: dict) -> str:
    daily = results["daily"]
    loads = [r["load_1m_start"] for r in daily]
    lines = [
        f"Run of {results['started_at']}: {results['days']} demo days of "
        f"{results['records_per_day']:,} capture records ({results['capture_bytes'] / 1e6:.0f} MB "
        f"of capture JSON, {results['label_bytes'] / 1e6:.0f} MB of labels in all), "
        f"{results['machine']['nproc']} cores, 1-minute load at the start of each run "
        f"{min(loads):.2f}–{max(loads):.2f}.",
        "",
        "| | runs | total wall | per day (mean) | per day (min–max) | peak RSS (prviz + JVM) |",
        "|---|--:|--:|--:|--:|--:|",
        f"| daily runs, one per day | {len(daily)} | {results['daily_total_s']:.0f} s | "
        f"{statistics.fmean(r['wall_s'] for r in daily):.1f} s | "
        f"{min(r['wall_s'] for r in daily):.1f}–{max(r['wall_s'] for r in daily):.1f} s | "
        f"{max(r['peak_rss_mib'] for r in daily):.0f} MiB |",
    ]
    if "backfill" in results:
        b = results["backfill"]
        lines.append(
            f"| one backfill run | 1 | {b['wall_s']:.0f} s | {b['wall_s'] / results['days']:.1f} s "
            f"| — | {b['peak_rss_mib']:.0f} MiB |"
        )
    lines += [
        "",
        "Growth with the days already stored: least-squares slope of each time against the "
        f"number of days in the lake before the run, over all runs and over the runs after the "
        f"first {WINDOW_DAYS} (once the 8-day label-key window and the 7-day curve window are "
        "full); the last column is the slope times 30 days, as a share of the mean.",
        "",
        "| step | runs | mean | first 5 runs | last 5 runs | slope per stored day | × 30 days / mean |",
        "|---|---|--:|--:|--:|--:|--:|",
    ]
    for label_runs, g_all in (
        ("all", growth(daily)),
        (f"after {WINDOW_DAYS}", growth(daily, WINDOW_DAYS)),
    ):
        for name, g in g_all.items():
            label = "whole run (wall)" if name == "wall_s" else f"`{name}`"
            lines.append(
                f"| {label} | {label_runs} | {g['mean_s']:.2f} s | {g['first5_mean_s']:.2f} s | "
                f"{g['last5_mean_s']:.2f} s | {g['slope_s_per_stored_day'] * 1000:+.1f} ms | "
                f"{g['slope_share_of_mean'] * 30:+.1%} |"
            )
    if "backfill" in results:
        steps = results["backfill"]["steps_s"]
        lines += [
            "",
            "One backfill run, step durations: "
            + ", ".join(f"`{k}` {v:.1f} s" for k, v in sorted(steps.items())),
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
