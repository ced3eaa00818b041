"""The demo municipality: 50 people on extensions 1000–1049.

Passwords are public (``demo`` + the extension, e.g. ``demo1000``), which is
why ``vaxla serve --demo`` listens on loopback unless told otherwise.
"""

from __future__ import annotations

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
