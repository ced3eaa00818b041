// Self-service ("Mina sidor", R12): own numbers and settings, own diversion,
// call forwarding targets, phone password and voicemail PIN, language.
import { api, diversionText, failed, h, isoFromLocal, LiveEvents, loadReasons, t, toast } from "./common.js";

let me = null;

function fact(label, value) {
  return value ? [h("dt", {}, label), h("dd", {}, value)] : [];
}

async function showMe() {
  me = await api("GET", "/api/v1/me");
  let person = null;
  if (me.person_id) person = await api("GET", `/api/v1/directory/people/${me.person_id}`).catch(() => null);
  const numbers = (person?.phones || []).map((p) => `${t(`phone.kind.${p.kind}`)} ${p.number}`).join(", ");
  document.getElementById("me-facts").replaceChildren(
    ...fact(t("mypages.name"), me.display_name),
    ...fact(t("mypages.username"), me.subject),
    ...fact(t("mypages.extension"), me.extension),
    ...fact(t("card.numbers"), numbers),
    ...fact(t("card.units"), (person?.units || []).join(", ")),
    ...fact(t("card.room"), person?.room),
    ...fact(t("mypages.roles"), me.roles.map((r) => t(`role.${r}`)).join(", ")),
  );
  document.getElementById("language").value = me.language;
  await showDiversion();
  await showForwarding();
}

function forwardingPath() {
  return `/api/v1/extensions/${encodeURIComponent(me.extension)}/forwarding`;
}

// Call forwarding of the own extension (switched off rules show as empty).
async function showForwarding() {
  if (!me.extension) return;
  const fwd = await api("GET", forwardingPath());
  for (const input of document.querySelectorAll("#fwd-form input[data-kind]")) {
    const rule = fwd.rules.find((r) => r.kind === input.dataset.kind && r.enabled);
    input.value = rule ? rule.target : "";
  }
  document.getElementById("fwd-seconds").value = fwd.no_answer_seconds;
}

async function showDiversion() {
  const now = document.getElementById("my-diversion");
  if (!me.person_id) {
    now.textContent = t("mypages.no_person");
    document.getElementById("my-div-form").hidden = true;
    return;
  }
  const { diversion } = await api("GET", `/api/v1/diversions/${me.person_id}`);
  now.textContent = diversionText(diversion);
}

document.getElementById("my-div-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    await api("PUT", `/api/v1/diversions/${me.person_id}`, {
      reason: document.getElementById("my-reason").value,
      return_at: isoFromLocal(document.getElementById("my-return").value),
      message: document.getElementById("my-message").value,
    });
    toast(t("diversion.saved"));
    showDiversion();
  } catch (error) {
    failed(error);
  }
});

document.getElementById("my-div-clear").addEventListener("click", async () => {
  try {
    await api("DELETE", `/api/v1/diversions/${me.person_id}`);
    toast(t("diversion.cleared"));
    showDiversion();
  } catch (error) {
    failed(error);
  }
});

document.getElementById("fwd-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!me.extension) {
    toast(t("error.no-extension"), "error");
    return;
  }
  const rules = [...document.querySelectorAll("#fwd-form input[data-kind]")]
    .filter((input) => input.value.trim())
    .map((input) => ({ kind: input.dataset.kind, target: input.value.replace(/[\s-]/g, ""), enabled: true }));
  const seconds = Number(document.getElementById("fwd-seconds").value) || 20;
  try {
    await api("PUT", forwardingPath(), { rules, no_answer_seconds: seconds });
    toast(t("mypages.forwarding_saved"));
  } catch (error) {
    failed(error);
  }
});

function simpleForm(id, call, done) {
  document.getElementById(id).addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await call();
      event.target.reset();
      toast(done);
    } catch (error) {
      failed(error);
    }
  });
}

simpleForm("sip-form", () => api("PUT", "/api/v1/me/sip-password", { password: document.getElementById("sip-password").value }), t("mypages.sip_changed"));
simpleForm("pin-form", () => api("PUT", "/api/v1/me/voicemail-pin", { pin: document.getElementById("vm-pin").value }), t("mypages.pin_changed"));
simpleForm("pw-form", () => api("PUT", "/api/v1/me/password", {
  current: document.getElementById("pw-current").value,
  password: document.getElementById("pw-new").value,
}), t("mypages.password_changed"));

document.getElementById("language").addEventListener("change", async (event) => {
  try {
    await api("PATCH", "/api/v1/me", { language: event.target.value });
    location.reload();
  } catch (error) {
    failed(error);
  }
});

async function main() {
  await loadReasons([document.getElementById("my-reason")], { withCodes: true });
  await showMe();
  new LiveEvents((m) => {
    if (m.topic === "diversion.changed" && me?.person_id && m.data.person_id === me.person_id) showDiversion();
    if (m.topic === "forwarding.changed" && me?.extension && m.data.extension === me.extension) showForwarding();
  });
}

main().catch(failed);
