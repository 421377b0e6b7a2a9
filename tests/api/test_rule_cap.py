"""The rules-per-user cap under concurrent creations, on PostgreSQL and on SQLite (`fmn run`),
each request in its own transaction on its own connection."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from fmn.api.app import create_app
from fmn.core.settings import Settings
from fmn.db import migrations, models
from fmn.db.session import make_engine, make_sessionmaker
from fmn.directory.local import DirectoryData, LocalDirectory
from tests.api.conftest import DIRECTORY, rule_body
from tests.factories import make_rule
from tests.harness import services

API = "/api/v1/users/alice/rules"
CAP = 500


@pytest.fixture(params=["postgresql", "sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated database of its own: the requests commit for real."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'fmn.db'}"
        migrations.upgrade(url)
        yield url
        return
    name = f"{services.pg_database_name()}_cap"
    url = services.recreate_database(name)
    migrations.upgrade(url)
    yield url
    services.drop_database(name)


async def test_concurrent_creations_end_exactly_at_the_cap(
    api_settings: Settings, database_url: str, auth: Any, redis_client: Any
) -> None:
    settings = api_settings.model_copy(
        update={"database": api_settings.database.model_copy(update={"url": database_url})}
    )
    engine = make_engine(settings.database)
    sessionmaker = make_sessionmaker(engine)
    directory = LocalDirectory(DirectoryData.model_validate(json.loads(json.dumps(DIRECTORY))))
    app = create_app(settings, sessionmaker=sessionmaker, directory=directory)
    headers = auth("alice")
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://test", timeout=120
            ) as http,
        ):
            assert (await http.get("/api/v1/users/me", headers=headers)).status_code == 200
            async with sessionmaker() as session:
                user = await session.scalar(select(models.User).where(models.User.name == "alice"))
                assert user is not None
                for _ in range(CAP - 10 - 1):  # and the default rule: 490
                    await make_rule(session, user)
                await session.commit()
            answers = await asyncio.gather(
                *(http.post(API, headers=headers, json=rule_body()) for _ in range(60))
            )
        statuses = [a.status_code for a in answers]
        assert statuses.count(200) == 10, [a.text for a in answers if a.status_code != 422]
        assert statuses.count(422) == 50, statuses
        refused = next(a for a in answers if a.status_code == 422)
        assert f"at most {CAP} rules" in refused.json()["detail"][0]["msg"]
        async with sessionmaker() as session:
            count = await session.scalar(
                select(func.count()).select_from(models.Rule).where(models.Rule.user_id == user.id)
            )
        assert count == CAP
    finally:
        await engine.dispose()
