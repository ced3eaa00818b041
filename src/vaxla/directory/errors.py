"""Refusals of the directory, each with a stable ``error_id``."""

from __future__ import annotations

from vaxla.errors import Conflict, InvalidInput, NotFound, VaxlaError


class PersonNotFound(NotFound):
    error_id = "person-not-found"


class UnitNotFound(NotFound):
    error_id = "unit-not-found"


class GroupNotFound(NotFound):
    error_id = "group-not-found"


class ReasonNotFound(NotFound):
    error_id = "diversion-reason-not-found"


class FieldNotFound(NotFound):
    error_id = "custom-field-not-found"


class RuleNotFound(NotFound):
    error_id = "absence-rule-not-found"


class SyncSourceNotFound(NotFound):
    error_id = "sync-source-not-found"


class DuplicateEntry(Conflict):
    error_id = "directory-conflict"


class UnitHasChildren(Conflict):
    error_id = "unit-not-empty"


class InvalidDirectoryInput(InvalidInput):
    error_id = "invalid-directory-input"


class InvalidCustomValue(InvalidInput):
    error_id = "invalid-custom-value"


class InvalidImport(InvalidInput):
    error_id = "invalid-import"


class FieldNotEditable(VaxlaError):
    status = 403
    error_id = "field-not-editable"


class NotAllowed(VaxlaError):
    status = 403
    error_id = "directory-forbidden"


class SyncFailed(VaxlaError):
    status = 502
    error_id = "sync-failed"
