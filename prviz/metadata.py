"""Turn the job's plain per-day report into Dagster metadata (the product's voice in the UI).

Numbers stay numbers so the UI plots them by partition; nested per-variant figures are
flattened into one numeric entry each (`predictions/fraud-scorer/champion`); URIs become links.
"""

import base64
import io
import json

import dagster as dg

_SKIP = {"warnings", "summary", "uris", "curve"}


def _value(key: str, value):
    if isinstance(value, bool):
        return dg.MetadataValue.bool(value)
    if isinstance(value, int):
        return dg.MetadataValue.int(value)
    if isinstance(value, float):
        return dg.MetadataValue.float(value)
    if isinstance(value, str):
        if value.startswith("file://"):
            return dg.MetadataValue.path(value[len("file://") :])
        if "://" in value:
            return dg.MetadataValue.url(value)
        return dg.MetadataValue.text(value)
    if value is None:
        return dg.MetadataValue.null()
    return dg.MetadataValue.json(json.loads(json.dumps(value, default=str)))


def report_metadata(meta: dict) -> dict[str, dg.MetadataValue]:
    """Metadata for one asset and one day from the job's report entry."""
    out: dict[str, dg.MetadataValue] = {}
    for key, value in meta.items():
        if key in _SKIP:
            continue
        if (
            isinstance(value, dict)
            and value
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value.values())
        ):
            for sub, number in sorted(value.items()):
                out[f"{key}/{sub}"] = _value(key, number)
            out[key] = _value(key, value)
        else:
            out[key] = _value(key, value)
    warnings = meta.get("warnings") or []
    out["warnings"] = dg.MetadataValue.md(
        "\n".join(f"- {w}" for w in warnings) if warnings else "none"
    )
    out["warning_count"] = dg.MetadataValue.int(len(warnings))
    return out


SUMMARY_FLOATS = ("average_precision", "pr_auc", "best_f1", "label_coverage", "base_rate",
                  "ap_error_bound")  # fmt: skip


def summary_metadata(summary: list[dict]) -> dict[str, dg.MetadataValue]:
    """Per-variant AP, PR-AUC, best F1, coverage as floats, plus counts, plus a markdown table."""
    out: dict[str, dg.MetadataValue] = {}
    lines = [
        "| endpoint/variant | predictions | labeled | positives | AP | PR-AUC | best F1 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]

    def fmt(value):
        return "—" if value is None else f"{value:.4f}"

    for row in summary:
        name = f"{row['endpoint']}/{row['variant']}"
        for key in SUMMARY_FLOATS:
            if row.get(key) is not None:
                out[f"{key}/{name}"] = dg.MetadataValue.float(float(row[key]))
        for key in ("n_predictions", "n_labeled", "n_positives"):
            out[f"{key}/{name}"] = dg.MetadataValue.int(int(row[key]))
        lines.append(
            f"| {name} | {row['n_predictions']} | {row['n_labeled']} | {row['n_positives']} | "
            f"{fmt(row['average_precision'])} | {fmt(row['pr_auc'])} | {fmt(row['best_f1'])} |"
        )
    out["summary"] = dg.MetadataValue.md("\n".join(lines) if summary else "no labeled data")
    return out


def curve_image_markdown(points, title: str) -> str:
    """A small PR-curve PNG (one line per variant) as a markdown image with a data URI."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(4, 3), dpi=72)
    try:
        for (endpoint, variant), group in points.groupby(["endpoint", "variant"], sort=True):
            label = f"{endpoint}/{variant}"
            axes.plot(group["recall"], group["precision"], label=label, linewidth=1.5)
        axes.set_xlim(0, 1)
        axes.set_ylim(0, 1.02)
        axes.set_xlabel("recall")
        axes.set_ylabel("precision")
        axes.set_title(title, fontsize=9)
        if len(points):
            axes.legend(fontsize=7, loc="lower left")
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
    finally:
        plt.close(figure)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"![PR curve {title}](data:image/png;base64,{encoded})"
