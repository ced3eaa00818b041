"""A private OpenLDAP slapd for tests and the benchmark (Debian ``slapd``).

It listens on 127.0.0.1 on a free port, keeps its data in a temp dir, is
loaded with ``slapadd`` before it starts and is stopped by its PID.
"""

from __future__ import annotations

import base64
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from tests.peers.ports import free_port

SUFFIX = "dc=vaxjo,dc=se"
PEOPLE_DN = f"ou=people,{SUFFIX}"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PW = "hemligt"

CONF = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {dir}/slapd.pid
sizelimit unlimited
database mdb
maxsize 1073741824
suffix "{suffix}"
rootdn "{rootdn}"
rootpw {rootpw}
directory {dir}/data
index objectClass eq
index uid eq
index cn,sn,givenName,mail,telephoneNumber,mobile sub,eq
"""


def _line(attr: str, value: str) -> str:
    if value.isascii() and not value.startswith((" ", ":", "<")):
        return f"{attr}: {value}"
    return f"{attr}:: {base64.b64encode(value.encode()).decode()}"


def person_ldif(attrs: Mapping[str, str | Sequence[str]]) -> str:
    uid = attrs["uid"]
    lines = [f"dn: uid={uid},{PEOPLE_DN}", "objectClass: inetOrgPerson"]
    for attr, value in attrs.items():
        for v in [value] if isinstance(value, str) else value:
            lines.append(_line(attr, v))
    return "\n".join(lines) + "\n\n"


class Slapd:
    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.conf = self.dir / "slapd.conf"

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    def prepare(self, people: Iterable[Mapping[str, str | Sequence[str]]]) -> None:
        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        self.conf.write_text(
            CONF.format(dir=self.dir, suffix=SUFFIX, rootdn=ROOT_DN, rootpw=ROOT_PW)
        )
        ldif = self.dir / "data.ldif"
        with ldif.open("w", encoding="utf-8") as f:
            f.write(f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\n")
            f.write("dc: vaxjo\no: Växjö kommun\n\n".replace("Växjö kommun", "Vaxjo kommun"))
            f.write(f"dn: {PEOPLE_DN}\nobjectClass: organizationalUnit\nou: people\n\n")
            for p in people:
                f.write(person_ldif(p))
        subprocess.run(
            ["slapadd", "-q", "-f", str(self.conf), "-l", str(ldif)],
            check=True,
            capture_output=True,
            timeout=600,
        )

    def start(self, timeout: float = 10.0) -> None:
        log = (self.dir / "slapd.log").open("ab")
        self.proc = subprocess.Popen(
            ["slapd", "-d", "0", "-h", f"{self.url}/", "-f", str(self.conf)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"slapd exited {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("slapd did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
