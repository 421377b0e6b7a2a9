"""The RabbitMQ queue type fmn declares its queues with (bus.queue_type, send_queue.queue_type).

- "default": no `x-queue-type`; the vhost's default type decides (classic on a plain RabbitMQ;
  quorum where the vhost says so, as deploy/rabbitmq/definitions.json does).
- "quorum": replicated over a cluster's nodes (Raft), what survives the loss of a node.
- "classic": classic queues, said explicitly.

Only durable, shared queues take the type: a quorum queue cannot be exclusive, auto-delete or
transient, so the consumer's control queue (one per process, gone with its connection) stays a
classic queue on whichever node the process is connected to.
"""

from __future__ import annotations

import shlex
from typing import Any, Literal

from fmn.transport.base import QueueSpec

QueueType = Literal["default", "quorum", "classic"]


def declared_arguments(spec: QueueSpec, queue_type: QueueType) -> dict[str, Any]:
    """The queue's arguments as declared with this queue type."""
    arguments = dict(spec.arguments)
    if queue_type == "default" or not spec.durable or spec.exclusive or spec.auto_delete:
        return arguments
    arguments["x-queue-type"] = queue_type
    if queue_type == "quorum" and "x-dead-letter-exchange" in arguments:
        # A quorum queue dead-letters at most once by default: a retry item whose delay ended
        # while the send queue's leader was being elected (a node lost) would be dropped.
        # At least once, RabbitMQ republishes with confirms until the target took it; it needs
        # reject-publish overflow (there is no length limit, so it never applies).
        arguments.setdefault("x-dead-letter-strategy", "at-least-once")
        arguments.setdefault("x-overflow", "reject-publish")
    return arguments


class QueueMismatch(Exception):
    """A queue exists on the broker with other arguments than fmn declares (another type, other
    retry delays): RabbitMQ refuses the declaration (PRECONDITION_FAILED). A configuration
    problem in one line, as `fmn` prints it (fmn.cli.ONE_LINE_ERRORS); not a ConfigError, which
    would make the transport import fmn.core."""

    @classmethod
    def of(cls, queue: str, queue_type: QueueType, vhost: str, exc: BaseException) -> QueueMismatch:
        reason = str(exc.args[0] if exc.args else exc)
        return cls(
            f"queue {queue!r} exists on the broker with other arguments than fmn declares "
            f"(queue_type = {queue_type!r}; the broker says: {reason}). Set the setting back, "
            "or, to change the queue: stop what publishes to it, let it drain (a dead-letter "
            "queue: replay its letters, `fmn deadletter`), delete it "
            f"(rabbitmqctl delete_queue -p {shlex.quote(vhost)} {queue}) and start fmn again, "
            "which declares it anew"
        )
