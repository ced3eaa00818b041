"""Imports every module that defines tables, so ``Base.metadata`` is complete
(Alembic autogenerate and the migration tests rely on it). Each feature with
tables adds its ``models`` module here."""

from vaxla.auth import models as _auth_models  # noqa: F401
from vaxla.directory import models as _directory_models  # noqa: F401
from vaxla.media import models as _media_models  # noqa: F401
from vaxla.store import forwarding_models as _forwarding_models  # noqa: F401
from vaxla.store import models  # noqa: F401
from vaxla.store.models import Base

__all__ = ["Base"]
