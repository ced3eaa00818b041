// Shared helpers of Växla's pages: texts, API calls with the CSRF token,
// safe DOM building, messages, and the live event stream with resume.

const texts = JSON.parse(document.getElementById("i18n").textContent);
const csrf = document.querySelector('meta[name="csrf-token"]').content;
export const lang = document.documentElement.lang || "sv";

export function t(key, params = {}) {
  const text = texts[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(params[name] ?? ""));
}

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

export async function api(method, path, body, signal) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = csrf;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
    signal,
  });
  if (response.status === 401) {
    location.href = "/logga-in?next=" + encodeURIComponent(location.pathname);
    throw new ApiError(401, null);
  }
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// h("p", {class: "x"}, "text", child): elements with text nodes only (no HTML injection).
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

let toastTimer = 0;
export function toast(message, kind = "info") {
  const box = document.getElementById("toast");
  box.textContent = message;
  box.dataset.kind = kind;
  box.classList.add("shown");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => box.classList.remove("shown"), 4000);
}

export function failed(error) {
  const id = error?.body?.error_id;
  const key = id ? `error.${id}` : "error.generic";
  toast(texts[key] ? t(key) : t("error.generic") + (id ? ` (${id})` : ""), "error");
}

export function localTime(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleString(lang === "sv" ? "sv-SE" : "en-GB", {
    dateStyle: "short",
    timeStyle: "short",
  });
}

// datetime-local value -> ISO with the browser's zone, or null.
export function isoFromLocal(value) {
  return value ? new Date(value).toISOString() : null;
}

export const PHONE_STATES = ["free", "ringing", "busy", "unregistered"];

export function stateBadge(extension, state) {
  return h(
    "span",
    { class: "phone-state", dataset: { ext: extension, state: state || "unknown" } },
    t(`phone.${state || "unknown"}`),
  );
}

export function applyPhoneState(extension, state) {
  for (const el of document.querySelectorAll(`.phone-state[data-ext="${CSS.escape(extension)}"]`)) {
    el.dataset.state = state;
    el.textContent = t(`phone.${state}`);
  }
}

// Call forwarding in force on an extension (R83): [{kind, target, external}],
// unconditional first. "Vidarekopplad till 1002; Vid upptaget: externt nummer".
export function forwardingText(forwarding) {
  if (!forwarding?.length) return "";
  return forwarding
    .map((f) => t(`forwarding.status.${f.kind}`, { target: f.target ?? t("forwarding.external") }))
    .join("; ");
}

export function forwardingNote(extension, forwarding) {
  return h(
    "span",
    { class: "forwarding", dataset: { ext: extension, set: forwarding?.length ? "yes" : "no" } },
    forwardingText(forwarding),
  );
}

export function applyForwarding(extension, forwarding) {
  for (const el of document.querySelectorAll(`.forwarding[data-ext="${CSS.escape(extension)}"]`)) {
    el.dataset.set = forwarding?.length ? "yes" : "no";
    el.textContent = forwardingText(forwarding);
  }
}

// The live event stream: reconnects with ?after=<last position> so nothing is missed.
export class LiveEvents {
  constructor(onEvent, onGap) {
    this.onEvent = onEvent;
    this.onGap = onGap;
    this.position = null;
    this.delay = 500;
    this.indicator = document.getElementById("live");
    this.connect();
  }

  show(state) {
    if (!this.indicator) return;
    this.indicator.dataset.state = state;
    this.indicator.textContent = t(`live.${state}`);
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const after = this.position === null ? "" : `?after=${this.position}`;
    const ws = new WebSocket(`${scheme}//${location.host}/api/v1/events${after}`);
    this.ws = ws;
    ws.addEventListener("message", (msg) => {
      const m = JSON.parse(msg.data);
      if (m.type === "hello") {
        if (this.position === null) this.position = m.position;
        this.delay = 500;
        this.show("live");
      } else if (m.type === "gap") {
        this.position = m.position;
        this.onGap?.();
      } else if (m.type === "event") {
        this.position = m.position;
        this.onEvent(m);
      }
    });
    ws.addEventListener("close", () => {
      this.show("offline");
      setTimeout(() => this.connect(), this.delay);
      this.delay = Math.min(this.delay * 2, 5000);
    });
  }
}

export async function loadReasons(selects, { withCodes = false } = {}) {
  // withCodes: name the desk-phone code of each reason too, "Lunch (*23*1#)"
  const reasons = await api("GET", "/api/v1/diversions/reasons");
  const label = (r) => {
    const text = lang === "sv" ? r.label_sv : r.label_en;
    return withCodes && r.phone_number ? `${text} (*23*${r.phone_number}#)` : text;
  };
  for (const select of selects) {
    select.replaceChildren(
      ...reasons.filter((r) => r.active).map((r) => h("option", { value: r.code }, label(r))),
    );
  }
  return reasons;
}

export function diversionText(d) {
  if (!d) return t("diversion.none");
  return lang === "sv" ? d.summary_sv : d.summary_en;
}
