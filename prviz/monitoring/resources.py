"""Notifiers: where alerts go. One small interface, a local and two production implementations.

* `AlertLogNotifier` (local default): one JSON line per alert appended to `{PRVIZ_HOME}/alerts.log`
  (the sensor also writes every alert to its Dagster log).
* `SNSNotifier`: `sns:Publish` to a topic (subject, text, and `severity`/`kind` message attributes
  for subscription filter policies). The region is the topic ARN's.
* `SlackWebhookNotifier`: an HTTP POST of a JSON message to a Slack incoming webhook. The URL is a
  secret: configure it with `dg.EnvVar("PRVIZ_SLACK_WEBHOOK_URL")` (the UI then shows only the
  variable's name); it is never logged, and error messages never contain it.

A notifier raises `NotifierError` when it could not deliver; the alert sensor then keeps the alert
for the next tick. Nothing here runs at import: boto3 is imported and its client built on send.
"""

import datetime as dt
import http.client
import ipaddress
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from abc import abstractmethod
from pathlib import Path

import dagster as dg
from pydantic import Field

from prviz.monitoring.alerts import Alert

SNS_TOPIC_ARN_ENV = "PRVIZ_SNS_TOPIC_ARN"
SLACK_WEBHOOK_URL_ENV = "PRVIZ_SLACK_WEBHOOK_URL"
_UNSAFE_URL_CHARACTERS = re.compile(r"[\x00-\x20\x7f]")
_TOPIC_ARN = re.compile(r"^arn:aws[a-z-]*:sns:([a-z0-9-]+):\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$")


class NotifierError(RuntimeError):
    """An alert could not be delivered; the message says why and holds no secret."""


class Notifier(dg.ConfigurableResource):
    """Delivers one alert, or raises `NotifierError`."""

    @abstractmethod
    def send(self, alert: Alert) -> None: ...


class AlertLogNotifier(Notifier):
    """Appends each alert as one JSON line to a local file (the embedded default)."""

    path: str

    def send(self, alert: Alert) -> None:
        record = {"sent_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
        record.update(alert.to_dict())
        try:
            target = Path(self.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("a", encoding="utf-8") as log:
                log.write(json.dumps(record, sort_keys=True) + "\n")
        except OSError as error:
            raise NotifierError(f"cannot append to the alert log {self.path}: {error}") from None


def sns_subject(title: str) -> str:
    """SNS subjects are ASCII, one line, shorter than 100 characters."""
    ascii_text = title.encode("ascii", "replace").decode("ascii")
    one_line = re.sub(r"[\x00-\x1f\x7f]+", " ", ascii_text).strip()
    return one_line if len(one_line) < 100 else one_line[:96] + "..."


class SNSNotifier(Notifier):
    """Publishes each alert to an SNS topic (configure `topic_arn` with dg.EnvVar)."""

    topic_arn: str

    def region(self) -> str:
        match = _TOPIC_ARN.match(self.topic_arn)
        if not match:
            raise NotifierError(
                f"{SNS_TOPIC_ARN_ENV}={self.topic_arn!r} is not an SNS topic ARN "
                "(arn:aws:sns:<region>:<account>:<topic>)"
            )
        return match.group(1)

    def make_client(self):
        import boto3

        return boto3.client("sns", region_name=self.region())

    def send(self, alert: Alert) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        self.region()
        attributes = {
            "severity": {"DataType": "String", "StringValue": alert.severity},
            "kind": {"DataType": "String", "StringValue": alert.kind},
            "asset": {"DataType": "String", "StringValue": alert.asset},
        }
        try:
            self.make_client().publish(
                TopicArn=self.topic_arn,
                Subject=sns_subject(alert.title),
                Message=alert.text(),
                MessageAttributes=attributes,
            )
        except (BotoCoreError, ClientError) as error:
            raise NotifierError(f"SNS publish to {self.topic_arn} failed: {error}") from None


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def _mrkdwn(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(alert: Alert) -> dict:
    """An incoming-webhook message: a plain `text` fallback and one mrkdwn section."""
    body = (
        f"*{_mrkdwn(alert.title)}*\n{_mrkdwn(alert.description)}\n"
        f"<{alert.link}|Open {_mrkdwn(alert.asset)} {alert.day or ''} in Dagster> · "
        f"<{alert.check_link}|check {_mrkdwn(alert.check)}>"
    )
    return {
        "text": f"{alert.title}: {alert.description} ({alert.link})",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": body}}],
        "unfurl_links": False,
    }


class SlackWebhookNotifier(Notifier):
    """Posts each alert to a Slack incoming webhook. The URL is a secret (use dg.EnvVar)."""

    webhook_url: str = Field(repr=False, description="secret: set it through dg.EnvVar")
    timeout_seconds: float = 10.0

    def _redact(self, text: str) -> str:
        url = self.webhook_url
        try:
            parts = urllib.parse.urlsplit(url)
            pieces = (url, parts.path, parts.query, parts.netloc)
        except ValueError:
            pieces = (url,)
        for secret in sorted(pieces, key=len, reverse=True):
            if len(secret) > 1:
                text = text.replace(secret, "<webhook>")
        return text

    def send(self, alert: Alert) -> None:
        # No message below repeats the URL or any part of it: the path and query are the secret.
        if _UNSAFE_URL_CHARACTERS.search(self.webhook_url):
            raise NotifierError(
                f"{SLACK_WEBHOOK_URL_ENV} contains a space or a control character "
                "(a trailing newline?): set it to the URL alone"
            )
        try:
            parts = urllib.parse.urlsplit(self.webhook_url)
            host = parts.hostname
        except ValueError:
            raise NotifierError(f"{SLACK_WEBHOOK_URL_ENV} is not a valid URL") from None
        if not (parts.scheme == "https" or (parts.scheme == "http" and _is_loopback(host))):
            raise NotifierError(
                f"{SLACK_WEBHOOK_URL_ENV} must be an https:// URL (http only on loopback)"
            )
        request = urllib.request.Request(
            self.webhook_url,
            data=json.dumps(slack_payload(alert)).encode("utf-8"),
            headers={"Content-Type": "application/json; charset=utf-8"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
                response.read(1024)
        except urllib.error.HTTPError as error:
            raise NotifierError(f"Slack webhook answered HTTP {error.code}") from None
        except (urllib.error.URLError, OSError) as error:
            reason = self._redact(str(getattr(error, "reason", error)))
            raise NotifierError(f"Slack webhook unreachable: {reason}") from None
        except (http.client.HTTPException, ValueError) as error:  # e.g. InvalidURL: a bad port
            reason = self._redact(str(error))
            raise NotifierError(f"Slack webhook request failed: {reason}") from None


CHANNEL_RESOURCE_KEYS = {
    "log": "alert_log_notifier",
    "sns": "sns_notifier",
    "slack": "slack_notifier",
}


def build_notifiers(channels: tuple[str, ...], alert_log: str) -> dict[str, Notifier]:
    """The notifier resources for the configured channels, keyed by resource key."""
    factories = {
        "log": lambda: AlertLogNotifier(path=alert_log),
        "sns": lambda: SNSNotifier(topic_arn=dg.EnvVar(SNS_TOPIC_ARN_ENV)),
        "slack": lambda: SlackWebhookNotifier(webhook_url=dg.EnvVar(SLACK_WEBHOOK_URL_ENV)),
    }
    return {CHANNEL_RESOURCE_KEYS[c]: factories[c]() for c in channels}
