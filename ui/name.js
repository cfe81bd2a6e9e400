// `#/names/{hostname}`: one name's fields, metadata and history, its `terraform import`
// command, editing its metadata (a merge patch with If-Match) and releasing it.

import { Problem, authMode, call, session } from "./api.js";
import { lacks, page, problemNotice } from "./app.js";
import { copy, field, fieldError, h, show, when } from "./dom.js";
import { tagList } from "./search.js";
import { tagEditor } from "./generate.js";

export async function namePage(hostname, current) {
  page(hostname, h("p", { role: "status" }, "Loading…"));
  let scopes = current.scopes;
  let record;
  let etag;
  try {
    if (authMode() === "vault") {
      // A Vault policy may grant this name what it does not grant the whole registry.
      scopes = (await session(hostname)).scopes;
    }
    const answer = await call("GET", `/names/${encodeURIComponent(hostname)}`);
    record = answer.body;
    etag = answer.headers.get("ETag");
  } catch (e) {
    page(hostname, problemNotice(e), h("p", {}, h("a", { href: "#/" }, "Back to the names")));
    return;
  }
  render(record, etag, scopes);
}

function render(record, etag, scopes, notice) {
  const canEdit = scopes.includes("annotate") && record.status === "issued";
  const canRelease = scopes.includes("admin") && record.status === "issued";
  // A Terraform resource label: letters, digits and underscores, not starting with a digit.
  const label = record.hostname.replace(/[^a-z0-9_]/g, "_").replace(/^([0-9])/, "n_$1");
  const importCommand = `terraform import naming.${label} ${record.hostname}`;
  const copied = h("span", { class: "hint", role: "status" });
  const facts = [
    ["Status", h("span", { class: `status ${record.status}` }, record.status)],
    ["Number", record.number],
    ["Application", record.application],
    ["Role", record.role],
    ["Environment", record.environment],
    ["Owner", record.owner || "—"],
    ["Description", record.description || "—"],
    ["Tags", tagList(record.tags) || "—"],
    ["Created", when(record.created_at)],
    ["Created by", record.created_by || "—"],
  ];
  if (record.status === "released") {
    facts.push(["Released", when(record.released_at)], ["Released by", record.released_by || "—"]);
  }
  page(record.hostname,
    notice || null,
    h("section", { class: "card", "aria-labelledby": "facts-heading" },
      h("h2", { id: "facts-heading" }, "Details"),
      h("dl", { class: "facts" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]))),
    h("section", { class: "card", "aria-labelledby": "import-heading" },
      h("h2", { id: "import-heading" }, "Manage it with Terraform"),
      h("p", {}, "Adopt this name into a configuration that declares ", h("code", {}, `resource "naming" "${label}"`), ":"),
      h("div", { class: "copyable" },
        h("code", { id: "import-command" }, importCommand),
        h("button", { type: "button", class: "secondary", onclick: async () => {
          copied.textContent = (await copy(importCommand)) ? "Copied." : "Select the command and copy it.";
        } }, "Copy"), copied)),
    editSection(record, etag, scopes, canEdit),
    releaseSection(record, scopes, canRelease),
    h("section", { class: "card", "aria-labelledby": "history-heading" },
      h("h2", { id: "history-heading" }, "History"),
      h("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": "History" },
        h("table", {},
          h("thead", {}, h("tr", {}, ["When", "What", "Who", "Changed"].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {}, (record.history || []).slice().reverse().map((e) => h("tr", {},
            h("td", {}, when(e.at)), h("td", {}, e.action), h("td", {}, e.actor || "—"),
            h("td", {}, (e.changed || []).join(", ")))))))),
    h("p", {}, h("a", { href: "#/" }, "Back to the names")));
}

