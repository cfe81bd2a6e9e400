// `#/generate`: the three fields (suggesting values already used), count and metadata, a
// live preview of the next names (a dry run: nothing is written), and the names issued.

import { Problem, call, idempotencyKey, query } from "./api.js";
import { lacks, may, page, problemNotice } from "./app.js";
import { field, fieldError, h, show } from "./dom.js";

/** Editable tag rows: `{ element, patch(old), values(), showError(field, message), clearErrors() }`. */
export function tagEditor(initial) {
  const rows = h("div", { class: "tag-rows" });
  const list = [];
  let counter = 0;
  function add(key = "", value = "") {
    counter += 1;
    const k = field("Tag key", `tag-key-${counter}`, { placeholder: "team" });
    const v = field("Tag value", `tag-value-${counter}`, { placeholder: "web" });
    k.input.value = key;
    v.input.value = value;
    const row = { k, v, element: null };
    row.element = h("div", { class: "tag-row" }, k.wrap, v.wrap,
      h("button", { type: "button", class: "secondary", "aria-label": `Remove tag ${key || counter}`, onclick: () => {
        list.splice(list.indexOf(row), 1);
        row.element.remove();
        addButton.focus();
      } }, "Remove"));
    list.push(row);
    rows.append(row.element);
    return row;
  }
  const addButton = h("button", { type: "button", class: "secondary", onclick: () => add().k.input.focus() }, "Add tag");
  const general = h("p", { class: "error", hidden: true, id: "tags-error" });
  for (const [key, value] of Object.entries(initial)) add(key, value);
  const values = () => {
    const out = {};
    for (const row of list) {
      const key = row.k.input.value.trim();
      if (key) out[key] = row.v.input.value.trim();
    }
    return out;
  };
  return {
    element: h("fieldset", { class: "tags-editor", "aria-describedby": general.id }, h("legend", {}, "Tags"), rows, general, addButton),
    values,
    /** A merge patch turning `old` into the rows: changed keys set, removed ones null. */
    patch(old) {
      const now = values();
      const patch = {};
      for (const [k, v] of Object.entries(now)) if (old[k] !== v) patch[k] = v;
      for (const k of Object.keys(old)) if (!(k in now)) patch[k] = null;
      return patch;
    },
    /** Shows a problem about `tags` or `tags.{key}` at the row with that key. */
    showError(at, message) {
      const key = at.startsWith("tags.") ? at.slice(5) : null;
      const row = key && list.find((r) => r.k.input.value.trim() === key);
      if (row) {
        fieldError(row.v, message);
        row.v.input.focus();
      } else {
        general.textContent = message;
        general.hidden = false;
      }
    },
    clearErrors() {
      for (const row of list) fieldError(row.v, null);
      general.hidden = true;
    },
  };
}

