"""Alerts: what one says, where it links, and when it is sent (once per failure, once on recovery).

The alert sensor turns the latest check evaluations into `Observation`s (a check, a day, failed
or passed) and `plan_deliveries` compares them with what each channel was last told, kept in the
sensor cursor as `{"v": 1, "failing": {"<asset>:<check>|<day>": {"<channel>": "failed"}}}`:

* failed, and the channel was not told yet          -> a failure alert on that channel;
* passed, and the channel was told it failed        -> a recovery alert on that channel;
* anything else                                     -> nothing (already said).

The cursor changes only for deliveries that succeeded (`apply_delivery`), per channel: a channel
that is down is retried on the next tick, and the other channels are not told twice. Only
failing entries are stored, so the cursor stays small.
"""

import datetime as dt
import json
from dataclasses import asdict, dataclass
from urllib.parse import quote, urlencode

CURSOR_VERSION = 1
FAILED = "failed"
PASSED = "passed"
MAX_FAILING_ENTRIES = 2000  # a cursor guard; the oldest days are forgotten first


def asset_link(base_url: str, asset_path: list[str] | tuple[str, ...], day: str | None) -> str:
    """The asset's page in the Dagster UI (1.13 route `/assets/<path>`), on the day's partition."""
    path = "/".join(quote(part, safe="") for part in asset_path)
    query = urlencode({"view": "partitions", "partition": day}) if day else "view=overview"
    return f"{base_url.rstrip('/')}/assets/{path}?{query}"


def check_link(base_url: str, asset_path: list[str] | tuple[str, ...], check: str) -> str:
    """The check's page in the Dagster UI (`?view=checks&checkDetail=<name>`)."""
    path = "/".join(quote(part, safe="") for part in asset_path)
    return f"{base_url.rstrip('/')}/assets/{path}?{urlencode({'view': 'checks', 'checkDetail': check})}"


@dataclass(frozen=True)
class Alert:
    """One message: a check failed (`kind="failure"`) or passes again (`kind="recovery"`)."""

    kind: str
    asset: str
    check: str
    day: str | None
    severity: str
    description: str
    link: str
    check_link: str
    evaluated_at: str
    run_id: str = ""

    @property
    def key(self) -> str:
        return alert_key(self.asset, self.check, self.day)

    @property
    def title(self) -> str:
        day = self.day or "latest"
        if self.kind == "recovery":
            return f"[prviz] RECOVERED {self.asset} {day}: {self.check} passes again"
        return f"[prviz] {self.severity} {self.asset} {day}: {self.check} failed"

    def text(self) -> str:
        """Plain text: the title, what is wrong, and where to look."""
        lines = [self.title, self.description, f"asset: {self.link}", f"check: {self.check_link}"]
        if self.run_id:
            lines.append(f"run: {self.run_id}")
        lines.append(f"evaluated at {self.evaluated_at}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"title": self.title, **asdict(self)}


def alert_key(asset: str, check: str, day: str | None) -> str:
    return f"{asset}:{check}|{day or ''}"


@dataclass(frozen=True)
class Observation:
    """The latest completed evaluation of one check for one day."""

    asset: str
    asset_path: tuple[str, ...]
    check: str
    day: str | None
    passed: bool
    severity: str
    description: str
    evaluated_at: float
    run_id: str = ""

    @property
    def key(self) -> str:
        return alert_key(self.asset, self.check, self.day)

    def alert(self, kind: str, base_url: str) -> Alert:
        return Alert(
            kind=kind,
            asset=self.asset,
            check=self.check,
            day=self.day,
            severity=self.severity,
            description=self.description,
            link=asset_link(base_url, self.asset_path, self.day),
            check_link=check_link(base_url, self.asset_path, self.check),
            evaluated_at=dt.datetime.fromtimestamp(self.evaluated_at, dt.UTC).isoformat(
                timespec="seconds"
            ),
            run_id=self.run_id,
        )


def load_cursor(text: str | None, channels: list[str] | None = None) -> dict:
    """The cursor as a dict; an empty or foreign cursor starts afresh.

    With `channels`, what was told on a channel no longer configured is forgotten.
    """
    fresh = {"v": CURSOR_VERSION, "failing": {}}
    if not text:
        return fresh
    try:
        data = json.loads(text)
    except ValueError:
        return fresh
    if not isinstance(data, dict) or data.get("v") != CURSOR_VERSION:
        return fresh
    failing = data.get("failing") if isinstance(data.get("failing"), dict) else {}
    if channels is not None:
        failing = {
            key: kept
            for key, told in failing.items()
            if (kept := {c: s for c, s in told.items() if c in channels})
        }
    data["failing"] = failing
    return data


def dump_cursor(cursor: dict) -> str:
    failing = cursor.get("failing", {})
    if len(failing) > MAX_FAILING_ENTRIES:
        keep = sorted(failing, key=lambda k: k.rsplit("|", 1)[-1])[-MAX_FAILING_ENTRIES:]
        cursor = {**cursor, "failing": {k: failing[k] for k in keep}}
    return json.dumps(cursor, sort_keys=True, separators=(",", ":"))


def plan_deliveries(
    observations: list[Observation], cursor: dict, channels: list[str], base_url: str
) -> list[tuple[str, Alert]]:
    """The (channel, alert) pairs to send now, failures first, oldest day first."""
    failing = cursor.get("failing", {})
    plan = []
    for obs in sorted(observations, key=lambda o: (o.passed, o.day or "", o.key)):
        told = failing.get(obs.key, {})
        for channel in channels:
            if not obs.passed and told.get(channel) != FAILED:
                plan.append((channel, obs.alert("failure", base_url)))
            elif obs.passed and told.get(channel) == FAILED:
                plan.append((channel, obs.alert("recovery", base_url)))
    return plan


def apply_delivery(cursor: dict, channel: str, alert: Alert) -> None:
    """Record that `channel` was told `alert` (called only after a successful send)."""
    failing = cursor.setdefault("failing", {})
    if alert.kind == "failure":
        failing.setdefault(alert.key, {})[channel] = FAILED
    else:
        told = failing.get(alert.key, {})
        told.pop(channel, None)
        if not told:
            failing.pop(alert.key, None)