/** Owner, description and tags, sent as a merge patch of what changed. */
function editSection(record, etag, scopes, canEdit) {
  const owner = field("Owner", "owner", { maxlength: 256 });
  owner.input.value = record.owner || "";
  const description = field("Description", "description", { tag: "textarea", rows: 2, maxlength: 1024 });
  description.input.value = record.description || "";
  const tags = tagEditor(record.tags || {});
  const outcome = h("div", { "aria-live": "polite" });
  const save = h("button", { type: "submit", disabled: !canEdit }, "Save changes");
  const form = h("form", {
    class: "card",
    "aria-labelledby": "edit-heading",
    onsubmit: async (event) => {
      event.preventDefault();
      for (const f of [owner, description]) fieldError(f, null);
      tags.clearErrors();
      const patch = {};
      const text = (f, old) => {
        const v = f.input.value.trim();
        if (v !== (old || "")) return v === "" ? null : v;
        return undefined;
      };
      const o = text(owner, record.owner);
      const d = text(description, record.description);
      if (o !== undefined) patch.owner = o;
      if (d !== undefined) patch.description = d;
      const tagPatch = tags.patch(record.tags || {});
      if (Object.keys(tagPatch).length) patch.tags = tagPatch;
      if (!Object.keys(patch).length) {
        show(outcome, h("p", { class: "notice" }, "Nothing changed."));
        return;
      }
      save.disabled = true;
      try {
        const answer = await call("PATCH", `/names/${encodeURIComponent(record.hostname)}`, {
          json: patch,
          contentType: "application/merge-patch+json",
          headers: { "If-Match": etag },
        });
        render(answer.body, answer.headers.get("ETag"), scopes,
          h("p", { class: "notice ok", role: "status" }, "Saved."));
      } catch (e) {
        save.disabled = false;
        if (e instanceof Problem && e.status === 412) {
          show(outcome, h("div", { class: "notice error-box", role: "alert" },
            h("p", {}, "Someone else changed this name since this page loaded, so nothing was saved. ", e.message),
            h("button", { type: "button", onclick: () => namePage(record.hostname, { scopes }) }, "Reload the name")));
          return;
        }
        const at = e instanceof Problem && e.field;
        if (at === "owner") fieldError(owner, e.message);
        else if (at === "description") fieldError(description, e.message);
        else if (at && at.startsWith("tags")) tags.showError(at, e.message);
        else show(outcome, problemNotice(e));
      }
    },
  },
  h("h2", { id: "edit-heading" }, "Edit metadata"),
  canEdit ? null : h("p", { class: "notice" }, record.status === "released" ? "A released name keeps its metadata as it was." : lacks("annotate")),
  h("fieldset", { disabled: !canEdit, class: "plain" },
    h("legend", { class: "offscreen" }, "Metadata"),
    h("div", { class: "grid" }, owner.wrap, description.wrap), tags.element),
  outcome,
  h("div", { class: "actions" }, save));
  return form;
}

/** Releasing, after a confirmation that names the hostname. */
function releaseSection(record, scopes, canRelease) {
  const outcome = h("div", { "aria-live": "polite" });
  const confirm = h("button", { type: "submit", class: "danger", value: "release" }, `Release ${record.hostname}`);
  const dialog = h("dialog", { "aria-labelledby": "release-title", class: "card" },
    h("form", { method: "dialog" },
      h("h2", { id: "release-title" }, `Release ${record.hostname}?`),
      h("p", {}, "The name stays in the registry as released and is never issued again. Its machine should be gone."),
      h("div", { class: "actions" },
        confirm,
        h("button", { type: "submit", class: "secondary", value: "cancel", autofocus: true }, "Cancel"))));
  dialog.addEventListener("close", async () => {
    if (dialog.returnValue !== "release") return;
    try {
      const answer = await call("DELETE", `/names/${encodeURIComponent(record.hostname)}`);
      render(answer.body, answer.headers.get("ETag"), scopes,
        h("p", { class: "notice ok", role: "status" }, `Released ${record.hostname}.`));
    } catch (e) {
      show(outcome, problemNotice(e));
    }
  });
  const note = record.status === "released" ? "This name is released." : canRelease ? null : lacks("admin");
  return h("section", { class: "card", "aria-labelledby": "release-heading" },
    h("h2", { id: "release-heading" }, "Release"),
    note ? h("p", { class: "notice" }, note) : null,
    h("button", { type: "button", class: "danger", disabled: !canRelease, onclick: () => {
      dialog.returnValue = "";
      dialog.showModal();
    } }, "Release…"),
    outcome, dialog);
}
