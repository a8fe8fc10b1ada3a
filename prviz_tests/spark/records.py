"""Hand-written SageMaker Data Capture and ground-truth records in the real formats."""

import base64
import json
from pathlib import Path


def capture(score_data, *, encoding="CSV", content_type="text/csv; charset=utf-8",
            event_id="e-1", inference_id=None, time="2025-01-15T10:42:07Z",
            input_data="42,0,3.7,118.0"):  # fmt: skip
    meta = {"eventId": event_id, "inferenceTime": time}
    if inference_id is not None:
        meta["inferenceId"] = inference_id
    return {
        "captureData": {
            "endpointInput": {"observedContentType": "text/csv", "mode": "INPUT",
                              "data": input_data, "encoding": "CSV"},
            "endpointOutput": {"observedContentType": content_type, "mode": "OUTPUT",
                               "data": score_data, "encoding": encoding},
        },
        "eventMetadata": meta,
        "eventVersion": "0",
    }  # fmt: skip


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def label(key: str, data: str, encoding: str = "CSV") -> dict:
    return {
        "groundTruthData": {"data": data, "encoding": encoding},
        "eventMetadata": {"eventId": key},
        "eventVersion": "0",
    }


def write_jsonl(path: Path, records) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    path.write_text("\n".join(lines) + "\n")
    return path


def capture_file(root: Path, endpoint: str, variant: str, day: str, hour: int, name: str,
                 records) -> Path:  # fmt: skip
    y, m, d = day.split("-")
    return write_jsonl(root / endpoint / variant / y / m / d / f"{hour:02d}" / name, records)


def label_file(root: Path, day: str, hour: int, name: str, records) -> Path:
    y, m, d = day.split("-")
    return write_jsonl(root / y / m / d / f"{hour:02d}" / name, records)
