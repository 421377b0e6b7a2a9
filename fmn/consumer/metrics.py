"""Prometheus metrics of the consumer."""

from prometheus_client import Counter, Gauge, Histogram

MESSAGES = Counter("fmn_consumer_messages_total", "Bus messages received", ["outcome"])
MATCHED = Counter("fmn_consumer_matched_total", "Bus messages that produced work items")
NOTIFICATIONS = Counter("fmn_consumer_notifications_total", "Work items published", ["protocol"])
PUBLISH_SECONDS = Histogram(
    "fmn_consumer_publish_seconds",
    "Time to publish a batch of work items until every confirm arrived",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
BATCH_SECONDS = Histogram(
    "fmn_consumer_batch_seconds", "Time to handle a batch of bus messages, receipt to ack"
)
INDEX_RULES = Gauge("fmn_consumer_index_rules", "Rules in the rule index")
INDEX_BUILD_SECONDS = Gauge("fmn_consumer_index_build_seconds", "Duration of the last index build")
WAITING = Gauge(
    "fmn_consumer_waiting", "1 while messages wait for the directory or the database to recover"
)
