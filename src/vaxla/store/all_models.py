"""Imports every module that defines tables, so ``Base.metadata`` is complete
(Alembic autogenerate and the migration tests rely on it). Each feature with
tables adds its ``models`` module here."""

from vaxla.directory import models as _directory_models  # noqa: F401
from vaxla.store import models  # noqa: F401
from vaxla.store.models import Base

__all__ = ["Base"]
