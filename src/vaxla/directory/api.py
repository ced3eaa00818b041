"""REST routes of the directory (``/api/v1/directory``) and diversions (``/api/v1/diversions``).

Every route needs a principal (API token now, signed-in person later); what
it may see and change follows its access level (R90, see ``access.py``).
Errors are ``{"error_id", "message", "details"}`` with the ids in
``errors.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import Field

from vaxla.api.auth import Principal
from vaxla.directory import schemas as sc
from vaxla.directory.admin import DirectoryAdmin, need_admin
from vaxla.directory.diversion import DiversionRequest, RuleRequest
from vaxla.directory.errors import UnitNotFound
from vaxla.directory.search import SearchQuery
from vaxla.directory.service import DirectoryService
from vaxla.directory.sync.runner import SyncRunner
from vaxla.pbx.forwarding_api import ActiveForwarding, shown_status
from vaxla.pbx.forwarding_store import active_forwarding

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid API token (error_id unauthorized)"},
    403: {
        "description": "The access level does not allow it (directory-forbidden, "
        "field-not-editable)"
    },
    404: {"description": "Not found (person-not-found, unit-not-found, ...)"},
    409: {"description": "Conflict (directory-conflict, unit-not-empty)"},
    422: {"description": "Invalid input (invalid-input, invalid-directory-input, ...)"},
}

Format = Literal["csv", "xml", "json"]
MEDIA = {"csv": "text/csv; charset=utf-8", "xml": "application/xml", "json": "application/json"}


class PhoneStatusWithForwarding(sc.PhoneStatusOut):
    forwarding: list[ActiveForwarding] | None = Field(
        None, description="Call forwarding in force (left out when none), R83"
    )


class PersonWithStatusOut(sc.PersonOut):
    phone_status: list[PhoneStatusWithForwarding] | None = None  # type: ignore[assignment]


class SearchWithStatusOut(sc.SearchOut):
    items: list[PersonWithStatusOut]  # type: ignore[assignment]


class ExtensionStatusWithForwardingOut(sc.ExtensionStatusOut):
    forwarding: list[ActiveForwarding] = Field(
        default_factory=list, description="Call forwarding in force, unconditional first"
    )


def _diversion_request(body: sc.DiversionIn) -> DiversionRequest:
    return DiversionRequest(
        reason=body.reason,
        return_at=body.return_at,
        message=body.message,
        target_kind=body.target_kind,
        target_value=body.target_value,
        valid_from=body.valid_from,
        valid_until=body.valid_until,
    )


def build_router(
    service: DirectoryService,
    principal: Callable[..., Awaitable[Principal]],
    sync: SyncRunner,
) -> APIRouter:
    admin = DirectoryAdmin(service)
    router = APIRouter(responses=ERRORS)
    who = Depends(principal)
    d = "/api/v1/directory"

    async def with_forwarding(people: list[dict[str, Any]], p: Principal) -> None:
        """Put each extension's call forwarding into the phone status shown (R83)."""
        statuses = [st for person in people for st in person.get("phone_status") or []]
        found = await active_forwarding(service.db, (st["extension"] for st in statuses))
        for st in statuses:
            rules = found.get(st["extension"])
            if rules:
                st["forwarding"] = shown_status(p, st["extension"], rules)

    # ---------------------------------------------------------------- people

    @router.get(
        f"{d}/people",
        response_model=SearchWithStatusOut,
        tags=["directory"],
        response_model_exclude_unset=True,
    )
    async def search_people(
        q: str = Query("", description="Free text over every field you may see"),
        first_name: str = "",
        last_name: str = "",
        extension: str = "",
        unit: int | None = Query(None, description="A unit id: searches it and its subtree"),
        room: str = "",
        location: str = "",
        task: str = "",
        mobile: str = "",
        email: str = "",
        include_inactive: bool = False,
        limit: int = Query(20, ge=1, le=200),
        p: Principal = who,
    ) -> dict[str, Any]:
        """Search: exact > prefix > phonetic > fuzzy names, then other fields (R46, R84, R85)."""
        query = SearchQuery(
            text=q,
            first_name=first_name,
            last_name=last_name,
            extension=extension,
            unit_id=unit,
            room=room,
            location=location,
            task=task,
            mobile=mobile,
            email=email,
            include_inactive=include_inactive,
            limit=limit,
        )
        found = await service.search(query, p)
        await with_forwarding(found["items"], p)
        return found

    @router.post(
        f"{d}/people",
        response_model=sc.PersonOut,
        status_code=201,
        tags=["directory"],
        response_model_exclude_unset=True,
    )
    async def create_person(body: sc.PersonIn, p: Principal = who) -> dict[str, Any]:
        return await service.create(body, p)

    @router.get(
        f"{d}/people/{{person_id}}",
        response_model=PersonWithStatusOut,
        tags=["directory"],
        response_model_exclude_unset=True,
    )
    async def get_person(person_id: int, p: Principal = who) -> dict[str, Any]:
        person = await service.get(person_id, p)
        await with_forwarding([person], p)
        return person

    @router.patch(
        f"{d}/people/{{person_id}}",
        response_model=sc.PersonOut,
        tags=["directory"],
        response_model_exclude_unset=True,
    )
    async def update_person(
        person_id: int, body: sc.PersonPatch, p: Principal = who
    ) -> dict[str, Any]:
        """Change the fields given; each needs its edit level (field-not-editable)."""
        return await service.update(person_id, body.model_dump(exclude_unset=True), p)

    @router.delete(
        f"{d}/people/{{person_id}}",
        response_model=sc.PersonOut,
        tags=["directory"],
        response_model_exclude_unset=True,
    )
    async def deactivate_person(person_id: int, p: Principal = who) -> dict[str, Any]:
        """Deactivate (people are never deleted: their history stays)."""
        return await service.deactivate(person_id, p)

    @router.put(
        f"{d}/people/by-external-id/{{external_id}}",
        response_model=sc.PersonOut,
        tags=["directory import/export"],
        response_model_exclude_unset=True,
    )
    async def upsert_person(
        external_id: str, body: sc.PersonIn, response: Response, p: Principal = who
    ) -> dict[str, Any]:
        """Real-time import: one call per change, keyed by the source's id (R86)."""
        view, created = await service.upsert_external(external_id, body, p)
        response.status_code = 201 if created else 200
        return view

    @router.get(
        f"{d}/people/{{person_id}}/messages",
        response_model=list[sc.MessageOut],
        tags=["diversions"],
    )
    async def list_messages(person_id: int, p: Principal = who) -> list[Any]:
        return list(await service.messages_for(person_id, p))

    @router.post(
        f"{d}/people/{{person_id}}/messages",
        response_model=sc.MessageOut,
        status_code=201,
        tags=["diversions"],
    )
    async def leave_message(person_id: int, body: sc.MessageIn, p: Principal = who) -> Any:
        """Leave a message for the person (R46.21); kept for SMS/e-mail delivery."""
        return await service.leave_message(
            person_id,
            body.text,
            p,
            caller_name=body.caller_name,
            caller_number=body.caller_number,
            channel=body.channel,
        )

    @router.get(
        f"{d}/extensions/{{number}}/status",
        response_model=ExtensionStatusWithForwardingOut,
        tags=["diversions"],
    )
    async def extension_status(number: str, p: Principal = who) -> dict[str, Any]:
        """Who is on the extension, their diversions, registered or not, and
        its call forwarding (R83)."""
        status = await service.extension_status(number, p)
        rules = (await active_forwarding(service.db, [number])).get(number, ())
        status["forwarding"] = shown_status(p, number, rules)
        return status

    # ---------------------------------------------------------------- organisation

    @router.get(f"{d}/units", response_model=list[sc.UnitOut], tags=["directory admin"])
    async def list_units(_: Principal = who) -> list[dict[str, Any]]:
        return await admin.units()

    @router.post(f"{d}/units", response_model=sc.UnitOut, status_code=201, tags=["directory admin"])
    async def create_unit(body: sc.UnitIn, p: Principal = who) -> dict[str, Any]:
        return await admin.create_unit(body.name, body.parent_id, p)

    @router.patch(f"{d}/units/{{unit_id}}", response_model=sc.UnitOut, tags=["directory admin"])
    async def rename_unit(unit_id: int, body: sc.UnitPatch, p: Principal = who) -> dict[str, Any]:
        if body.name is None:
            for unit in await admin.units():
                if unit["id"] == unit_id:
                    return unit
            raise UnitNotFound(f"no unit {unit_id}", id=unit_id)
        return await admin.rename_unit(unit_id, body.name, p)

    @router.delete(f"{d}/units/{{unit_id}}", status_code=204, tags=["directory admin"])
    async def delete_unit(unit_id: int, p: Principal = who) -> Response:
        await admin.delete_unit(unit_id, p)
        return Response(status_code=204)

    @router.get(f"{d}/groups", response_model=list[sc.GroupOut], tags=["directory admin"])
    async def list_groups(_: Principal = who) -> list[dict[str, Any]]:
        return await admin.groups()

    @router.post(
        f"{d}/groups", response_model=sc.GroupOut, status_code=201, tags=["directory admin"]
    )
    async def create_group(body: sc.GroupIn, p: Principal = who) -> dict[str, Any]:
        return await admin.create_group(body.name, body.description, p)

    @router.get(f"{d}/fields", response_model=list[sc.FieldOut], tags=["directory admin"])
    async def list_fields(_: Principal = who) -> list[dict[str, Any]]:
        return await admin.fields()

    @router.post(
        f"{d}/fields", response_model=sc.FieldOut, status_code=201, tags=["directory admin"]
    )
    async def create_field(body: sc.FieldIn, p: Principal = who) -> dict[str, Any]:
        """Add a custom field (R79): typed, searchable, ordered by position."""
        return await admin.create_field(body.model_dump(), p)

    @router.get(f"{d}/access", response_model=list[sc.AccessOut], tags=["directory admin"])
    async def list_access(_: Principal = who) -> list[dict[str, Any]]:
        """Levels: 1 public, 2 all fields, 3 edit, 4 admin (R90)."""
        return await admin.access()

    @router.put(
        f"{d}/access/{{field}}", response_model=list[sc.AccessOut], tags=["directory admin"]
    )
    async def set_access(field: str, body: sc.AccessIn, p: Principal = who) -> list[dict[str, Any]]:
        need_admin(p)
        await service.set_field_access(field, body.view_level, body.edit_level, p)
        return await admin.access()

    @router.get(f"{d}/audit", response_model=list[sc.AuditOut], tags=["directory admin"])
    async def list_audit(
        entity: str | None = None,
        entity_id: str | None = None,
        limit: int = Query(100, ge=1, le=1000),
        p: Principal = who,
    ) -> list[Any]:
        return list(await admin.audit(p, entity, entity_id, limit))

    # ---------------------------------------------------------------- import/export

    @router.post(
        f"{d}/import",
        response_model=sc.ImportOut,
        tags=["directory import/export"],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {m: {"schema": {"type": "string"}} for m in MEDIA.values()},
            }
        },
    )
    async def import_batch(
        request: Request,
        format: Format = "csv",
        dry_run: bool = False,
        deactivate_missing: bool = False,
        p: Principal = who,
    ) -> dict[str, Any]:
        """Batch import by external_id (docs/directory-formats.md); dry_run shows the diff."""
        text = (await request.body()).decode("utf-8")
        return await service.import_text(
            format, text, p, dry_run=dry_run, deactivate_missing=deactivate_missing
        )

    @router.get(
        f"{d}/export",
        tags=["directory import/export"],
        responses={200: {"content": {m: {} for m in MEDIA.values()}}},
    )
    async def export(
        format: Format = "csv",
        include_inactive: bool = True,
        p: Principal = who,
    ) -> Response:
        body = await service.export(format, p, include_inactive)
        return Response(body, media_type=MEDIA[format])

    @router.get(
        f"{d}/sync-sources", response_model=list[sc.SyncSourceOut], tags=["directory import/export"]
    )
    async def list_sources(p: Principal = who) -> list[dict[str, Any]]:
        return await sync.sources(p)

    @router.post(
        f"{d}/sync-sources",
        response_model=sc.SyncSourceOut,
        status_code=201,
        tags=["directory import/export"],
    )
    async def add_source(body: sc.SyncSourceIn, p: Principal = who) -> dict[str, Any]:
        """A periodic LDAP/AD or calendar sync (R78, R41); see docs/directory-formats.md."""
        return await sync.add(body.model_dump(), p)

    @router.post(f"{d}/sync-sources/{{source_id}}/run", tags=["directory import/export"])
    async def run_source(source_id: int, dry_run: bool = False, p: Principal = who) -> Any:
        """Run a sync now; with dry_run, only show what it would change."""
        return await sync.run(source_id, p, dry_run=dry_run)

    # ---------------------------------------------------------------- diversions

    v = "/api/v1/diversions"

    @router.get(f"{v}/reasons", response_model=list[sc.ReasonOut], tags=["diversions"])
    async def list_reasons(_: Principal = who) -> list[dict[str, Any]]:
        return await admin.reasons()

    @router.post(f"{v}/reasons", response_model=sc.ReasonOut, status_code=201, tags=["diversions"])
    async def create_reason(body: sc.ReasonIn, p: Principal = who) -> dict[str, Any]:
        return await admin.create_reason(body.model_dump(), p)

    @router.patch(f"{v}/reasons/{{code}}", response_model=sc.ReasonOut, tags=["diversions"])
    async def update_reason(code: str, body: sc.ReasonPatch, p: Principal = who) -> dict[str, Any]:
        return await admin.update_reason(code, body.model_dump(exclude_unset=True), p)

    @router.post(f"{v}/rules", response_model=sc.RuleOut, status_code=201, tags=["diversions"])
    async def add_rule(body: sc.RuleIn, p: Principal = who) -> dict[str, Any]:
        """A weekly absence or working-hours rule for a person or group (R46.25, R80)."""
        return await service.add_rule(
            RuleRequest(
                kind=body.kind,
                weekdays=body.weekdays,
                start=body.start,
                end=body.end,
                reason=body.reason,
                message=body.message,
                person_id=body.person_id,
                group_id=body.group_id,
                valid_until=body.valid_until,
            ),
            p,
        )

    @router.delete(f"{v}/rules/{{rule_id}}", status_code=204, tags=["diversions"])
    async def end_rule(rule_id: int, p: Principal = who) -> Response:
        await service.end_rule(rule_id, p)
        return Response(status_code=204)

    @router.put(
        f"{v}/groups/{{group_id}}", response_model=sc.GroupDiversionOut, tags=["diversions"]
    )
    async def divert_group(group_id: int, body: sc.DiversionIn, p: Principal = who) -> Any:
        """A common diversion for every member of the group at once (R46.26, R67)."""
        return await service.set_group_diversion(group_id, _diversion_request(body), p)

    @router.delete(
        f"{v}/groups/{{group_id}}", response_model=sc.GroupDiversionOut, tags=["diversions"]
    )
    async def clear_group(group_id: int, p: Principal = who) -> Any:
        return await service.clear_group_diversion(group_id, p)

    @router.get(f"{v}/{{person_id}}", response_model=sc.PersonDiversionOut, tags=["diversions"])
    async def get_diversion(person_id: int, p: Principal = who) -> Any:
        return await service.diversion(person_id, p)

    @router.put(f"{v}/{{person_id}}", response_model=sc.PersonDiversionOut, tags=["diversions"])
    async def set_diversion(person_id: int, body: sc.DiversionIn, p: Principal = who) -> Any:
        """Set or change: your own, or (operator) anyone's (R46.23). Only this person is
        diverted, others on a shared extension are not (R46.24)."""
        return await service.set_diversion(person_id, _diversion_request(body), p)

    @router.delete(f"{v}/{{person_id}}", response_model=sc.PersonDiversionOut, tags=["diversions"])
    async def clear_diversion(person_id: int, p: Principal = who) -> Any:
        return await service.clear_diversion(person_id, p)

    @router.get(
        f"{v}/{{person_id}}/history",
        response_model=list[sc.DiversionHistoryOut],
        tags=["diversions"],
    )
    async def diversion_history(person_id: int, p: Principal = who) -> Any:
        return await service.diversion_history(person_id, p)

    return router
