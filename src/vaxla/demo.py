"""The demo municipality: 50 people on extensions 1000–1049.

Passwords are public (``demo`` + the extension, e.g. ``demo1000``), which is
why ``vaxla serve --demo`` listens on loopback unless told otherwise.
"""

from __future__ import annotations

from typing import Any

from vaxla.pbx.extensions import ExtensionStore

FIRST_EXTENSION = 1000
PEOPLE = (
    "Anna Andersson",
    "Erik Johansson",
    "Maria Karlsson",
    "Lars Nilsson",
    "Karin Eriksson",
    "Anders Larsson",
    "Eva Olsson",
    "Johan Persson",
    "Kristina Svensson",
    "Per Gustafsson",
    "Lena Pettersson",
    "Mikael Jonsson",
    "Ingrid Jansson",
    "Karl Hansson",
    "Birgitta Bengtsson",
    "Jan Jönsson",
    "Sara Lindberg",
    "Peter Jakobsson",
    "Marie Magnusson",
    "Thomas Lindström",
    "Elisabeth Olofsson",
    "Daniel Lindqvist",
    "Ulla Lindgren",
    "Fredrik Berg",
    "Malin Axelsson",
    "Hans Bergström",
    "Emma Lundberg",
    "Stefan Lind",
    "Margareta Lundgren",
    "Magnus Lundqvist",
    "Helena Mattsson",
    "Mats Berglund",
    "Sofia Fredriksson",
    "Björn Sandberg",
    "Linnéa Henriksson",
    "Nils Forsberg",
    "Annika Sjöberg",
    "Gustav Wallin",
    "Camilla Engström",
    "Oskar Eklund",
    "Elin Danielsson",
    "Henrik Lundin",
    "Ida Håkansson",
    "Jonas Björk",
    "Åsa Bergman",
    "Viktor Gunnarsson",
    "Hanna Holm",
    "Olof Wikström",
    "Johanna Samuelsson",
    "Ali Hassan",
)
assert len(PEOPLE) == 50


def demo_password(number: str) -> str:
    return f"demo{number}"


async def load_demo(extensions: ExtensionStore) -> int:
    """Create the demo extensions that do not exist yet; returns how many were added."""
    existing = {e.number for e in await extensions.list()}
    added = 0
    for offset, name in enumerate(PEOPLE):
        number = str(FIRST_EXTENSION + offset)
        if number in existing:
            continue
        await extensions.add(number, name, demo_password(number))
        added += 1
    return added


# ---------------------------------------------------------------- web users

#: (username, password, roles, extension) of the demo's staff accounts.
DEMO_STAFF = (
    ("admin", "demo-admin", ("admin",), None),
    ("telefonist", "demo-operator", ("operator",), "1000"),
    ("telefonist2", "demo-operator", ("operator",), "1001"),
    ("katalog", "demo-katalog", ("directory-admin",), None),
    ("chef", "demo-supervisor", ("supervisor",), None),
)
DEMO_UNITS = (
    "Demo kommun/Kommunledningsförvaltningen",
    "Demo kommun/Socialförvaltningen",
    "Demo kommun/Utbildningsförvaltningen",
    "Demo kommun/Tekniska förvaltningen",
    "Demo kommun/Kultur- och fritidsförvaltningen",
)
_FOLD = str.maketrans({"å": "a", "ä": "a", "ö": "o", "é": "e", "ü": "u"})


def demo_username(name: str) -> str:
    """``"Åsa Bergman"`` -> ``"asa.bergman"``: each demo person's web user."""
    return ".".join(name.lower().translate(_FOLD).split())


async def load_demo_users(users: Any, directory: Any = None) -> int:
    """Demo web users (staff accounts and one employee per demo person, password
    ``demo<extension>``) and, when the directory runs, the demo people in it."""
    from vaxla.api.auth import Principal

    added = 0
    existing = {u.username for u in await users.list()}
    for username, password, roles, ext in DEMO_STAFF:
        if username not in existing:
            await users.add(
                username,
                password=password,
                roles=roles,
                display_name=username.capitalize(),
                extension=ext,
                actor="demo",
            )
            added += 1
    demo = Principal("demo", "admin")
    for offset, name in enumerate(PEOPLE):
        number = str(FIRST_EXTENSION + offset)
        username = demo_username(name)
        first, _, last = name.partition(" ")
        if directory is not None and await directory.person_ids_for_username(username) is None:
            from vaxla.directory.records import PersonRecord

            record = PersonRecord.model_validate(
                {
                    "first_name": first,
                    "last_name": last,
                    "phones": [{"kind": "extension", "number": number}],
                    "email": f"{username}@demo.kommun.se",
                    "units": [DEMO_UNITS[offset % len(DEMO_UNITS)]],
                    "room": f"{1 + offset // 10}:{100 + offset}",
                    "username": username,
                }
            )
            await directory.create(record, demo)
        if username not in existing:
            await users.add(
                username,
                password=demo_password(number),
                roles=("employee",),
                display_name=name,
                extension=number,
                actor="demo",
            )
            added += 1
    return added
