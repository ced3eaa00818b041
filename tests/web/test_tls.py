"""HTTPS for use from outside the office network (R37): the same UI and API over TLS,
session cookies marked Secure, WebSocket over wss."""

from __future__ import annotations

import json
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest
import websockets

from tests.support.server import VaxlaProcess
from tests.web.support import post_signin

pytestmark = pytest.mark.slow


class HttpsNode(VaxlaProcess):
    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.http_port}"


def _self_signed(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=vaxla.test", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_https_with_secure_cookies_and_wss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = _self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the node's readiness check trusts it
    node = HttpsNode(
        tmp_path / "node",
        env={"VAXLA_HTTP__TLS_CERT": str(cert), "VAXLA_HTTP__TLS_KEY": str(key)},
    )
    node.start()
    try:
        node.cli("user", "add", "jour", "--password", "jour-pass-1", "--role", "operator")
        ctx = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(base_url=node.base_url, verify=ctx) as http:
            r = post_signin(http, "jour", "jour-pass-1")
            assert r.status_code == 303
            cookie = next(
                h for h in r.headers.get_list("set-cookie") if h.startswith("vaxla_session=")
            )
            assert "Secure" in cookie and "HttpOnly" in cookie
            assert http.get("/konsol").status_code == 200
            session = http.cookies["vaxla_session"]
        url = node.base_url.replace("https://", "wss://") + "/api/v1/events"
        async with websockets.connect(
            url, ssl=ctx, additional_headers={"Cookie": f"vaxla_session={session}"}
        ) as ws:
            assert json.loads(await ws.recv())["subject"] == "jour"
        # Plain HTTP is not served on the HTTPS port.
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{node.http_port}/healthz", timeout=3).raise_for_status()
    finally:
        node.stop()
