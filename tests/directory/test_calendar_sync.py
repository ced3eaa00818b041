"""Calendar-driven diversion against a real CalDAV server (Radicale), with opt-out."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.directory.conftest import ADMIN, OPERATOR, Directory
from tests.peers.ports import free_port
from vaxla.directory.records import PersonRecord
from vaxla.directory.schedule import STOCKHOLM
from vaxla.directory.sync.calendar import CalendarConfig
from vaxla.directory.sync.runner import SyncRunner

pytestmark = pytest.mark.slow

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=STOCKHOLM)


def vevent(
    uid: str, start: datetime, end: datetime, summary: str, transparent: bool = False
) -> str:
    fmt = "%Y%m%dT%H%M%SZ"
    return "\r\n".join(
        [
            "BEGIN:VCALENDAR",
            "VERSION:2.0",
            "PRODID:-//vaxla tests//sv",
            "BEGIN:VEVENT",
            f"UID:{uid}",
            f"DTSTAMP:{start.astimezone(UTC).strftime(fmt)}",
            f"DTSTART:{start.astimezone(UTC).strftime(fmt)}",
            f"DTEND:{end.astimezone(UTC).strftime(fmt)}",
            f"SUMMARY:{summary}",
            f"TRANSP:{'TRANSPARENT' if transparent else 'OPAQUE'}",
            "END:VEVENT",
            "END:VCALENDAR",
            "",
        ]
    )


@pytest.fixture
def radicale(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = (tmp_path / "radicale.log").open("ab")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "radicale",
            "--config",
            "",
            "--server-hosts",
            f"127.0.0.1:{port}",
            "--auth-type",
            "none",
            "--storage-filesystem-folder",
            str(tmp_path / "collections"),
            "--auth-delay",
            "0",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.get(base, timeout=0.5)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(10)


def make_calendar(base: str, user: str, events: list[str]) -> str:
    """A calendar collection with events, made with plain CalDAV requests (MKCALENDAR, PUT)."""
    url = f"{base}/{user}/jobb/"
    with httpx.Client(auth=(user, "x"), timeout=5) as client:
        assert client.request("MKCALENDAR", url).status_code in (201, 200)
        for i, body in enumerate(events):
            r = client.put(
                f"{url}e{i}.ics", content=body, headers={"Content-Type": "text/calendar"}
            )
            assert r.status_code in (201, 204), r.text
    return url


async def test_meetings_become_diversions_and_opt_out(directory: Directory, radicale: str) -> None:
    directory.clock.set(NOW)
    url = make_calendar(
        radicale,
        "anna",
        [
            vevent("möte-1", NOW + timedelta(hours=1), NOW + timedelta(hours=2), "Styrelsemöte"),
            vevent("fika", NOW + timedelta(hours=3), NOW + timedelta(hours=4), "Fika", True),
            vevent("gammalt", NOW - timedelta(days=3), NOW - timedelta(days=3, hours=-1), "Förr"),
        ],
    )
    view = await directory.service.create(
        PersonRecord(first_name="Anna", last_name="Åkesson", calendar_url=url), ADMIN
    )
    pid = view["id"]
    runner = SyncRunner(directory.service)
    source = await runner.add(
        {
            "name": "kalendrar",
            "kind": "calendar",
            "config": {"username": "anna", "password": "x"},
            "interval_s": 300,
            "enabled": True,
        },
        ADMIN,
    )
    dry = await runner.run(source["id"], ADMIN, dry_run=True)
    assert dry["people"] == {str(pid): {"added": 1, "removed": 0}} and dry["errors"] == {}
    result = await runner.run(source["id"], ADMIN)
    assert result["people"] == {str(pid): {"added": 1, "removed": 0}}
    assert (await directory.service.diversion(pid, OPERATOR))["diversion"] is None

    directory.clock.set(NOW + timedelta(hours=1, minutes=10))
    shown = (await directory.service.diversion(pid, OPERATOR))["diversion"]
    assert shown is not None and shown["source"] == "calendar"
    assert shown["summary_sv"] == "Möte, tillbaka 11:00"

    # The same calendar read as a plain iCalendar feed gives the same diversions.
    feed = await runner.run_calendars(
        CalendarConfig(protocol="ical", username="anna", password="x"), ADMIN, dry_run=True
    )
    assert feed["errors"] == {} and feed["people"] == {str(pid): {"added": 0, "removed": 0}}

    # Opting out clears the calendar diversions at the next sync.
    await directory.service.update(pid, {"calendar_opt_out": True}, ADMIN)
    result = await runner.run(source["id"], ADMIN)
    assert result["people"] == {str(pid): {"added": 0, "removed": 1}}
    assert (await directory.service.diversion(pid, OPERATOR))["diversion"] is None
