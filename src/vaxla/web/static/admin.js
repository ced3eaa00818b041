// Administration: users and roles, extensions, directory fields and access
// levels (R90), and the audit log. Sections show what the user's roles allow.
import { api, failed, h, localTime, t, toast } from "./common.js";

let me = null;
let roles = [];

function can(role) {
  return me.roles.includes("admin") || me.roles.includes(role);
}

// ------------------------------------------------------------------ users

async function showUsers() {
  const users = await api("GET", "/api/v1/users");
  document.querySelector("#users-table tbody").replaceChildren(
    ...users.map((u) => h("tr", { dataset: { user: u.username } },
      h("td", {}, u.username),
      h("td", {}, u.display_name),
      h("td", {}, u.roles.map((r) => t(`role.${r}`)).join(", ")),
      h("td", {}, u.extension || ""),
      h("td", {}, !u.active ? t("admin.inactive")
        : u.locked_until && new Date(u.locked_until) > new Date() ? t("admin.locked") : t("admin.active")),
      h("td", { class: "buttons" },
        h("button", { type: "button", onclick: () => editUser(u) }, t("action.edit")),
        u.locked_until ? h("button", { type: "button", onclick: () => changeUser(u.id, { unlock: true }) }, t("admin.unlock")) : null,
        h("button", { type: "button", onclick: () => removeUser(u) }, t("action.delete"))),
    )),
  );
}

function roleBoxes() {
  document.getElementById("user-roles").append(
    ...roles.map((r) => h("label", { class: "check" },
      h("input", { type: "checkbox", name: "role", value: r.role, id: `role-${r.role}` }), " ", r.label)),
  );
}

function editUser(u) {
  document.getElementById("user-form-title").textContent = t("admin.user_edit", { name: u.username });
  document.getElementById("user-id").value = u.id;
  document.getElementById("user-username").value = u.username;
  document.getElementById("user-username").disabled = true;
  document.getElementById("user-name").value = u.display_name;
  document.getElementById("user-extension").value = u.extension || "";
  for (const box of document.querySelectorAll("#user-roles input")) box.checked = u.roles.includes(box.value);
  document.getElementById("user-name").focus();
}

async function changeUser(id, changes) {
  try {
    await api("PATCH", `/api/v1/users/${id}`, changes);
    toast(t("admin.saved"));
    showUsers();
  } catch (error) {
    failed(error);
  }
}

async function removeUser(u) {
  if (!confirm(t("admin.confirm_delete", { name: u.username }))) return;
  try {
    await api("DELETE", `/api/v1/users/${u.id}`);
    showUsers();
  } catch (error) {
    failed(error);
  }
}

const userForm = document.getElementById("user-form");
userForm.addEventListener("reset", () => {
  document.getElementById("user-id").value = "";
  document.getElementById("user-username").disabled = false;
  document.getElementById("user-form-title").textContent = t("admin.user_new");
});
userForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const id = document.getElementById("user-id").value;
  const chosen = [...document.querySelectorAll("#user-roles input:checked")].map((b) => b.value);
  const password = document.getElementById("user-password").value;
  const body = {
    display_name: document.getElementById("user-name").value,
    roles: chosen,
    extension: document.getElementById("user-extension").value || null,
  };
  try {
    if (id) {
      await api("PATCH", `/api/v1/users/${id}`, { ...body, extension: body.extension || "" });
      if (password) await api("PUT", `/api/v1/users/${id}/password`, { password });
    } else {
      await api("POST", "/api/v1/users", { ...body, username: document.getElementById("user-username").value, password });
    }
    userForm.reset();
    toast(t("admin.saved"));
    showUsers();
  } catch (error) {
    failed(error);
  }
});

// ------------------------------------------------------------------ extensions

async function showExtensions() {
  const items = await api("GET", "/api/v1/extensions");
  document.querySelector("#ext-table tbody").replaceChildren(
    ...items.map((e) => h("tr", {},
      h("td", {}, e.number), h("td", {}, e.name),
      h("td", {}, e.registered_contacts ? t("admin.yes") : t("admin.no")),
      h("td", {}, h("button", { type: "button", onclick: () => removeExtension(e.number) }, t("action.delete"))))),
  );
}

async function removeExtension(number) {
  if (!confirm(t("admin.confirm_delete", { name: number }))) return;
  try {
    await api("DELETE", `/api/v1/extensions/${number}`);
    showExtensions();
  } catch (error) {
    failed(error);
  }
}

document.getElementById("ext-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    await api("POST", "/api/v1/extensions", {
      number: document.getElementById("ext-number").value,
      name: document.getElementById("ext-name").value,
      password: document.getElementById("ext-password").value,
    });
    event.target.reset();
    toast(t("admin.saved"));
    showExtensions();
  } catch (error) {
    failed(error);
  }
});

// ------------------------------------------------------------------ directory fields and access

function levelSelect(value, onchange, label) {
  const select = h("select", { "aria-label": label, onchange },
    [1, 2, 3, 4].map((n) => h("option", { value: n }, t(`level.${n}`))));
  select.value = String(value);
  return select;
}

async function showAccess() {
  const [access, fields] = await Promise.all([
    api("GET", "/api/v1/directory/access"),
    api("GET", "/api/v1/directory/fields"),
  ]);
  document.querySelector("#access-table tbody").replaceChildren(
    ...access.filter((a) => !a.field.startsWith("custom.")).map((a) => {
      const row = h("tr", { dataset: { field: a.field } }, h("td", {}, a.field));
      const save = async () => {
        const [view, edit] = row.querySelectorAll("select");
        try {
          await api("PUT", `/api/v1/directory/access/${a.field}`, { view_level: Number(view.value), edit_level: Number(edit.value) });
          toast(t("admin.saved"));
        } catch (error) {
          failed(error);
        }
      };
      row.append(h("td", {}, levelSelect(a.view_level, save, t("admin.view_level"))),
        h("td", {}, levelSelect(a.edit_level, save, t("admin.edit_level"))));
      return row;
    }),
  );
  document.getElementById("custom-fields").replaceChildren(
    ...fields.map((f) => h("li", {}, `${f.key} – ${f.label_sv} / ${f.label_en} (${f.type}, ${t(`level.${f.view_level}`)})`)),
  );
}

document.getElementById("field-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    await api("POST", "/api/v1/directory/fields", {
      key: document.getElementById("field-key").value,
      label_sv: document.getElementById("field-sv").value,
      label_en: document.getElementById("field-en").value,
      type: document.getElementById("field-type").value,
    });
    event.target.reset();
    toast(t("admin.saved"));
    showAccess();
  } catch (error) {
    failed(error);
  }
});

// ------------------------------------------------------------------ audit

async function showAudit() {
  const entries = await api("GET", "/api/v1/directory/audit?limit=100");
  document.querySelector("#audit-table tbody").replaceChildren(
    ...entries.map((e) => h("tr", {},
      h("td", {}, localTime(e.at)), h("td", {}, e.actor), h("td", {}, e.action),
      h("td", {}, `${e.entity} ${e.entity_id}`),
      h("td", { class: "change" }, e.after ? JSON.stringify(e.after).slice(0, 200) : ""))),
  );
}

async function main() {
  me = await api("GET", "/api/v1/me");
  for (const section of document.querySelectorAll("section[data-needs]")) {
    section.hidden = !can(section.dataset.needs);
  }
  if (can("admin")) {
    roles = await api("GET", "/api/v1/roles");
    roleBoxes();
    await Promise.all([showUsers(), showExtensions()]);
  }
  if (can("directory-admin")) await Promise.all([showAccess(), showAudit()]);
}

main().catch(failed);
