"""A fedora-messaging consumer that does nothing, timed over N messages (for bench_consumer.py).

Usage: python bench/fm_ceiling.py AMQP_URL N  — prints messages/s on the last line.
"""

from __future__ import annotations

import json
import sys
import time
import uuid

import pika
from fedora_messaging import api, config, exceptions


def main() -> None:
    url, n = sys.argv[1], int(sys.argv[2])
    queue = f"fm-ceiling-{uuid.uuid4().hex[:6]}"
    # Fill the queue first with pika (fedora-messaging's publish is one blocking call each).
    conn = pika.BlockingConnection(pika.URLParameters(url))
    channel = conn.channel()
    channel.queue_declare(queue, auto_delete=True)
    body = json.dumps({"hello": "world"})
    for _ in range(n):
        channel.basic_publish("", queue, body, pika.BasicProperties(headers={}))
    conn.close()

    config.conf.load_config(None)
    config.conf["amqp_url"] = url
    config.conf["qos"] = {"prefetch_size": 0, "prefetch_count": 100}
    state = {"count": 0, "started": time.perf_counter()}

    def callback(message: object) -> None:
        state["count"] += 1
        if state["count"] == n:
            elapsed = time.perf_counter() - state["started"]
            print(n / elapsed, flush=True)
            raise exceptions.HaltConsumer(exit_code=0)

    queues = {queue: {"durable": False, "auto_delete": True, "exclusive": False, "arguments": {}}}
    try:
        api.consume(callback, bindings=[], queues=queues)
    except exceptions.HaltConsumer:
        pass


if __name__ == "__main__":
    main()
