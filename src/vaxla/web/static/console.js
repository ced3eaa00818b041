// The operator console: search as you type, person card, diversion, messages,
// live phone state and call forwarding, incoming call presentation, click-to-call,
// hang-up, transfer.
import {
  api, applyForwarding, applyPhoneState, diversionText, failed, forwardingNote, forwardingText,
  h, isoFromLocal, lang, LiveEvents, loadReasons, localTime, stateBadge, t, toast,
} from "./common.js";

const q = document.getElementById("q");
const results = document.getElementById("results");
const info = document.getElementById("result-info");
const card = document.getElementById("card");
const incoming = document.getElementById("incoming");
const hangupButton = document.getElementById("hangup");
const transferButton = document.getElementById("transfer");
const myCallState = document.getElementById("mycall-state");

let me = null;
let reasons = [];
let current = null; // the person on the card
let searchSeq = 0;
let searchAbort = null;
let myCall = null; // {call_id, caller, callee, state}
const phoneStates = new Map();

// ------------------------------------------------------------------ search

async function search() {
  const text = q.value.trim();
  const seq = ++searchSeq;
  searchAbort?.abort();
  if (!text) {
    results.replaceChildren();
    info.textContent = "";
    return;
  }
  searchAbort = new AbortController();
  try {
    const found = await api(
      "GET", `/api/v1/directory/people?limit=20&q=${encodeURIComponent(text)}`,
      undefined, searchAbort.signal,
    );
    if (seq !== searchSeq) return;
    renderResults(found.items);
    info.textContent = found.items.length ? t("console.hits", { n: found.items.length }) : t("console.nohits");
  } catch (error) {
    if (error.name !== "AbortError") failed(error);
  }
}

function extensionOf(person) {
  return (person.phones || []).find((p) => p.kind === "extension")?.number;
}

// The call forwarding in force on the person's extension (from the search/card status).
function forwardingOf(person, ext) {
  return (person.phone_status || []).find((s) => s.extension === ext)?.forwarding || [];
}

function renderResults(items) {
  results.replaceChildren(
    ...items.map((person, index) => {
      const ext = extensionOf(person);
      const button = h(
        "button",
        { type: "button", class: "hit", dataset: { id: person.id, index }, onclick: () => openCard(person.id) },
        h("span", { class: "name" }, `${person.first_name} ${person.last_name}`),
        ext ? h("span", { class: "ext" }, ext) : null,
        ext ? stateBadge(ext, phoneStates.get(ext)) : null,
        ext ? forwardingNote(ext, forwardingOf(person, ext)) : null,
        h("span", { class: "unit" }, (person.units || []).join(", ")),
        person.diversion ? h("span", { class: "div" }, diversionText(person.diversion)) : null,
      );
      return h("li", {}, button);
    }),
  );
  refreshStates(items.map(extensionOf).filter(Boolean));
}

q.addEventListener("input", search);
q.addEventListener("keydown", (event) => {
  if (event.key === "ArrowDown") {
    results.querySelector("button")?.focus();
    event.preventDefault();
  } else if (event.key === "Enter") {
    results.querySelector("button")?.click();
    event.preventDefault();
  } else if (event.key === "Escape") {
    q.value = "";
    search();
  }
});
results.addEventListener("keydown", (event) => {
  const buttons = [...results.querySelectorAll("button.hit")];
  const at = buttons.indexOf(document.activeElement);
  if (event.key === "ArrowDown" && at < buttons.length - 1) buttons[at + 1].focus();
  else if (event.key === "ArrowUp") (at > 0 ? buttons[at - 1] : q).focus();
  else if (event.key === "Escape") q.focus();
  else return;
  event.preventDefault();
});
document.addEventListener("keydown", (event) => {
  if (event.key === "/" && document.activeElement.tagName !== "INPUT") {
    q.focus();
    event.preventDefault();
  }
});

