"""LDAP / Active Directory → directory records, with a configurable attribute mapping (R78).

``read_people`` is blocking (ldap3 is); the runner calls it in a thread.
Entries become :class:`PersonRecord` with ``external_id`` taken from the
configured id attribute (``entryUUID``/``objectGUID`` or ``uid``), so the
import plan can match them with the people already in the directory.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from vaxla.directory.errors import InvalidImport, SyncFailed
from vaxla.directory.records import PersonRecord

#: Directory field -> LDAP attribute (the inetOrgPerson defaults; AD: see the docs).
DEFAULT_MAPPING: dict[str, str] = {
    "first_name": "givenName",
    "last_name": "sn",
    "email": "mail",
    "extension": "telephoneNumber",
    "mobile": "mobile",
    "titles": "title",
    "room": "roomNumber",
    "location": "l",
    "units": "ou",
    "username": "uid",
    "visit_address": "street",
}
LIST_FIELDS = {"titles", "tasks", "keywords", "units", "groups"}
PHONE_FIELDS = ("extension", "direct", "mobile")


@dataclass(frozen=True, slots=True)
class LdapConfig:
    url: str
    base_dn: str
    bind_dn: str | None = None
    password: str | None = None
    filter: str = "(objectClass=inetOrgPerson)"
    id_attribute: str = "uid"
    mapping: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_MAPPING))
    unit_prefix: str = ""  # put LDAP units under this path ("Växjö kommun")
    deactivate_missing: bool = True
    page_size: int = 1000
    timeout: float = 10.0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LdapConfig:
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown or "url" not in data or "base_dn" not in data:
            raise InvalidImport("an LDAP source needs url and base_dn", unknown=sorted(unknown))
        mapping = {**DEFAULT_MAPPING, **dict(data.get("mapping") or {})}
        return cls(**{**data, "mapping": {k: v for k, v in mapping.items() if v}})


def _values(attrs: Mapping[str, Any], name: str) -> list[str]:
    """Non-blank values of attribute ``name``; ``attrs`` keyed in lower case."""
    value = attrs.get(name.lower())
    if value is None:
        return []
    out = []
    for v in value if isinstance(value, list) else [value]:
        if v is not None and (text := str(v).strip()):
            out.append(text)
    return out


def entry_to_record(attrs: Mapping[str, Any], config: LdapConfig) -> PersonRecord | None:
    """One LDAP entry's attributes as a record; None when it has no id or no name."""
    attrs = {key.lower(): value for key, value in attrs.items()}  # LDAP names: any case
    ids = _values(attrs, config.id_attribute)
    if not ids:
        return None
    m = config.mapping
    data: dict[str, Any] = {"external_id": ids[0], "phones": []}
    for fld, attr in m.items():
        values = _values(attrs, attr)
        if not values:
            continue
        if fld in PHONE_FIELDS:
            data["phones"] += [{"kind": fld, "number": v} for v in values]
        elif fld == "units":
            prefix = config.unit_prefix.strip("/")
            data["units"] = [f"{prefix}/{v}" if prefix else v for v in values]
        elif fld in LIST_FIELDS:
            data[fld] = values
        elif fld == "visit_address":
            data["addresses"] = [{"kind": "visit", "text": v} for v in values]
        elif fld.startswith("custom."):
            data.setdefault("custom", {})[fld[len("custom.") :]] = values[0]
        else:
            data[fld] = values[0]
    if not data.get("first_name") or not data.get("last_name"):
        return None
    try:
        return PersonRecord.model_validate(data)
    except ValidationError:
        return None


def import_ldap3() -> Any:
    """Import ldap3, whose import trips pyasn1's DeprecationWarning (tagMap/typeMap)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"pyasn1\..*")
        warnings.filterwarnings(
            "ignore", message=r".*(tagMap|typeMap).*", category=DeprecationWarning
        )
        import ldap3

    return ldap3


def read_people(config: LdapConfig) -> list[PersonRecord]:
    """Every person entry under ``base_dn`` (paged), as records."""
    ldap3 = import_ldap3()
    from ldap3.core.exceptions import LDAPException

    attributes = sorted({config.id_attribute, *config.mapping.values()})
    timeout = max(1, int(config.timeout))
    server = ldap3.Server(config.url, connect_timeout=timeout, get_info=ldap3.NONE)
    conn = ldap3.Connection(
        server,
        user=config.bind_dn,
        password=config.password,
        receive_timeout=timeout,
        read_only=True,
    )
    try:
        conn.open()
        if not conn.bind():
            raise SyncFailed(f"LDAP bind failed: {conn.result.get('description')}", url=config.url)
        out: list[PersonRecord] = []
        for entry in conn.extend.standard.paged_search(
            config.base_dn,
            config.filter,
            attributes=attributes,
            paged_size=config.page_size,
            generator=True,
        ):
            if entry.get("type") != "searchResEntry":
                continue
            record = entry_to_record(entry["attributes"], config)
            if record is not None:
                out.append(record)
        return out
    except LDAPException as e:
        raise SyncFailed(f"LDAP: {e}", url=config.url) from e
    finally:
        conn.unbind()
