"""Notifiers against real things: a file, botocore's SNS model (Stubber), a loopback HTTP server."""

import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import dagster as dg
import pytest
from botocore.stub import Stubber

from prviz.monitoring.alerts import Alert
from prviz.monitoring.resources import (
    AlertLogNotifier,
    NotifierError,
    SlackWebhookNotifier,
    SNSNotifier,
    build_notifiers,
    sns_subject,
)

SECRET_PATH = "/services/T0000/B0000/s3cr3tT0k3n"
TOPIC = "arn:aws:sns:eu-west-1:123456789012:prviz-alerts"

ALERT = Alert(
    kind="failure",
    asset="pr_curves",
    check="freshness_check",
    day="2025-01-07",
    severity="ERROR",
    description="pr_curves for 2025-01-07 did not exist by its deadline <06:00> & more.",
    link="http://127.0.0.1:3000/assets/pr_curves?view=partitions&partition=2025-01-07",
    check_link="http://127.0.0.1:3000/assets/pr_curves?view=checks&checkDetail=freshness_check",
    evaluated_at="2025-01-08T06:01:00+00:00",
    run_id="run-1",
)


def test_alert_log_appends_one_json_line_per_alert(tmp_path):
    notifier = AlertLogNotifier(path=str(tmp_path / "sub" / "alerts.log"))
    notifier.send(ALERT)
    notifier.send(ALERT)
    lines = (tmp_path / "sub" / "alerts.log").read_text().splitlines()
    assert len(lines) == 2
    record = json.loads(lines[0])
    assert record["title"] == "[prviz] ERROR pr_curves 2025-01-07: freshness_check failed"
    assert record["asset"] == "pr_curves" and record["day"] == "2025-01-07"
    assert record["link"] == ALERT.link and record["sent_at"]


def test_alert_log_failure_is_a_notifier_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(NotifierError, match="cannot append to the alert log"):
        AlertLogNotifier(path=str(tmp_path / "file" / "alerts.log")).send(ALERT)


@pytest.fixture
def sns(monkeypatch):
    client = boto3.client(
        "sns", region_name="eu-west-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    monkeypatch.setattr(SNSNotifier, "make_client", lambda self: client)
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def test_sns_publishes_subject_text_and_filterable_attributes(sns):
    sns.add_response(
        "publish",
        {"MessageId": "0f3d4c1e-0000-4000-8000-000000000001"},
        expected_params={
            "TopicArn": TOPIC,
            "Subject": "[prviz] ERROR pr_curves 2025-01-07: freshness_check failed",
            "Message": ALERT.text(),
            "MessageAttributes": {
                "severity": {"DataType": "String", "StringValue": "ERROR"},
                "kind": {"DataType": "String", "StringValue": "failure"},
                "asset": {"DataType": "String", "StringValue": "pr_curves"},
            },
        },
    )
    SNSNotifier(topic_arn=TOPIC).send(ALERT)


def test_sns_errors_become_notifier_errors(sns):
    sns.add_client_error("publish", service_error_code="AuthorizationError", http_status_code=403)
    with pytest.raises(
        NotifierError, match="SNS publish to .*prviz-alerts failed.*AuthorizationError"
    ):
        SNSNotifier(topic_arn=TOPIC).send(ALERT)


def test_sns_rejects_a_malformed_topic_arn():
    with pytest.raises(NotifierError, match="is not an SNS topic ARN"):
        SNSNotifier(topic_arn="prviz-alerts").send(ALERT)


def test_sns_subject_is_short_ascii_one_line():
    subject = sns_subject("[prviz] é\nline " + "x" * 200)
    assert subject.isascii() and "\n" not in subject and len(subject) < 100


class _Webhook(BaseHTTPRequestHandler):
    received: list = []
    status = 200

    def do_POST(self):  # noqa: N802 - the http.server API
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.path, self.headers["Content-Type"], body))
        self.send_response(type(self).status)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):  # keep the server quiet
        pass


@pytest.fixture
def webhook():
    handler = type("Handler", (_Webhook,), {"received": [], "status": 200})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield handler, f"http://127.0.0.1:{server.server_address[1]}{SECRET_PATH}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_slack_posts_the_json_message(webhook, caplog):
    handler, url = webhook
    caplog.set_level(logging.DEBUG)
    SlackWebhookNotifier(webhook_url=url).send(ALERT)
    [(path, content_type, body)] = handler.received
    assert path == SECRET_PATH and content_type.startswith("application/json")
    message = json.loads(body)
    assert message["text"].startswith("[prviz] ERROR pr_curves 2025-01-07: freshness_check failed")
    section = message["blocks"][0]["text"]
    assert section["type"] == "mrkdwn"
    assert "did not exist by its deadline &lt;06:00&gt; &amp; more." in section["text"]
    assert f"<{ALERT.link}|Open pr_curves 2025-01-07 in Dagster>" in section["text"]
    assert message["unfurl_links"] is False
    assert SECRET_PATH not in caplog.text


def test_slack_errors_never_show_the_url(webhook, caplog):
    handler, url = webhook
    handler.status = 500
    caplog.set_level(logging.DEBUG)
    notifier = SlackWebhookNotifier(webhook_url=url)
    with pytest.raises(NotifierError) as raised:
        notifier.send(ALERT)
    assert str(raised.value) == "Slack webhook answered HTTP 500"
    assert raised.value.__cause__ is None and raised.value.__suppress_context__

    with socket.socket() as free:  # a port nobody listens on
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    down = SlackWebhookNotifier(webhook_url=f"http://127.0.0.1:{port}{SECRET_PATH}")
    with pytest.raises(NotifierError, match="Slack webhook unreachable") as raised:
        down.send(ALERT)
    assert "s3cr3t" not in str(raised.value)
    assert "s3cr3t" not in repr(notifier) and "s3cr3t" not in str(notifier)
    assert "s3cr3t" not in caplog.text


def test_slack_refuses_plain_http_off_loopback():
    notifier = SlackWebhookNotifier(webhook_url="http://hooks.example.com" + SECRET_PATH)
    with pytest.raises(NotifierError, match="must be an https:// URL") as raised:
        notifier.send(ALERT)
    assert "s3cr3t" not in str(raised.value)


def test_channels_map_to_resources_with_ids_and_secrets_from_the_environment(monkeypatch):
    monkeypatch.setenv("PRVIZ_SLACK_WEBHOOK_URL", "https://hooks.slack.com" + SECRET_PATH)
    monkeypatch.setenv("PRVIZ_SNS_TOPIC_ARN", TOPIC)
    notifiers = build_notifiers(("log", "sns", "slack"), "/tmp/alerts.log")
    assert sorted(notifiers) == ["alert_log_notifier", "slack_notifier", "sns_notifier"]
    with dg.build_resources(notifiers) as built:
        assert built.slack_notifier.webhook_url == "https://hooks.slack.com" + SECRET_PATH
        assert built.sns_notifier.topic_arn == TOPIC
        assert built.alert_log_notifier.path == "/tmp/alerts.log"