async function refreshStates(extensions) {
  if (!extensions.length) return;
  const { states } = await api("GET", `/api/v1/phone-states?extensions=${extensions.join(",")}`);
  for (const [ext, state] of Object.entries(states)) {
    phoneStates.set(ext, state);
    applyPhoneState(ext, state);
  }
}

// ------------------------------------------------------------------ the card

async function openCard(personId, focus = true) {
  try {
    const [person, messages] = await Promise.all([
      api("GET", `/api/v1/directory/people/${personId}`),
      api("GET", `/api/v1/directory/people/${personId}/messages`).catch(() => []),
    ]);
    current = person;
    renderCard(person, messages);
    if (focus) card.focus();
  } catch (error) {
    failed(error);
  }
}

function fact(label, ...value) {
  if (!value.length || value.every((v) => v === null || v === undefined || v === "")) return [];
  return [h("dt", {}, label), h("dd", {}, ...value)];
}

function renderCard(person, messages) {
  const ext = extensionOf(person);
  const phones = (person.phones || []).map((p) =>
    h("li", {},
      h("span", { class: "kind" }, t(`phone.kind.${p.kind}`)), " ",
      h("span", { class: "number" }, p.number), " ",
      h("button", { type: "button", class: "call", "data-number": p.number, onclick: () => clickToCall(p.number) }, t("console.call")),
    ));
  const custom = Object.entries(person.custom || {}).map(([k, v]) => fact(k, String(v)));
  const d = person.diversion;
  const forwarding = ext ? forwardingOf(person, ext) : [];
  card.hidden = false;
  const parts = [
    h("h2", { id: "card-name" }, `${person.first_name} ${person.last_name}`),
    person.titles?.length ? h("p", { class: "titles" }, person.titles.join(", ")) : null,
    ext ? h("p", {}, stateBadge(ext, phoneStates.get(ext)), " ", forwardingNote(ext, forwarding)) : null,
    h("dl", { class: "facts" },
      fact(t("card.numbers"), h("ul", { class: "phones" }, phones)),
      fact(t("card.units"), (person.units || []).join(", ")),
      fact(t("card.room"), person.room),
      fact(t("card.location"), person.location),
      fact(t("card.email"), person.email),
      fact(t("card.tasks"), (person.tasks || []).join(", ")),
      custom,
    ),
    h("p", { id: "shared", class: "hint" }),
    ext ? forwardingSection(ext, forwarding) : null,
    h("h3", {}, t("card.diversion")),
    h("p", { id: "card-diversion", class: "diversion-now", dataset: { set: d ? "yes" : "no" } },
      diversionText(d)),
    diversionForm(person),
    h("h3", {}, t("card.messages")),
    h("ul", { id: "messages", class: "messages" },
      messages.map((m) => h("li", {}, `${localTime(m.created_at)} – ${m.caller_name || ""} ${m.caller_number || ""}: ${m.text}`))),
    messageForm(person),
  ];
  card.replaceChildren(...parts.filter(Boolean));
  if (ext) showShared(ext, person.id);
}

// R65: the operator sees an extension's call forwarding and can remove it.
function forwardingSection(ext, forwarding) {
  const mayRemove = me?.roles?.some((r) => r === "operator" || r === "admin");
  return h("div", { class: "card-forwarding" },
    h("h3", {}, t("card.forwarding")),
    h("p", { id: "card-forwarding", class: "forwarding-now", dataset: { set: forwarding.length ? "yes" : "no" } },
      forwarding.length ? forwardingText(forwarding) : t("forwarding.none")),
    forwarding.length && mayRemove
      ? h("button", { type: "button", id: "fwd-remove", onclick: () => removeForwarding(ext) }, t("forwarding.remove"))
      : null,
  );
}

async function removeForwarding(ext) {
  try {
    await api("DELETE", `/api/v1/extensions/${encodeURIComponent(ext)}/forwarding`);
    toast(t("forwarding.removed"));
    if (current) openCard(current.id, false);
  } catch (error) {
    failed(error);
  }
}

