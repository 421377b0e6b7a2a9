"""Running Alembic from code: `fmn db upgrade`, readiness checks and tests use this.

The migrations live in alembic/ at the top of a checkout and ship inside the wheel as
fmn/migrations (pyproject.toml maps one onto the other): an installed fmn finds them in the
package, a checkout (or an editable install) beside it."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

PACKAGE = Path(__file__).resolve().parent.parent
INSTALLED = PACKAGE / "migrations"
CHECKOUT = PACKAGE.parent / "alembic"


def script_location() -> Path:
    """Where the migration scripts are: in the installed package, else in the checkout."""
    for candidate in (INSTALLED, CHECKOUT):
        if (candidate / "env.py").is_file():
            return candidate
    raise FileNotFoundError(f"no migrations in {INSTALLED} or {CHECKOUT}")


def alembic_config(database_url: str | None = None) -> Config:
    location = script_location()
    # alembic.ini (a checkout's) only names the revision file template, for `alembic revision`.
    ini = location.parent / "alembic.ini"
    cfg = Config(str(ini)) if location == CHECKOUT and ini.is_file() else Config()
    cfg.set_main_option("script_location", str(location))
    if database_url:
        cfg.attributes["database_url"] = database_url
    return cfg


def upgrade(database_url: str | None = None, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(revision: str, database_url: str | None = None) -> None:
    command.downgrade(alembic_config(database_url), revision)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()
