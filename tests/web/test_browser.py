"""The web UI in a real browser (Playwright driving Debian's Chromium)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.peers.fixtures import BaresipFactory
from tests.support.server import VaxlaProcess
from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS, need_chromium
from tests.web.support import ARTIFACTS, PASSWORDS

pytestmark = pytest.mark.slow

Node = tuple[VaxlaProcess, dict[str, int]]
PHONE = {"width": 390, "height": 844}


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Browser]:
    need_chromium()
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


async def signed_in_page(
    browser: Browser, node: VaxlaProcess, user: str, viewport: dict[str, int] | None = None
) -> Page:
    context = await browser.new_context(
        base_url=node.base_url,
        locale="sv-SE",
        timezone_id="Europe/Stockholm",
        viewport=viewport or {"width": 1280, "height": 900},  # type: ignore[arg-type]
    )
    page = await context.new_page()
    await page.goto("/logga-in")
    await page.fill("#username", user)
    await page.fill("#password", PASSWORDS[user])
    await page.press("#password", "Enter")
    await page.wait_for_url(lambda url: "/logga-in" not in url)
    return page


async def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def test_operator_finds_misspelled_name_and_diversion_reaches_second_operator(
    web_node: Node, browser: Browser
) -> None:
    node, ids = web_node
    pid = ids["karl.eriksson"]
    first = await signed_in_page(browser, node, "telefonist")
    second = await signed_in_page(browser, node, "telefonist2")
    assert first.url.endswith("/konsol")
    await expect(first.locator("#live")).to_have_attribute("data-state", "live")
    await expect(second.locator("#live")).to_have_attribute("data-state", "live")

    # "Erixon" is how the caller spelled it: the phonetic search finds Eriksson.
    await first.fill("#q", "Karl Erixon")
    hit = first.locator(f'#results button[data-id="{pid}"]')
    await expect(hit).to_contain_text("Karl Eriksson")
    await hit.click()
    await expect(first.locator("#card-name")).to_have_text("Karl Eriksson")
    await expect(first.locator("#card")).to_contain_text("Försörjningsstöd")
    await expect(first.locator("#card")).to_contain_text("Socialförvaltningen")

    # The second operator has the same person on screen (keyboard only: type, Enter).
    await second.fill("#q", "Ericsson")
    await expect(second.locator(f'#results button[data-id="{pid}"]')).to_be_visible()
    await second.press("#q", "Enter")
    await expect(second.locator("#card-diversion")).to_have_attribute("data-set", "no")

    await first.select_option("#div-reason", "meeting")
    await first.fill("#div-return", "2030-06-03T13:00")
    await first.fill("#div-message", "Nås via växeln")
    await first.click("#div-set")
    started = time.monotonic()
    await expect(second.locator("#card-diversion")).to_contain_text("13:00", timeout=1000)
    assert time.monotonic() - started < 1.0
    await expect(second.locator("#card-diversion")).to_have_attribute("data-set", "yes")
    await expect(first.locator("#card-diversion")).to_contain_text("13:00")

    # ...and in the API.
    d = node.api("GET", f"/api/v1/diversions/{pid}").json()["diversion"]
    assert d["reason"] == "meeting" and d["return_at"].startswith("2030-06-03T11:00")
    assert d["message"] == "Nås via växeln" and d["set_by"] == "telefonist"

    # Leave a message in the diversion view (R46.21).
    await first.fill("#msg-text", "Ring tillbaka om försörjningsstödet")
    await first.fill("#msg-name", "Anna Medborgare")
    await first.click("#msg-save")
    await expect(first.locator("#messages")).to_contain_text("Anna Medborgare")
    await screenshot(first, "console")

    await first.click("#div-clear")
    await expect(second.locator("#card-diversion")).to_have_attribute(
        "data-set", "no", timeout=1000
    )
    await first.context.close()
    await second.context.close()


async def test_group_diversion_from_the_console(web_node: Node, browser: Browser) -> None:
    node, ids = web_node
    page = await signed_in_page(browser, node, "telefonist")
    await page.click("#group-div summary")
    await page.select_option("#group-reason", "course")
    await page.click("#group-set")
    await expect(page.locator("#toast")).to_contain_text("hänvisade")
    for name in ("karl.eriksson", "Åsa Sjöberg", "Nils Sjöberg"):
        d = node.api("GET", f"/api/v1/diversions/{ids[name]}").json()["diversion"]
        assert d is not None and d["reason"] == "course", name
    await page.click("#group-clear")
    await expect(page.locator("#toast")).to_contain_text("borttagen")
    assert node.api("GET", f"/api/v1/diversions/{ids['Nils Sjöberg']}").json()["diversion"] is None
    await page.context.close()


async def test_employee_self_service_on_a_phone_sized_screen(
    web_node: Node, browser: Browser
) -> None:
    node, ids = web_node
    page = await signed_in_page(browser, node, "karl.eriksson", PHONE)
    assert page.url.endswith("/mina-sidor")
    await expect(page.locator("#me-facts")).to_contain_text("2010")
    # No console or admin for an employee, in the menu or by address.
    await expect(page.locator("nav")).not_to_contain_text("Konsol")
    await expect(page.locator("nav")).not_to_contain_text("Administration")
    # Each reason names its desk-phone code (*23*<n>#, R81).
    await expect(page.locator("#my-reason option").first).to_have_text("Lunch (*23*1#)")
    await page.select_option("#my-reason", "lunch")
    await page.fill("#my-return", "2030-06-03T13:00")
    await page.click("#my-div-set")
    await expect(page.locator("#my-diversion")).to_contain_text("13:00")
    d = node.api("GET", f"/api/v1/diversions/{ids['karl.eriksson']}").json()["diversion"]
    assert d["reason"] == "lunch" and d["set_by"] == "karl.eriksson"
    await page.fill("#fwd-busy", "0701234567")
    await page.click("#fwd-save")
    await expect(page.locator("#toast")).to_contain_text("sparad")
    # The page fits the phone's width: nothing to scroll sideways (R82).
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"]
    await screenshot(page, "mina-sidor")
    await page.click("#my-div-clear")
    await expect(page.locator("#my-diversion")).to_contain_text("Ingen hänvisning")
    await page.goto("/konsol")
    await expect(page.locator("#forbidden")).to_be_visible()
    await page.context.close()


async def test_console_shows_call_forwarding_live_and_removes_it(
    web_node: Node, browser: Browser
) -> None:
    """R65, R83: the operator sees an extension's forwarding next to its phone
    state as it is set and cleared elsewhere (no reload), and can remove it."""
    node, ids = web_node
    fwd = "/api/v1/extensions/2011/forwarding"
    assert node.api("DELETE", fwd).status_code == 204
    page = await signed_in_page(browser, node, "telefonist")
    await expect(page.locator("#live")).to_have_attribute("data-state", "live")
    await page.evaluate("window.__sameDocument = true")
    await page.fill("#q", "Lisa Lindqvist")
    hit = page.locator(f'#results button[data-id="{ids["lisa.lindqvist"]}"]')
    await expect(hit).to_be_visible()
    await hit.click()
    await expect(page.locator("#card-name")).to_have_text("Lisa Lindqvist")
    # The note sits right after the phone state, in the hit list and on the card.
    beside_state = '.phone-state[data-ext="2011"] + .forwarding[data-ext="2011"]'
    notes = page.locator(beside_state)
    await expect(notes).to_have_count(2)
    for i in range(2):
        await expect(notes.nth(i)).to_have_attribute("data-set", "no")
    await expect(page.locator("#card-forwarding")).to_have_text("Ingen vidarekoppling")
    await expect(page.locator("#fwd-remove")).to_have_count(0)

    # Set through the API: it appears at once.
    r = node.api("PUT", fwd, json={"rules": [{"kind": "always", "target": "2012"}]})
    assert r.status_code == 200, r.text
    for i in range(2):
        await expect(notes.nth(i)).to_have_text("Vidarekopplad till 2012", timeout=2000)
        await expect(notes.nth(i)).to_be_visible()
    await expect(page.locator("#card-forwarding")).to_have_text("Vidarekopplad till 2012")
    await screenshot(page, "konsol-vidarekoppling")

    # Cleared through the API: it goes away at once.
    assert node.api("DELETE", fwd).status_code == 204
    for i in range(2):
        await expect(notes.nth(i)).to_have_attribute("data-set", "no", timeout=2000)
        await expect(notes.nth(i)).to_be_hidden()
    await expect(page.locator("#card-forwarding")).to_have_text("Ingen vidarekoppling")
    await expect(page.locator("#fwd-remove")).to_have_count(0)

    # Set again (busy, too), then removed by the operator's button.
    r = node.api(
        "PUT",
        fwd,
        json={
            "rules": [
                {"kind": "always", "target": "2012"},
                {"kind": "busy", "target": "070-123 45 67"},
            ]
        },
    )
    assert r.status_code == 200, r.text
    await expect(notes.first).to_have_text(
        "Vidarekopplad till 2012; Vid upptaget: +46701234567", timeout=2000
    )
    remove = page.locator("#fwd-remove")
    await expect(remove).to_have_text("Ta bort vidarekoppling")
    await remove.click()
    await expect(page.locator("#toast")).to_contain_text("Vidarekopplingen är borttagen")
    for i in range(2):
        await expect(notes.nth(i)).to_have_attribute("data-set", "no", timeout=2000)
    await expect(page.locator("#card-forwarding")).to_have_text("Ingen vidarekoppling")
    assert node.api("GET", fwd).json()["rules"] == []
    audit = node.api("GET", "/api/v1/directory/audit?entity=extension&entity_id=2011&limit=1")
    [last] = audit.json()
    assert (last["actor"], last["action"]) == ("telefonist", "clear-forwarding")
    assert await page.evaluate("window.__sameDocument === true")  # never reloaded
    await page.context.close()


async def test_employee_sets_own_call_forwarding_on_mina_sidor(
    web_node: Node, browser: Browser
) -> None:
    node, _ = web_node
    fwd = "/api/v1/extensions/2011/forwarding"
    r = node.api("PUT", fwd, json={"rules": [{"kind": "busy", "target": "2012"}]})
    assert r.status_code == 200, r.text
    page = await signed_in_page(browser, node, "lisa.lindqvist")
    assert page.url.endswith("/mina-sidor")
    await expect(page.locator("#h-fwd")).to_have_text("Vidarekoppling")
    # The page shows what is stored (and has finished loading).
    await expect(page.locator("#fwd-busy")).to_have_value("2012")
    await expect(page.locator("#fwd-seconds")).to_have_value("20")
    # Forwarding to oneself is refused, in Swedish, and nothing changes.
    await page.fill("#fwd-always", "2011")
    await page.click("#fwd-save")
    await expect(page.locator("#toast")).to_have_text(
        "En anknytning kan inte vidarekopplas till sig själv"
    )
    assert [r["kind"] for r in node.api("GET", fwd).json()["rules"]] == ["busy"]

    await page.fill("#fwd-always", "")
    await page.fill("#fwd-busy", "")
    await page.fill("#fwd-no-answer", "2012")
    await page.fill("#fwd-unreachable", "070-765 43 21")
    await page.fill("#fwd-seconds", "15")
    await page.click("#fwd-save")
    await expect(page.locator("#toast")).to_have_text("Vidarekopplingen är sparad")
    stored = node.api("GET", fwd).json()
    assert [(r["kind"], r["target"], r["enabled"]) for r in stored["rules"]] == [
        ("no-answer", "2012", True),
        ("unreachable", "+46707654321", True),
    ]
    assert stored["no_answer_seconds"] == 15 and stored["updated_by"] == "lisa.lindqvist"
    # The page shows what was stored (the external number in E.164).
    await expect(page.locator("#fwd-unreachable")).to_have_value("+46707654321", timeout=2000)
    await screenshot(page, "mina-sidor-vidarekoppling")
    assert node.api("DELETE", fwd).status_code == 204
    await expect(page.locator("#fwd-no-answer")).to_have_value("", timeout=2000)
    await page.context.close()


async def test_admin_page_manages_users(web_node: Node, browser: Browser) -> None:
    node, _ = web_node
    page = await signed_in_page(browser, node, "admin1")
    await page.goto("/admin")
    await expect(page.locator("#users-table")).to_contain_text("telefonist")
    await page.fill("#user-username", "vikarie")
    await page.fill("#user-name", "Vikarie Växel")
    await page.fill("#user-password", "vikarie-pass-1")
    await page.check("#role-operator")
    await page.click("#user-save")
    await expect(page.locator('#users-table tr[data-user="vikarie"]')).to_contain_text("Telefonist")
    await expect(page.locator("#audit-table")).to_be_visible()
    await page.reload()
    await expect(page.locator("#audit-table")).to_contain_text("vikarie")
    await screenshot(page, "admin")
    await page.context.close()
    # A directory administrator sees fields, levels and the audit log, not users.
    page = await signed_in_page(browser, node, "katalog")
    await page.goto("/admin")
    await expect(page.locator('#access-table tr[data-field="mobile"]')).to_be_visible()
    await expect(page.locator("#users-section")).to_be_hidden()
    await page.context.close()


# ---------------------------------------------------------------------- calls (baresip)


@pytest.mark.peers
async def test_incoming_call_shows_the_callers_card(
    web_node: Node, browser: Browser, baresip_factory: BaresipFactory
) -> None:
    node, _ = web_node
    caller = await baresip_factory("karl", tone_hz=440)
    desk = await baresip_factory("desk", tone_hz=1000)
    await caller.register("2010", "pw-2010-secret", node.sip_addr)
    await desk.register("2001", "pw-2001-secret", node.sip_addr, answermode="manual")
    page = await signed_in_page(browser, node, "telefonist")
    await expect(page.locator("#live")).to_have_attribute("data-state", "live")

    await caller.dial(f"sip:2001@{node.sip_addr}")
    await desk.wait_event("CALL_INCOMING", 10)
    # The caller's number and directory card appear at once (R46.18).
    await expect(page.locator("#incoming")).to_contain_text("2010", timeout=2000)
    await expect(page.locator("#card-name")).to_have_text("Karl Eriksson", timeout=2000)
    await expect(page.locator("#mycall-state")).to_contain_text("2010")
    await screenshot(page, "konsol-inkommande")
    await caller.hangup()
    await caller.wait_event("CALL_CLOSED", 5)
    await expect(page.locator("#hangup")).to_be_disabled(timeout=3000)
    await page.context.close()


@pytest.mark.peers
async def test_click_to_call_rings_the_phone_and_hangs_up(
    web_node: Node, browser: Browser, baresip_factory: BaresipFactory
) -> None:
    node, ids = web_node
    desk = await baresip_factory("desk2", tone_hz=1000)
    lisa = await baresip_factory("lisa", tone_hz=440)
    await desk.register("2001", "pw-2001-secret", node.sip_addr, answermode="auto")
    await lisa.register("2011", "pw-2011-secret", node.sip_addr, answermode="manual")
    page = await signed_in_page(browser, node, "telefonist")
    await expect(page.locator("#live")).to_have_attribute("data-state", "live")
    await page.fill("#q", "Lisa Lindkvist")
    await page.locator(f'#results button[data-id="{ids["lisa.lindqvist"]}"]').click()
    await expect(page.locator("#card-name")).to_have_text("Lisa Lindqvist")
    await page.locator('#card button.call[data-number="2011"]').click()
    # The operator's own phone rings first (and answers), then the chosen number rings
    # (third-party call control: the operator's leg completes when the target answers).
    await lisa.wait_event("CALL_INCOMING", 10)
    await expect(page.locator(".phone-state[data-ext='2011']").first).to_have_attribute(
        "data-state", "ringing", timeout=3000
    )
    await expect(page.locator("#hangup")).to_be_enabled()
    await page.click("#hangup")
    await lisa.wait_event("CALL_CLOSED", 5)
    await desk.wait_event("CALL_CLOSED", 5)
    await page.context.close()