export async function generatePage(params) {
  const f = {
    application: field("Application", "application", { list: "used-application", required: true, autocomplete: "off", spellcheck: "false" }),
    role: field("Role", "role", { list: "used-role", required: true, autocomplete: "off", spellcheck: "false" }),
    environment: field("Environment", "environment", { list: "used-environment", required: true, autocomplete: "off", spellcheck: "false" }),
    count: field("How many", "count", { type: "number", min: 1, max: 100, value: "1", required: true }),
    owner: field("Owner", "owner", { maxlength: 256 }),
    description: field("Description", "description", { tag: "textarea", rows: 2, maxlength: 1024 }),
  };
  for (const name of ["application", "role", "environment"]) f[name].input.value = params.get(name) || "";
  const lists = Object.fromEntries(["application", "role", "environment"].map((n) => [n, h("datalist", { id: `used-${n}` })]));
  const tags = tagEditor({});
  const preview = h("div", { class: "preview", "aria-live": "polite", id: "preview" });
  const result = h("section", { "aria-live": "polite", id: "result" });
  const submit = h("button", { type: "submit" }, "Generate");

  const body = (dryRun) => {
    const b = {
      application: f.application.input.value.trim(),
      role: f.role.input.value.trim(),
      environment: f.environment.input.value.trim(),
      count: Number(f.count.input.value || 1),
    };
    if (f.owner.input.value.trim()) b.owner = f.owner.input.value.trim();
    if (f.description.input.value.trim()) b.description = f.description.input.value.trim();
    const t = tags.values();
    if (Object.keys(t).length) b.tags = t;
    if (dryRun) b.dry_run = true;
    return b;
  };
  const clearErrors = () => {
    for (const x of Object.values(f)) fieldError(x, null);
    tags.clearErrors();
  };
  /** Shows a problem at the field it names; answers whether one was found. */
  const atField = (e) => {
    const at = e instanceof Problem && e.field;
    if (at && f[at]) {
      fieldError(f[at], e.message);
      return true;
    }
    if (at && at.startsWith("tags")) {
      tags.showError(at, e.message);
      return true;
    }
    return false;
  };

  // The preview follows the form: the latest answer wins, earlier ones are dropped.
  let asked = 0;
  let timer = null;
  async function refreshPreview() {
    const b = body(true);
    if (!b.application || !b.role || !b.environment) {
      show(preview, h("p", { class: "hint" }, "Fill in the application, role and environment to see the next names."));
      return;
    }
    const mine = ++asked;
    try {
      const { body: answer } = await call("POST", "/generate-name", { json: b });
      if (mine !== asked) return;
      clearErrors();
      show(preview, h("p", {}, answer.hostnames.length > 1 ? "The next names would be " : "The next name would be ",
        answer.hostnames.map((n, i) => [i ? ", " : "", h("strong", {}, n)]), "."),
      h("p", { class: "hint" }, "A preview: nothing is reserved until you generate."));
    } catch (e) {
      if (mine !== asked) return;
      clearErrors();
      show(preview, atField(e) ? h("p", { class: "hint" }, "No preview until the form is valid.") : problemNotice(e));
    }
  }
  const schedule = () => {
    clearTimeout(timer);
    timer = setTimeout(refreshPreview, 300);
  };

  async function suggest(level) {
    const q = level === "application" ? {} : level === "role"
      ? { application: f.application.input.value.trim() }
      : { application: f.application.input.value.trim(), role: f.role.input.value.trim() };
    if (level !== "application" && Object.values(q).some((v) => !v)) return show(lists[level]);
    try {
      const { body: answer } = await call("GET", `/suggestions${query(q)}`);
      show(lists[level], answer.values.map((v) => h("option", { value: v })));
    } catch {
      show(lists[level]); // Suggestions are a convenience: a refusal here leaves them out.
    }
  }

  const form = h("form", {
    class: "card",
    "aria-describedby": "preview",
    oninput: schedule,
    onsubmit: async (event) => {
      event.preventDefault();
      clearErrors();
      submit.disabled = true;
      show(result, h("p", { role: "status" }, "Generating…"));
      try {
        const { body: answer } = await call("POST", "/generate-name", {
          json: body(false),
          headers: { "Idempotency-Key": idempotencyKey() },
        });
        show(result, h("div", { class: "card ok" },
          h("h2", { tabindex: "-1", id: "result-heading" }, answer.hostnames.length > 1 ? "Names issued" : "Name issued"),
          h("ul", { class: "issued" }, answer.hostnames.map((n) => h("li", {}, h("a", { href: `#/names/${encodeURIComponent(n)}` }, n))))));
        result.querySelector("h2").focus();
        schedule();
      } catch (e) {
        show(result, atField(e) ? null : problemNotice(e));
      } finally {
        submit.disabled = !may("generate");
      }
    },
  },
  h("fieldset", { class: "plain", disabled: !may("generate") },
    h("legend", { class: "offscreen" }, "What the name is for"),
    h("div", { class: "grid" }, f.application.wrap, f.role.wrap, f.environment.wrap, f.count.wrap),
    h("div", { class: "grid" }, f.owner.wrap, f.description.wrap),
    tags.element, Object.values(lists)),
  preview,
  h("div", { class: "actions" }, submit));
  f.application.input.addEventListener("change", () => suggest("role"));
  f.role.input.addEventListener("change", () => suggest("environment"));
  page("Generate names", may("generate") ? null : h("p", { class: "notice" }, lacks("generate")), form, result);
  if (!may("generate")) {
    submit.disabled = true;
    return;
  }
  await Promise.all([suggest("application"), suggest("role"), suggest("environment"), refreshPreview()]);
}
