"""The senders: one process per protocol (`fmn sender email|irc|matrix|web`) around one shared loop
(fmn.senders.loop) that retries, de-duplicates, rate-limits, digests and dead-letters."""
