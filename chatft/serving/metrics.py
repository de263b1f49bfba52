"""Prometheus metrics of the server (``prometheus-client``), one registry per app (no global state).

With ``--workers N`` each worker counts in its own process; the supervisor sets ``PROMETHEUS_MULTIPROC_DIR``
before starting them (prometheus-client's multiprocess mode: values live in per-process files there), and
``/metrics`` on any worker reports the sum over all workers.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

__all__ = ["CONTENT_TYPE_LATEST", "ServerMetrics"]

LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServerMetrics:
    """Requests by endpoint and status, latency, batch sizes, queue depth and the model's fingerprint."""

    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        # In multiprocess mode the values go to files whatever the registry; metrics are left unregistered
        # and /metrics collects the files. Otherwise they live in this app's own registry.
        self.registry = None if self.multiprocess else CollectorRegistry()
        reg = self.registry
        self.requests = Counter(
            "chatft_requests", "HTTP requests by endpoint and status", ["endpoint", "status"], registry=reg
        )
        self.latency = Histogram(
            "chatft_request_latency_seconds",
            "Time from request to response, by endpoint",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.batch_size = Histogram(
            "chatft_batch_size", "Texts per batched model call", buckets=BATCH_BUCKETS, registry=reg
        )
        self.texts = Counter("chatft_predicted_texts", "Texts run through the model", registry=reg)
        self.queue_depth = Gauge(
            "chatft_queue_depth", "Texts waiting for the model", registry=reg, multiprocess_mode="livesum"
        )
        self.model = Gauge(
            "chatft_model_info",
            "The loaded model (value 1): backend and fingerprint",
            ["backend", "fingerprint"],
            registry=reg,
            multiprocess_mode="max",
        )

    def observe_batch(self, n: int) -> None:
        self.batch_size.observe(n)
        self.texts.inc(n)

    def render(self) -> bytes:
        if not self.multiprocess:
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
