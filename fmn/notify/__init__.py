"""A notification's text: written once per notification (render, in the consumer, from the bus
message; lines, the one-line forms senders reuse for digests and footers), kept safe by one set
of rules (sanitize). Senders only frame what was written for their protocol."""
