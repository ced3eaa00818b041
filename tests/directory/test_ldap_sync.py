"""LDAP sync against a real slapd with Swedish names (å, ä, ö): mapping, dry run, removal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.directory.conftest import ADMIN, OPERATOR, Directory
from tests.directory.slapd import PEOPLE_DN, ROOT_DN, ROOT_PW, Slapd
from vaxla.directory.search import SearchQuery
from vaxla.directory.sync.ldap import LdapConfig, import_ldap3
from vaxla.directory.sync.runner import SyncRunner

pytestmark = pytest.mark.slow
ldap3 = import_ldap3()

PEOPLE = [
    {
        "uid": "asa.oberg",
        "cn": "Åsa Öberg",
        "givenName": "Åsa",
        "sn": "Öberg",
        "mail": "asa.oberg@vaxjo.se",
        "telephoneNumber": "4101",
        "mobile": "070-555 01 01",
        "title": "Bygglovshandläggare",
        "roomNumber": "S12",
        "l": "Stadshuset",
        "ou": "Stadsbyggnadsförvaltningen",
    },
    {
        "uid": "jorgen.angstrom",
        "cn": "Jörgen Ångström",
        "givenName": "Jörgen",
        "sn": "Ångström",
        "telephoneNumber": "4102",
        "ou": ["Stadsbyggnadsförvaltningen", "Miljöförvaltningen"],
    },
    {
        "uid": "karin.ahlen",
        "cn": "Karin Ahlén",
        "givenName": "Karin",
        "sn": "Ahlén",
        "telephoneNumber": "4103",
        "ou": "Kultur",
    },
]


@pytest.fixture
def slapd(tmp_path: Path) -> Iterator[Slapd]:
    server = Slapd(tmp_path / "slapd")
    server.prepare(PEOPLE)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def config(server: Slapd) -> dict[str, object]:
    return {
        "url": server.url,
        "base_dn": PEOPLE_DN,
        "bind_dn": ROOT_DN,
        "password": ROOT_PW,
        "unit_prefix": "Växjö kommun",
        "mapping": {"location": "l", "titles": "title"},
    }


async def test_sync_dry_run_apply_change_and_remove(directory: Directory, slapd: Slapd) -> None:
    runner = SyncRunner(directory.service)
    source = await runner.add(
        {
            "name": "ad",
            "kind": "ldap",
            "config": config(slapd),
            "interval_s": 3600,
            "enabled": True,
        },
        ADMIN,
    )
    assert source["config"]["password"] == "***"
    dry = await runner.run(source["id"], ADMIN, dry_run=True)
    assert sorted(dry["added"]) == ["asa.oberg", "jorgen.angstrom", "karin.ahlen"]
    assert (await directory.service.search(SearchQuery(text="Öberg"), OPERATOR))["items"] == []

    done = await runner.run(source["id"], ADMIN)
    assert len(done["added"]) == 3
    found = (await directory.service.search(SearchQuery(text="angström"), OPERATOR))["items"]
    assert [(i["first_name"], i["last_name"]) for i in found] == [("Jörgen", "Ångström")]
    assert found[0]["units"] == [
        "Växjö kommun/Stadsbyggnadsförvaltningen",
        "Växjö kommun/Miljöförvaltningen",
    ]
    asa = (await directory.service.search(SearchQuery(text="Åsa"), OPERATOR))["items"][0]
    assert asa["phones"] == [
        {"kind": "extension", "number": "4101"},
        {"kind": "mobile", "number": "+46705550101"},
    ]
    assert asa["location"] == "Stadshuset" and asa["titles"] == ["Bygglovshandläggare"]

    # In LDAP: Åsa changes room, Karin leaves.
    conn = ldap3.Connection(slapd.url, ROOT_DN, ROOT_PW, auto_bind=True)
    conn.modify(f"uid=asa.oberg,{PEOPLE_DN}", {"roomNumber": [(ldap3.MODIFY_REPLACE, ["S14"])]})
    conn.delete(f"uid=karin.ahlen,{PEOPLE_DN}")
    conn.unbind()
    diff = await runner.run(source["id"], ADMIN, dry_run=True)
    assert diff["changed"] == {"asa.oberg": ["room"]}
    assert diff["deactivated"] == ["karin.ahlen"] and diff["added"] == []
    await runner.run(source["id"], ADMIN)
    karin = (
        await directory.service.search(SearchQuery(text="Ahlén", include_inactive=True), OPERATOR)
    )["items"]
    assert len(karin) == 1 and karin[0]["active"] is False
    assert (await directory.service.search(SearchQuery(text="Ahlen"), OPERATOR))["items"] == []
    listed = await runner.sources(ADMIN)
    assert listed[0]["last_result"]["deactivated"] == 1


async def test_unreachable_server_is_a_sync_error(directory: Directory, slapd: Slapd) -> None:
    from vaxla.directory.errors import SyncFailed

    runner = SyncRunner(directory.service)
    bad = LdapConfig.from_dict({**config(slapd), "password": "fel"})
    with pytest.raises(SyncFailed):
        await runner.run_ldap("ad", bad, ADMIN, dry_run=True)


async def test_periodic_run_follows_the_interval(directory: Directory, slapd: Slapd) -> None:
    runner = SyncRunner(directory.service)
    source = await runner.add(
        {"name": "ad", "kind": "ldap", "config": config(slapd), "interval_s": 600, "enabled": True},
        ADMIN,
    )
    assert await runner.run_due() == [source["id"]]
    assert await runner.run_due() == []  # not due yet
    directory.clock.now += 601
    assert await runner.run_due() == [source["id"]]
    listed = await runner.sources(ADMIN)
    assert listed[0]["last_result"]["added"] == 0 and listed[0]["last_result"]["unchanged"] == 3