async function showShared(ext, personId) {
  try {
    const status = await api("GET", `/api/v1/directory/extensions/${ext}/status`);
    const others = status.people.filter((p) => p.id !== personId);
    if (others.length) {
      document.getElementById("shared").textContent = t("card.shared", {
        names: others.map((p) => `${p.first_name} ${p.last_name}`).join(", "),
      });
    }
  } catch {
    /* shown without */
  }
}

function reasonOptions() {
  return reasons.filter((r) => r.active).map((r) => h("option", { value: r.code }, lang === "sv" ? r.label_sv : r.label_en));
}

function diversionForm(person) {
  const form = h("form", { id: "div-form", class: "stack" },
    h("label", { for: "div-reason" }, t("diversion.reason")),
    h("select", { id: "div-reason", required: true }, reasonOptions()),
    h("label", { for: "div-return" }, t("diversion.return")),
    h("input", { id: "div-return", type: "datetime-local" }),
    h("label", { for: "div-message" }, t("diversion.message")),
    h("input", { id: "div-message", maxlength: 500 }),
    h("div", { class: "buttons" },
      h("button", { type: "submit", id: "div-set" }, t("diversion.set")),
      h("button", { type: "button", id: "div-clear", onclick: () => clearDiversion(person.id) }, t("diversion.clear"))),
  );
  if (person.diversion) form.querySelector("#div-reason").value = person.diversion.reason;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api("PUT", `/api/v1/diversions/${person.id}`, {
        reason: form.querySelector("#div-reason").value,
        return_at: isoFromLocal(form.querySelector("#div-return").value),
        message: form.querySelector("#div-message").value,
      });
      toast(t("diversion.saved"));
      openCard(person.id, false);
    } catch (error) {
      failed(error);
    }
  });
  return form;
}

async function clearDiversion(personId) {
  try {
    await api("DELETE", `/api/v1/diversions/${personId}`);
    toast(t("diversion.cleared"));
    openCard(personId, false);
  } catch (error) {
    failed(error);
  }
}

function messageForm(person) {
  const form = h("form", { id: "msg-form", class: "stack" },
    h("label", { for: "msg-text" }, t("message.text")),
    h("textarea", { id: "msg-text", required: true, maxlength: 2000, rows: 2 }),
    h("label", { for: "msg-name" }, t("message.caller_name")),
    h("input", { id: "msg-name", maxlength: 200 }),
    h("label", { for: "msg-number" }, t("message.caller_number")),
    h("input", { id: "msg-number", maxlength: 40, inputmode: "tel", value: incoming.dataset.caller || "" }),
    h("button", { type: "submit", id: "msg-save" }, t("message.save")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api("POST", `/api/v1/directory/people/${person.id}/messages`, {
        text: form.querySelector("#msg-text").value,
        caller_name: form.querySelector("#msg-name").value,
        caller_number: form.querySelector("#msg-number").value,
      });
      toast(t("message.saved"));
      openCard(person.id, false);
    } catch (error) {
      failed(error);
    }
  });
  return form;
}

// ------------------------------------------------------------------ calls

async function clickToCall(number) {
  if (!me?.extension) {
    toast(t("console.no_extension"), "error");
    return;
  }
  try {
    const started = await api("POST", "/api/v1/calls/click-to-call", { from: me.extension, to: number });
    toast(t("console.calling", { number }));
    setMyCall({ call_id: started.call_id, caller: me.extension, callee: number, state: "ringing" });
  } catch (error) {
    failed(error);
  }
}

function setMyCall(call) {
  myCall = call;
  hangupButton.disabled = !call;
  transferButton.disabled = !call;
  if (!call) {
    myCallState.textContent = t("console.nocall");
    return;
  }
  const other = call.caller === me.extension ? call.callee : call.caller;
  myCallState.textContent = t(`console.call_${call.state}`, { number: other });
}

hangupButton.addEventListener("click", async () => {
  if (!myCall) return;
  try {
    await api("POST", `/api/v1/calls/${encodeURIComponent(myCall.call_id)}/hangup`);
  } catch (error) {
    failed(error);
  }
});

