"""Large lists of ids as one bound parameter (not one per element).

``column.in_(list)`` costs SQLAlchemy work per element; search filters by a
thousand candidate ids at a time, so the list goes in as one value instead:
a JSON array read with ``json_each`` on SQLite, an integer array unnested on
PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Collection

from sqlalchemy import ColumnElement, Integer, String, bindparam, func, literal_column, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import InstrumentedAttribute, Session


def ids_in(
    s: Session, column: InstrumentedAttribute[int], ids: Collection[int]
) -> ColumnElement[bool]:
    """``column IN ids`` for the session's database, with the ids as one parameter."""
    values = [int(i) for i in ids]
    if s.get_bind().dialect.name == "postgresql":
        # IN (SELECT unnest(array)): planned as index probes; "= ANY(array)" as a scan.
        return column.in_(select(func.unnest(bindparam(None, values, type_=ARRAY(Integer)))))
    each = func.json_each(bindparam(None, json.dumps(values), type_=String()))
    return column.in_(select(literal_column("value")).select_from(each))
