"""The package list, which pyproject.toml cannot say: every fmn package found, plus the migrations.

They stay at the top of the repository (alembic/, as Alembic lays them out) and ship inside the
package as fmn/migrations, so an installed fmn upgrades its database on its own
(fmn.db.migrations finds them there, or in a checkout)."""

from setuptools import find_packages, setup

setup(
    packages=[
        *find_packages(include=["fmn", "fmn.*"]),
        "fmn.migrations",
        "fmn.migrations.versions",
    ],
    package_dir={"fmn.migrations": "alembic"},
)
