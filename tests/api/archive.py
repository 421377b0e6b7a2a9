"""Archived messages for preview tests and the benchmark: real Koji build messages (from the
corpus) with owner, package and time changed, written by the consumer's own archive code."""

from __future__ import annotations

import copy
import datetime as dt
import json
import uuid
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from fmn.archive import archive_messages
from fmn.rules.incoming import parse_message

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
KOJI = CORPUS / "schema-tests-koji-fedoramessaging-messages.jsonl"
BUILD_TOPIC = "buildsys.build.state.change"


@cache
def _koji_build_template() -> dict[str, Any]:
    for line in KOJI.read_text().splitlines():
        data: dict[str, Any] = json.loads(line)
        if data["topic"] == BUILD_TOPIC:
            return data
    raise LookupError(f"no {BUILD_TOPIC} message in {KOJI}")


def koji_build(owner: str, package: str, sent_at: dt.datetime) -> dict[str, Any]:
    """A serialized bus message ({id, topic, headers, body}): `owner` built `package`."""
    template = _koji_build_template()
    body = copy.deepcopy(template["body"])
    body.update(owner=owner, name=package)
    return {
        "id": str(uuid.uuid4()),
        "topic": f"org.fedoraproject.prod.{BUILD_TOPIC}",
        "headers": {**template["headers"], "sent-at": sent_at.isoformat()},
        "body": body,
    }


async def archive(session: AsyncSession, messages: list[dict[str, Any]]) -> None:
    await archive_messages(session, [(parse_message(m), m, None) for m in messages])
    await session.commit()
