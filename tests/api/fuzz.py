"""Schemathesis-generated requests for one operation, shared by the runs against fmn's own
OpenAPI document and against FMN 3.4's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode


def fuzz(
    operation: Any,
    examples: int,
    base: str,
    headers: dict[str, str],
    username: str,
    check: Callable[[Any, Any], None],
) -> None:
    """Up to `examples` requests, valid and invalid by the document, reproducible run to run;
    user paths name `username` so the requests get past authorization. `check(case, response)`
    raises on a wrong answer."""

    @given(
        case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE)
        | operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)
    )
    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case: Any) -> None:
        if "username" in (case.path_parameters or {}):
            case.path_parameters["username"] = username
        check(case, case.call(base_url=base, headers=headers, timeout=30))

    run()
