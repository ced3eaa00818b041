"""Directory benchmark: 100,000 Swedish people, search latency, and full imports.

Run: ``.venv/bin/python bench/bench_directory.py [--people 100000] [--queries 300]``
(``--skip-postgres``, ``--skip-ldap`` to leave a side out).

What it does (issue 4, "Benchmark"):

* generates ``--people`` people with realistic Swedish name frequencies (the
  most common surnames and first names weighted roughly as in SCB's name
  statistics, and a long tail of compound surnames like Lindqvist or
  Sjöberg), each with an extension, a mobile, an e-mail, a room, a site,
  one or two units in a 3-level tree, tasks, and for one in ten a searchable
  custom field (languages);
* writes them as a CSV file and imports it with the directory's batch import
  (parse, plan, bulk insert with search tokens and phonetic keys) into a fresh
  SQLite database and a fresh PostgreSQL database: the CSV import time;
* loads the same people into a private slapd (``slapadd``), then runs the
  LDAP sync (ldap3 paged search, mapping, import) into another fresh SQLite
  database: the LDAP import time;
* builds the in-memory search index from the database (as a node does at
  start and after a bulk load) and reports its build time and the memory it
  added (resident set, MB);
* runs four query sets through ``DirectoryService.search`` (the whole
  service call: lookups, ranking, loading the hits, current diversion,
  rendering with access levels) on SQLite and PostgreSQL — with the
  in-memory index (what a node runs) and, for comparison, with the SQL
  lookups it falls back to — and the equivalent substring filters through
  ldap3 against slapd, one query at a time in the same process, and
  reports p50/p95/p99 per query type and the ratio slapd / Växla:

  - ``name``: a surname, or first name + surname, as stored;
  - ``phonetic``: a Swedish spelling variant of a stored surname
    (Carlsson for Karlsson, Lindquist for Lindqvist ...); LDAP cannot match
    sounds, so its equivalent is a substring filter on the variant;
  - ``free-text``: a word from a unit, task, site or room;
  - ``combined``: a surname restricted to a unit subtree, plus a task word.

Results go to bench/results/directory-<date>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.directory.slapd, tests.peers.ports

from tests.directory.slapd import PEOPLE_DN, ROOT_DN, ROOT_PW, Slapd  # noqa: E402

from vaxla.api.auth import Principal  # noqa: E402
from vaxla.directory import exchange  # noqa: E402
from vaxla.directory.admin import DirectoryAdmin  # noqa: E402
from vaxla.directory.indexing import fold  # noqa: E402
from vaxla.directory.records import PersonRecord  # noqa: E402
from vaxla.directory.search import SearchQuery  # noqa: E402
from vaxla.directory.service import DirectoryService  # noqa: E402
from vaxla.directory.sync.ldap import LdapConfig, import_ldap3  # noqa: E402
from vaxla.directory.sync.runner import SyncRunner  # noqa: E402
from vaxla.store.db import Database, migrate  # noqa: E402

PG_ADMIN = "postgresql://postgres:postgres@127.0.0.1:5432/postgres"
ADMIN = Principal("bench", "directory-admin")
CPU_SECONDS: dict[str, float] = {}  # this process's CPU time per import
OPERATOR = Principal("bench-operator", "operator")

# Surnames with rough relative frequencies (thousands of bearers, SCB-like).
SURNAMES = {
    "Andersson": 224,
    "Johansson": 222,
    "Karlsson": 196,
    "Nilsson": 152,
    "Eriksson": 131,
    "Larsson": 111,
    "Olsson": 103,
    "Persson": 97,
    "Svensson": 88,
    "Gustafsson": 86,
    "Pettersson": 84,
    "Jonsson": 64,
    "Jansson": 45,
    "Hansson": 42,
    "Bengtsson": 32,
    "Jönsson": 32,
    "Lindberg": 26,
    "Jakobsson": 25,
    "Magnusson": 25,
    "Olofsson": 24,
    "Lindström": 24,
    "Lindqvist": 23,
    "Lindgren": 23,
    "Berg": 22,
    "Axelsson": 22,
    "Bergström": 21,
    "Lundberg": 21,
    "Lind": 20,
    "Lundgren": 20,
    "Lundqvist": 20,
    "Mattsson": 19,
    "Berglund": 19,
    "Fredriksson": 18,
    "Sandberg": 18,
    "Henriksson": 17,
    "Forsberg": 17,
    "Sjöberg": 17,
    "Ali": 17,
    "Wallin": 16,
    "Mohammed": 16,
    "Engström": 16,
    "Eklund": 15,
    "Danielsson": 15,
    "Lundin": 15,
    "Håkansson": 15,
    "Björk": 14,
    "Bergman": 14,
    "Gunnarsson": 14,
    "Holm": 14,
    "Wikström": 14,
    "Samuelsson": 13,
    "Isaksson": 13,
    "Fransson": 13,
    "Bergqvist": 13,
    "Nyström": 13,
    "Holmberg": 13,
    "Arvidsson": 13,
    "Löfgren": 12,
    "Söderberg": 12,
    "Nyberg": 12,
    "Blomqvist": 12,
    "Claesson": 12,
    "Nordström": 12,
    "Mårtensson": 11,
    "Lundström": 11,
    "Ahmed": 11,
    "Viklund": 11,
    "Björklund": 11,
    "Eliasson": 11,
    "Pålsson": 11,
    "Hassan": 10,
    "Berggren": 10,
    "Sandström": 10,
    "Lund": 10,
    "Nordin": 10,
    "Ström": 10,
    "Åberg": 10,
    "Hermansson": 10,
    "Ekström": 10,
    "Holmgren": 10,
    "Sundberg": 10,
    "Hedlund": 9,
    "Dahlberg": 9,
    "Hellström": 9,
    "Sjögren": 9,
    "Abrahamsson": 9,
    "Falk": 9,
    "Öberg": 9,
    "Andreasson": 9,
    "Blom": 9,
    "Ek": 9,
    "Månsson": 9,
    "Carlsson": 8,
    "Ericsson": 7,
    "Zetterström": 3,
    "Kjellberg": 5,
    "Erixon": 2,
    "Lindkvist": 6,
    "Carlson": 2,
    "Gustavsson": 6,
    "Vikström": 5,
}
FIRST_NAMES = {
    "Anna": 100,
    "Eva": 90,
    "Maria": 90,
    "Karin": 80,
    "Kristina": 75,
    "Lena": 70,
    "Sara": 60,
    "Kerstin": 55,
    "Emma": 55,
    "Ingrid": 50,
    "Marie": 50,
    "Malin": 45,
    "Jenny": 45,
    "Hanna": 45,
    "Linnéa": 40,
    "Åsa": 35,
    "Elin": 35,
    "Sofia": 35,
    "Ulla": 30,
    "Birgitta": 30,
    "Margareta": 30,
    "Elisabeth": 30,
    "Camilla": 25,
    "Ida": 25,
    "Johanna": 25,
    "Cecilia": 20,
    "Fatima": 12,
    "Gunilla": 20,
    "Erik": 100,
    "Lars": 95,
    "Karl": 90,
    "Anders": 90,
    "Johan": 85,
    "Per": 80,
    "Nils": 60,
    "Mikael": 70,
    "Jan": 70,
    "Hans": 60,
    "Lennart": 50,
    "Peter": 55,
    "Olof": 45,
    "Gunnar": 40,
    "Sven": 40,
    "Fredrik": 40,
    "Bengt": 35,
    "Åke": 30,
    "Örjan": 15,
    "Björn": 35,
    "Daniel": 40,
    "Magnus": 40,
    "Stefan": 40,
    "Mats": 35,
    "Ulf": 30,
    "Göran": 30,
    "Thomas": 40,
    "Andreas": 35,
    "Jonas": 35,
    "Oskar": 30,
    "Mohammed": 15,
    "Ali": 10,
    "Carl": 30,
    "Kjell": 20,
    "Jörgen": 15,
}
FIRST_PARTS = [
    "Berg",
    "Lind",
    "Sjö",
    "Ek",
    "Holm",
    "Dahl",
    "Sund",
    "Strand",
    "Ny",
    "Malm",
    "Ås",
    "Gran",
    "Sand",
    "Fors",
    "Norr",
    "Söder",
    "Väster",
    "Öst",
    "Björk",
    "Al",
    "Lönn",
    "Rosen",
    "Lilje",
    "Lö",
    "Hag",
    "Ljung",
    "Asp",
    "Eng",
    "Hed",
    "Kvarn",
    "Mo",
    "Bäck",
    "Stén",
    "Törn",
    "Wall",
    "Åker",
    "Frisk",
    "Blom",
    "Gyllen",
    "Ceder",
    "Palm",
    "Zander",
]
LAST_PARTS = [
    "berg",
    "ström",
    "lund",
    "gren",
    "qvist",
    "kvist",
    "man",
    "dahl",
    "holm",
    "blad",
    "bäck",
    "sten",
    "feldt",
    "stedt",
    "ell",
    "ling",
    "ius",
    "borg",
    "vall",
    "mark",
    "by",
    "näs",
    "hult",
    "fors",
    "sjö",
    "dal",
    "quist",
    "wall",
]
UNITS = {
    "Socialförvaltningen": ["Individ- och familjeomsorg", "Äldreomsorg", "Funktionsstöd"],
    "Utbildningsförvaltningen": ["Grundskola", "Gymnasium", "Förskola", "Vuxenutbildning"],
    "Stadsbyggnadsförvaltningen": ["Bygglov", "Planering", "Lantmäteri"],
    "Tekniska förvaltningen": ["Gata och park", "Vatten och avlopp", "Fastigheter"],
    "Kultur- och fritidsförvaltningen": ["Bibliotek", "Idrott", "Museum"],
    "Kommunledningsförvaltningen": ["Ekonomi", "HR", "IT", "Kommunikation", "Växeln"],
    "Miljöförvaltningen": ["Livsmedel", "Hälsoskydd"],
}
TASKS = [
    "Försörjningsstöd",
    "Bostadsanpassning",
    "Färdtjänst",
    "Bygglov",
    "Strandskydd",
    "Snöröjning",
    "Parkeringstillstånd",
    "Avfall",
    "Livsmedelskontroll",
    "Skolskjuts",
    "Förskoleplacering",
    "Hemtjänst",
    "Serveringstillstånd",
    "Lönefrågor",
    "Upphandling",
    "Dataskydd",
    "Arkiv",
    "Föreningsbidrag",
    "Detaljplan",
    "Nybyggnadskarta",
    "Budget och rådgivning",
    "Elevhälsa",
    "Modersmål",
    "Trafiksäkerhet",
    "Gatubelysning",
]
SITES = [
    "Stadshuset",
    "Västra Esplanaden",
    "Teleborg",
    "Araby",
    "Braås",
    "Rottne",
    "Lammhult",
    "Ingelstad",
    "Gemla",
    "Åby",
    "Dalbo",
    "Öster",
    "Norr",
    "Hovshaga",
    "Sandsbro",
]
LANGUAGES = ["finska", "arabiska", "somaliska", "persiska", "bosniska", "engelska", "tyska"]
VARIANT_RULES = [
    ("Karl", "Carl"),
    ("Carl", "Karl"),
    ("qvist", "quist"),
    ("kvist", "qvist"),
    ("ks", "x"),
    ("ck", "k"),
    ("Sj", "Sch"),
    ("Kj", "Tj"),
    ("f", "v"),
    ("W", "V"),
    ("Z", "S"),
    ("ss", "s"),
    ("ph", "f"),
    ("th", "t"),
    ("é", "e"),
    ("ö", "ø"),
    ("C", "K"),
]


def weighted(rng: random.Random, table: dict[str, int], n: int) -> list[str]:
    names, weights = zip(*table.items(), strict=True)
    return rng.choices(names, weights=weights, k=n)


def generate(n: int, seed: int = 4) -> tuple[list[PersonRecord], list[dict[str, Any]]]:
    """``n`` records and the same people as LDAP attribute dicts."""
    rng = random.Random(seed)
    common = weighted(rng, SURNAMES, n)
    firsts = weighted(rng, FIRST_NAMES, n)
    unit_paths = [
        f"Växjö kommun/{f}/{a}/Enhet {k}"
        for f, subs in UNITS.items()
        for a in subs
        for k in range(1, 7)
    ]
    records: list[PersonRecord] = []
    ldap: list[dict[str, Any]] = []
    used_email: set[str] = set()
    for i in range(n):
        # Roughly 55 % carry one of the common names; the rest a compound tail name.
        if rng.random() < 0.55:
            last = common[i]
        else:
            last = rng.choice(FIRST_PARTS) + rng.choice(LAST_PARTS)
        first = firsts[i]
        if rng.random() < 0.15:
            first = f"{first}-{rng.choice(list(FIRST_NAMES))}"
        ext = str(20000 + i)
        mobile = f"07{rng.choice('0236')}{i:07d}"
        base = f"{fold(first).replace(' ', '')}.{fold(last)}"
        email = f"{base}@vaxjo.se"
        k = 1
        while email in used_email:
            k += 1
            email = f"{base}{k}@vaxjo.se"
        used_email.add(email)
        units = [rng.choice(unit_paths)]
        if rng.random() < 0.1:
            units.append(rng.choice(unit_paths))
        tasks = rng.sample(TASKS, rng.choice([0, 1, 1, 2]))
        room = f"{rng.choice('ABCDEFGH')}{rng.randint(1, 4)}{rng.randint(0, 40):02d}"
        site = rng.choice(SITES)
        custom = {"sprak": " ".join(rng.sample(LANGUAGES, 2))} if rng.random() < 0.1 else {}
        uid = f"u{i:06d}"
        records.append(
            PersonRecord(
                external_id=uid,
                first_name=first,
                last_name=last,
                phones=[
                    {"kind": "extension", "number": ext},  # type: ignore[list-item]
                    {"kind": "mobile", "number": mobile},  # type: ignore[list-item]
                ],
                email=email,
                units=units,
                tasks=tasks,
                room=room,
                location=site,
                titles=["Handläggare"] if rng.random() < 0.3 else [],
                custom=custom,
            )
        )
        ldap.append(
            {
                "uid": uid,
                "cn": f"{first} {last}",
                "givenName": first,
                "sn": last,
                "mail": email,
                "telephoneNumber": ext,
                "mobile": mobile,
                "roomNumber": room,
                "l": site,
                "ou": [u.split("/", 1)[1] for u in units],
                **({"description": tasks} if tasks else {}),
            }
        )
    return records, ldap


def variant(rng: random.Random, name: str) -> str | None:
    rules = [r for r in VARIANT_RULES if r[0] in name]
    if not rules:
        return None
    a, b = rng.choice(rules)
    return name.replace(a, b, 1)


def query_sets(
    records: list[PersonRecord], n: int, seed: int = 7
) -> dict[str, list[dict[str, Any]]]:
    rng = random.Random(seed)
    sample = rng.sample(records, min(len(records), n * 4))
    name: list[dict[str, Any]] = []
    phonetic: list[dict[str, Any]] = []
    free: list[dict[str, Any]] = []
    combined: list[dict[str, Any]] = []
    for r in sample:
        if len(name) < n:
            full = rng.random() < 0.5
            name.append({"text": f"{r.first_name} {r.last_name}" if full else r.last_name})
        v = variant(rng, r.last_name)
        if v and v != r.last_name and len(phonetic) < n:
            phonetic.append({"text": v, "expect": r.last_name})
        if len(free) < n:
            pick = rng.choice(["unit", "task", "site", "room"])
            if pick == "unit":
                word = rng.choice(r.units[0].split("/")[-2].split())
            elif pick == "task" and r.tasks:
                word = r.tasks[0].split()[0]
            elif pick == "site":
                word = r.location or "Stadshuset"
            else:
                word = r.room or "A100"
            free.append({"text": word})
        if len(combined) < n and r.tasks:
            combined.append(
                {
                    "last_name": r.last_name,
                    "unit_path": "/".join(r.units[0].split("/")[:2]),
                    "text": r.tasks[0].split()[0],
                }
            )
    return {"name": name, "phonetic": phonetic[:n], "free-text": free, "combined": combined}


def percentiles(samples: list[float]) -> dict[str, float]:
    s = sorted(samples)

    def pct(p: float) -> float:
        return round(s[min(len(s) - 1, int(p * len(s)))] * 1000, 3)

    return {
        "n": len(s),
        "p50_ms": pct(0.50),
        "p95_ms": pct(0.95),
        "p99_ms": pct(0.99),
        "mean_ms": round(statistics.fmean(s) * 1000, 3),
    }


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def build_index(service: DirectoryService) -> dict[str, float]:
    """Build the in-memory index now; its time and the resident memory it added."""
    assert service.index is not None
    before = rss_mb()
    t0 = time.perf_counter()
    await asyncio.to_thread(service.index.build)
    return {
        "build_s": round(time.perf_counter() - t0, 2),
        "rss_added_mb": round(rss_mb() - before, 1),
    }


async def import_csv(url: str, csv_text: str) -> tuple[DirectoryService, float]:
    migrate(url)
    service = DirectoryService(Database(url))
    await DirectoryAdmin(service).create_field(
        {
            "key": "sprak",
            "label_sv": "Språk",
            "label_en": "Languages",
            "type": "text",
            "choices": [],
            "searchable": True,
            "position": 1,
            "view_level": 1,
            "edit_level": 3,
        },
        ADMIN,
    )
    t0, c0 = time.perf_counter(), time.process_time()
    result = await service.import_text(
        "csv", csv_text, ADMIN, dry_run=False, deactivate_missing=False
    )
    elapsed = time.perf_counter() - t0
    CPU_SECONDS[url] = round(time.process_time() - c0, 2)
    assert len(result["added"]) > 0
    return service, elapsed


async def run_queries(
    service: DirectoryService, queries: dict[str, list[dict[str, Any]]]
) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    units = await DirectoryAdmin(service).units()
    by_path = {u["path"]: u["id"] for u in units}
    out: dict[str, dict[str, float]] = {}
    quality: dict[str, float] = {}
    for kind, qs in queries.items():
        samples: list[float] = []
        cpu: list[float] = []
        found_expected = 0
        for q in qs:
            sq = SearchQuery(
                text=q.get("text", ""),
                last_name=q.get("last_name", ""),
                unit_id=by_path.get(q["unit_path"]) if "unit_path" in q else None,
            )
            t0, c0 = time.perf_counter(), time.process_time()
            result = await service.search(sq, OPERATOR)
            samples.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            if "expect" in q and any(i["last_name"] == q["expect"] for i in result["items"]):
                found_expected += 1
        out[kind] = percentiles(samples)
        out[kind]["cpu_p50_ms"] = percentiles(cpu)["p50_ms"]
        out[kind]["cpu_p95_ms"] = percentiles(cpu)["p95_ms"]
        if kind == "phonetic":
            quality["phonetic_hit_rate"] = round(found_expected / max(1, len(qs)), 3)
    return out, quality


def ldap_filter(kind: str, q: dict[str, Any]) -> str:
    def esc(v: str) -> str:
        return (
            v.replace("\\", "\\5c").replace("*", "\\2a").replace("(", "\\28").replace(")", "\\29")
        )

    if kind in ("name", "phonetic"):
        words = q["text"].split()
        if len(words) == 1:
            w = esc(words[0])
            return f"(|(sn={w}*)(givenName={w}*))"
        return f"(&(givenName={esc(words[0])}*)(sn={esc(words[-1])}*))"
    if kind == "free-text":
        w = esc(q["text"])
        return f"(|(cn=*{w}*)(ou=*{w}*)(description=*{w}*)(l=*{w}*)(roomNumber=*{w}*)(mail=*{w}*))"
    unit = esc(q["unit_path"].split("/", 1)[1])
    return f"(&(sn={esc(q['last_name'])}*)(ou={unit}*)(description=*{esc(q['text'])}*))"


def run_ldap_queries(slapd: Slapd, queries: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    ldap3 = import_ldap3()
    conn = ldap3.Connection(slapd.url, ROOT_DN, ROOT_PW, auto_bind=True, read_only=True)
    out: dict[str, Any] = {}
    try:
        for kind, qs in queries.items():
            samples = []
            for q in qs:
                f = ldap_filter(kind, q)
                t0 = time.perf_counter()
                conn.search(
                    PEOPLE_DN, f, attributes=["uid", "cn", "telephoneNumber", "mail"], size_limit=20
                )
                _ = conn.entries
                samples.append(time.perf_counter() - t0)
            out[kind] = percentiles(samples)
    finally:
        conn.unbind()
    return out


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--people", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--skip-postgres", action="store_true")
    ap.add_argument("--skip-ldap", action="store_true")
    args = ap.parse_args()

    report: dict[str, Any] = {
        "date": date.today().isoformat(),
        "people": args.people,
        "queries_per_type": args.queries,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "cpu_count": os.cpu_count(),
    }
    t0 = time.perf_counter()
    records, ldap_people = generate(args.people)
    report["generate_s"] = round(time.perf_counter() - t0, 2)
    csv_text = exchange.write_csv(records, ["sprak"])
    queries = query_sets(records, args.queries)
    print(f"generated {len(records)} people in {report['generate_s']} s", flush=True)

    with tempfile.TemporaryDirectory(prefix="vaxla-bench-dir-") as tmp:
        tmpdir = Path(tmp)
        report["csv_import_s"] = {}
        report["search"] = {}
        report["quality"] = {}
        backends: list[tuple[str, str]] = [("sqlite", f"sqlite:///{tmpdir / 'csv.db'}")]
        pg_db = None
        if not args.skip_postgres:
            import psycopg

            pg_db = f"vaxla_bench_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(PG_ADMIN, autocommit=True) as c:
                c.execute(f'CREATE DATABASE "{pg_db}"')
            backends.append(("postgresql", PG_ADMIN.rsplit("/", 1)[0] + f"/{pg_db}"))
        try:
            for name, url in backends:
                service, took = await import_csv(url, csv_text)
                report["csv_import_s"][name] = round(took, 2)
                report.setdefault("csv_import_cpu_s", {})[name] = CPU_SECONDS[url]
                print(f"{name}: CSV import {took:.1f} s", flush=True)
                report.setdefault("memory_index", {})[name] = await build_index(service)
                print(f"{name}: index {report['memory_index'][name]}", flush=True)
                report["search"][name], report["quality"][name] = await run_queries(
                    service, queries
                )
                print(f"{name}: {json.dumps(report['search'][name])}", flush=True)
                await service.close()
                sql_only = DirectoryService(service.db, memory_index=False)
                report["search"][f"{name}-sql"], _ = await run_queries(sql_only, queries)
                print(f"{name}-sql: {json.dumps(report['search'][name + '-sql'])}", flush=True)
                await sql_only.close()
                await service.db.close()
        finally:
            if pg_db is not None:
                import psycopg

                with psycopg.connect(PG_ADMIN, autocommit=True) as c:
                    c.execute(f'DROP DATABASE IF EXISTS "{pg_db}" WITH (FORCE)')

        if not args.skip_ldap:
            slapd = Slapd(tmpdir / "slapd")
            t0 = time.perf_counter()
            slapd.prepare(ldap_people)
            report["slapadd_s"] = round(time.perf_counter() - t0, 2)
            slapd.start()
            try:
                url = f"sqlite:///{tmpdir / 'ldap.db'}"
                migrate(url)
                service = DirectoryService(Database(url))
                config = LdapConfig.from_dict(
                    {
                        "url": slapd.url,
                        "base_dn": PEOPLE_DN,
                        "bind_dn": ROOT_DN,
                        "password": ROOT_PW,
                        "unit_prefix": "Växjö kommun",
                        "mapping": {"tasks": "description"},
                    }
                )
                t0, c0 = time.perf_counter(), time.process_time()
                result = await SyncRunner(service).run_ldap("bench", config, ADMIN, False)
                report["ldap_import_s"] = {"sqlite": round(time.perf_counter() - t0, 2)}
                report["ldap_import_cpu_s"] = {"sqlite": round(time.process_time() - c0, 2)}
                report["ldap_import_added"] = len(result["added"])
                print(f"LDAP import {report['ldap_import_s']}", flush=True)
                await service.close()
                await service.db.close()
                report["search"]["slapd"] = run_ldap_queries(slapd, queries)
                print(f"slapd: {json.dumps(report['search']['slapd'])}", flush=True)
            finally:
                slapd.stop()

    ratios: dict[str, dict[str, float]] = {}
    if "slapd" in report["search"]:
        for backend in ("sqlite", "postgresql", "sqlite-sql", "postgresql-sql"):
            if backend not in report["search"]:
                continue
            ratios[backend] = {
                kind: round(report["search"]["slapd"][kind]["p95_ms"] / v["p95_ms"], 2)
                for kind, v in report["search"][backend].items()
            }
    report["p95_ratio_slapd_over_vaxla"] = ratios
    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    out = ROOT / "bench" / "results" / f"directory-{report['date']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    print(json.dumps(report, indent=1, ensure_ascii=False))
    print(f"written to {out}")


if __name__ == "__main__":
    asyncio.run(main())
