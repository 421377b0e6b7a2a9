"""The embedded default (`fmn run`): the whole system in one process on stand-ins for the real
services — a built-in OIDC provider, a sample directory, an SMTP sink, IRC and Matrix deliveries
kept in a log, and a demo feed replaying real bus messages. Development and demos only."""