document.getElementById("transfer-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const to = document.getElementById("transfer-to").value.trim();
  if (!myCall || !to) return;
  try {
    await api("POST", `/api/v1/calls/${encodeURIComponent(myCall.call_id)}/transfer`, { to, transferor: me.extension });
    toast(t("console.transferred", { number: to }));
  } catch (error) {
    failed(error);
  }
});

async function presentIncoming(call) {
  incoming.hidden = false;
  incoming.dataset.caller = call.caller;
  incoming.replaceChildren(
    h("strong", {}, t("console.incoming", { number: call.caller })),
    h("span", { id: "incoming-name" }),
  );
  try {
    const found = await api("GET", `/api/v1/directory/people?limit=1&extension=${encodeURIComponent(call.caller)}`);
    const person = found.items[0] ||
      (await api("GET", `/api/v1/directory/people?limit=1&q=${encodeURIComponent(call.caller)}`)).items[0];
    if (person) {
      document.getElementById("incoming-name").textContent = ` – ${person.first_name} ${person.last_name}`;
      openCard(person.id, false);
    }
  } catch (error) {
    failed(error);
  }
}

function onCallState(call) {
  if (!me?.extension) return;
  const mine = call.caller === me.extension || call.callee === me.extension;
  if (!mine) return;
  if (call.state === "ended") {
    if (myCall?.call_id === call.call_id) setMyCall(null);
    if (incoming.dataset.callId === call.call_id) incoming.hidden = true;
    return;
  }
  setMyCall(call);
  if (call.callee === me.extension && call.state === "ringing" && incoming.dataset.callId !== call.call_id) {
    incoming.dataset.callId = call.call_id;
    presentIncoming(call);
  }
}

// ------------------------------------------------------------------ group diversion

async function setupGroups() {
  const groups = await api("GET", "/api/v1/directory/groups").catch(() => []);
  const select = document.getElementById("group-id");
  select.replaceChildren(...groups.map((g) => h("option", { value: g.id }, `${g.name} (${g.members})`)));
  const form = document.getElementById("group-form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const done = await api("PUT", `/api/v1/diversions/groups/${select.value}`, {
        reason: document.getElementById("group-reason").value,
        return_at: isoFromLocal(document.getElementById("group-return").value),
        message: document.getElementById("group-message").value,
      });
      toast(t("console.group_done", { n: done.person_ids.length }));
    } catch (error) {
      failed(error);
    }
  });
  document.getElementById("group-clear").addEventListener("click", async () => {
    try {
      const done = await api("DELETE", `/api/v1/diversions/groups/${select.value}`);
      toast(t("console.group_cleared", { n: done.person_ids.length }));
    } catch (error) {
      failed(error);
    }
  });
}

// ------------------------------------------------------------------ live

function onEvent(m) {
  const data = m.data;
  if (m.topic === "phone.state") {
    phoneStates.set(data.extension, data.state);
    applyPhoneState(data.extension, data.state);
  } else if (m.topic === "call.state") {
    onCallState(data);
  } else if (m.topic === "forwarding.changed") {
    if (data.forwarding) applyForwarding(data.extension, data.forwarding);
    else if (results.querySelector(`.forwarding[data-ext="${CSS.escape(data.extension)}"]`)) search();
    if (current && extensionOf(current) === data.extension) openCard(current.id, false);
  } else if (m.topic === "diversion.changed" || m.topic === "message.left") {
    if (current && data.person_id === current.id) openCard(current.id, false);
    if (m.topic === "diversion.changed" && results.querySelector(`[data-id="${data.person_id}"]`)) search();
  }
}

async function main() {
  me = await api("GET", "/api/v1/me");
  reasons = await loadReasons([document.getElementById("group-reason")]);
  new LiveEvents(onEvent, () => {
    search();
    if (current) openCard(current.id, false);
  });
  setupGroups();
  if (me.extension) {
    const calls = await api("GET", "/api/v1/me/calls");
    if (calls.length) onCallState(calls[0]);
  }
}

main().catch(failed);
