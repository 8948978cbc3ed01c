"""Alertmanager's config, generated: routes by severity, a critical alert silencing the warnings
of the same service, and one receiver, the inbox a developer reads on the laptop.

The inbox is a webhook into the service that declares `alert_inbox` (Vector's `http_server`
source), which writes each notification into Loki as a log line with the label
`service="alertmanager"`: Grafana shows them beside the logs, and Alertmanager's own UI
(published on 127.0.0.1) lists what is firing and takes silences.

Keys: prometheus/alertmanager@v0.27.0:config/config.go (Route, InhibitRule, WebhookConfig);
all known to Debian's 0.25 too, whose amtool checks the file the plan ships."""

from __future__ import annotations

from collections.abc import Sequence

import yaml

from devstack.model import Service

SEVERITIES = ("critical", "warning")  # every rule's `severity` label is one of these
# How long a new alert group waits for more alerts before the first notification, per severity.
GROUP_WAIT = {"critical": "10s", "warning": "30s"}
GROUP_INTERVAL = "1m"
REPEAT_INTERVAL = {"critical": "1h", "warning": "4h"}
INBOX_PATH = "/alerts"


def inbox_url(selected: Sequence[Service]) -> str:
    inboxes = [s for s in selected if s.alert_inbox is not None]
    if len(inboxes) != 1:
        raise ValueError(f"exactly one service takes Alertmanager's webhooks, found {[s.name for s in inboxes]}")
    (inbox,) = inboxes
    assert inbox.alert_inbox is not None
    return f"http://{inbox.name}:{inbox.port(inbox.alert_inbox).container}{INBOX_PATH}"


def alertmanager_yml(selected: Sequence[Service]) -> str:
    url = inbox_url(selected)
    receivers = [
        {"name": severity, "webhook_configs": [{"url": url, "send_resolved": True}]} for severity in SEVERITIES
    ]
    routes = [
        {
            "receiver": severity,
            "matchers": [f'severity="{severity}"'],
            "group_wait": GROUP_WAIT[severity],
            "repeat_interval": REPEAT_INTERVAL[severity],
        }
        for severity in SEVERITIES
    ]
    config = {
        "route": {
            # An alert without a known severity still reaches the inbox, as a warning.
            "receiver": "warning",
            "group_by": ["alertname", "service"],
            "group_wait": GROUP_WAIT["warning"],
            # A group's next notification (a new alert in it, or its resolution) waits this long:
            # short, so a fixed problem shows as resolved on the laptop within a minute or two.
            "group_interval": GROUP_INTERVAL,
            "repeat_interval": REPEAT_INTERVAL["warning"],
            "routes": routes,
        },
        "inhibit_rules": [
            {
                "source_matchers": ['severity="critical"'],
                "target_matchers": ['severity="warning"'],
                "equal": ["service"],
            }
        ],
        "receivers": receivers,
    }
    header = "# devstack: generated (devstack/alerting.py); do not edit.\n"
    return header + yaml.safe_dump(config, sort_keys=False, default_flow_style=False)
