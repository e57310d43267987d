"""`ledger publish-events`: the events publisher as a process of its own.

A process rather than a thread of `ledger consume`: consumers scale out to one per
partition share while the publisher is meant to run once, it is needed even where
nothing is consumed from Kafka (API-only deployments), and a crash or a slow broker on
one side never stalls the other.
"""

from __future__ import annotations

import click

from consumer.publisher import EventPublisher, PublisherSettings
from entrypoints.process import METRICS_PORT_OPTION, ledger_service, serve_metrics, stop_on_signals


@click.command("publish-events")
@METRICS_PORT_OPTION
def publish_events(metrics_port: int | None) -> None:
    """Publish every accepted account event to Kafka (LEDGER_EVENTS_TOPIC) until SIGTERM or Ctrl-C."""
    serve_metrics(metrics_port)
    stop = stop_on_signals()
    settings = PublisherSettings.from_env()
    with ledger_service() as service:
        publisher = EventPublisher(service.commands, settings)
        click.echo(f"ledger: publishing events to {settings.topic} on {settings.bootstrap_servers} "
                   f"from position {publisher.position}", err=True)
        try:
            publisher.run(stop)
        finally:
            publisher.close()
