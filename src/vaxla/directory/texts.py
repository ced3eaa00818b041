"""Every user-facing text of the directory, Swedish first, English beside it.

The web issue brings one translation table for the whole product; until then
the directory keeps its texts here, in one place, keyed by a stable code.
"""

from __future__ import annotations

from typing import Literal

Language = Literal["sv", "en"]

#: The diversion reasons seeded by the migration ``0002`` (code, Swedish, English).
#: Administrators may add, rename or retire reasons through the API.
DEFAULT_REASONS: tuple[tuple[str, str, str], ...] = (
    ("lunch", "Lunch", "Lunch"),
    ("meeting", "Möte", "Meeting"),
    ("course", "Kurs", "Course"),
    ("vacation", "Semester", "Vacation"),
    ("business-trip", "Tjänsteresa", "Business trip"),
    ("gone-for-the-day", "Gått för dagen", "Gone for the day"),
    ("sick", "Sjuk", "Sick"),
    ("off", "Ledig", "Off"),
)

TEXTS: dict[str, dict[Language, str]] = {
    "back-at": {"sv": "tillbaka {time}", "en": "back at {time}"},
    "back-on": {"sv": "tillbaka {date} {time}", "en": "back on {date} at {time}"},
    "target-operator": {"sv": "hänvisas till växeln", "en": "referred to the operator"},
    "target-colleague": {"sv": "hänvisas till {value}", "en": "referred to {value}"},
    "target-voicemail": {"sv": "hänvisas till röstbrevlådan", "en": "referred to voicemail"},
    "target-mobile": {"sv": "hänvisas till mobil {value}", "en": "referred to mobile {value}"},
    "outside-working-hours": {"sv": "Utanför arbetstid", "en": "Outside working hours"},
    "calendar-meeting": {"sv": "Möte (kalender)", "en": "Meeting (calendar)"},
}


def text(code: str, lang: Language = "sv", **values: str) -> str:
    """The text ``code`` in ``lang`` with ``{placeholders}`` filled in."""
    return TEXTS[code][lang].format(**values)
