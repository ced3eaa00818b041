"""Prometheus metrics of one Växla process (own registry: tests run several)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.messages_in = Counter(
            "vaxla_sip_messages_received",
            "SIP messages received, by method and status (empty for requests)",
            ["method", "status"],
            registry=r,
        )
        self.messages_out = Counter(
            "vaxla_sip_messages_sent",
            "SIP messages sent, by method and status (empty for requests)",
            ["method", "status"],
            registry=r,
        )
        self.parse_errors = Counter(
            "vaxla_sip_parse_errors", "SIP messages that failed to parse or validate", registry=r
        )
        self.registrations = Gauge(
            "vaxla_registrations", "Registered contacts (bindings)", registry=r
        )
        self.register_outcomes = Counter(
            "vaxla_register_requests",
            "REGISTER requests by outcome",
            ["outcome"],
            registry=r,
        )
        self.active_calls = Gauge("vaxla_active_calls", "Calls in progress", registry=r)
        self.calls = Counter("vaxla_calls", "Finished calls by result", ["result"], registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
