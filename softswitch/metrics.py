"""Prometheus exposition of the switch's counters.

The hot path bumps plain integers (``SipCounters``); this collector turns them into metric
families when Prometheus scrapes, so a message costs no lock and no client-library call.
Names follow Prometheus conventions: base units, ``_total`` counters, bounded labels.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from reporting.prometheus import CmsCollector

if TYPE_CHECKING:
    from softswitch.app import Switch

__all__ = ["SwitchCollector", "make_registry"]

# Methods get their own label value; anything else is folded so labels stay bounded.
KNOWN_METHODS = frozenset({
    "INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "REGISTER", "INFO", "PRACK", "SUBSCRIBE",
    "NOTIFY", "UPDATE", "MESSAGE", "REFER", "PUBLISH",
})


class SwitchCollector(Collector):
    def __init__(self, switch: Callable[[], Switch | None]) -> None:
        self._switch = switch

    def collect(self) -> Iterator[Metric]:
        sw = self._switch()
        if sw is None or sw.core is None:
            return
        c = sw.core.counters
        req = CounterMetricFamily(
            "softswitch_sip_requests", "SIP requests received, by method", labels=["method"]
        )
        other = 0
        for method, n in sorted(c.requests.items()):
            if method in KNOWN_METHODS:
                req.add_metric([method], n)
            else:
                other += n
        if other:
            req.add_metric(["other"], other)
        yield req
        sent = CounterMetricFamily(
            "softswitch_sip_responses_sent", "SIP responses sent, by status class",
            labels=["class"],
        )
        for cls, n in sorted(c.responses_sent.items()):
            sent.add_metric([cls], n)
        yield sent
        recv = CounterMetricFamily(
            "softswitch_sip_responses_received", "SIP responses received, by status class",
            labels=["class"],
        )
        for cls, n in sorted(c.responses_received.items()):
            recv.add_metric([cls], n)
        yield recv
        perr = CounterMetricFamily(
            "softswitch_sip_parse_errors",
            "Malformed or refused SIP input, by the status it was answered with",
            labels=["status"],
        )
        for status, n in sorted(c.parse_errors.items()):
            perr.add_metric([str(status)], n)
        yield perr
        yield CounterMetricFamily(
            "softswitch_sip_dropped", "SIP input dropped without an answer", value=c.dropped
        )
        if sw.transports is not None:
            yield CounterMetricFamily(
                "softswitch_sip_unsendable",
                "SIP messages not sent: no listener for the transport, a closed TLS "
                "connection, or a TCP peer that could not be reached",
                value=sw.transports.sockets_dropped,
            )
        yield CounterMetricFamily(
            "softswitch_auth_failures", "Failed digest authentications", value=c.auth_failures
        )
        yield CounterMetricFamily(
            "softswitch_auth_challenges", "Digest challenges sent", value=c.auth_challenges
        )
        yield CounterMetricFamily(
            "softswitch_auth_blocked_requests",
            "Requests refused because their source address is blocked", value=c.blocked,
        )
        yield CounterMetricFamily(
            "softswitch_registrations", "Successful REGISTER updates", value=c.registrations
        )
        yield CounterMetricFamily(
            "softswitch_unregistrations", "REGISTER requests that removed bindings",
            value=c.unregistrations,
        )
        yield GaugeMetricFamily(
            "softswitch_registered_contacts", "Contacts bound now", value=len(sw.location)
        )
        yield GaugeMetricFamily(
            "softswitch_registered_users", "Users with at least one contact bound now",
            value=sum(1 for _ in sw.location.aors()),
        )
        yield GaugeMetricFamily(
            "softswitch_directory_users", "Users in the directory", value=len(sw.directory)
        )
        yield GaugeMetricFamily(
            "softswitch_sip_transactions", "SIP transactions in the table now",
            value=len(sw.core.transactions),
        )
        yield GaugeMetricFamily(
            "softswitch_auth_blocked_addresses", "Source addresses blocked now",
            value=len(sw.throttle.blocked()),
        )
        reloads = CounterMetricFamily(
            "softswitch_config_reloads", "Configuration reloads, by result", labels=["result"]
        )
        reloads.add_metric(["applied"], sw.reloads_applied)
        reloads.add_metric(["refused"], sw.reloads_refused)
        yield reloads
        yield GaugeMetricFamily(
            "softswitch_start_time_seconds", "Unix time the switch started", value=sw.started_at
        )


def make_registry(switch: Callable[[], Switch | None]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SwitchCollector(switch))

    # The CMS figures (queues, agents, alerts) of the embedded reporting service, if it runs.
    def snapshot() -> dict[str, Any] | None:
        sw = switch()
        service = getattr(sw, "reporting", None) if sw is not None else None
        return service.snapshot(time.time()) if service is not None else None

    registry.register(CmsCollector(snapshot))
    return registry
