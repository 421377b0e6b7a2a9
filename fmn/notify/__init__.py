"""A notification's text: written once per notification by the consumer (render, from the bus
message), with one set of rules that keeps it safe and the one-line forms that digests and
footers reuse (text). Senders only frame what was written for their protocol."""
