"""The one health-check system. Readiness (`/healthz/ready`) and the admins' status page
(fmn.api.health, from inside an API process) and `fmn status` (fmn.health.status, from outside,
through the settings) all report `Check`s and run their probes through `run_probes`: each
within its time limit, a failure reported instead of raised. They share the probes of the parts
they see alike (the database with its schema, the send queues); what only one of them can see
(the API's announcer and cached directory; from outside, the bus queue, the directory's
services and the API itself) is probed where it is.
"""

from fmn.health.probes import Check, State, run_probes, safe_url

__all__ = ["Check", "State", "run_probes", "safe_url"]
