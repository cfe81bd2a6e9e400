// `#/`: the registry, searched with the API's filters, a page at a time, and exported with
// the same filters.

import { Problem, call, query } from "./api.js";
import { lacks, may, page, problemNotice } from "./app.js";
import { field, fieldError, h, show, when } from "./dom.js";

const PAGE_SIZE = 25;

/** The search form's fields: [name, label, input properties, hint]. */
const FILTERS = [
  ["prefix", "Hostname starts with", { placeholder: "web-app-prod" }],
  ["application", "Application", {}],
  ["role", "Role", {}],
  ["environment", "Environment", {}],
  ["status", "Status", { tag: "select", options: [["", "Any"], ["issued", "Issued"], ["released", "Released"]] }],
  ["owner", "Owner", {}],
  ["created_by", "Created by", {}],
  ["tag", "Tags", { placeholder: "team:web tier:gold" }, "key:value pairs separated by spaces; a name must have them all."],
  ["created_after", "Created on or after", { type: "date" }],
  ["created_before", "Created before", { type: "date" }],
];

/** The filters always in view; the others fold away (open when one is set), so that on a
 * phone the results are not pushed below ten fields. */
const PRIMARY = ["prefix", "application", "status", "tag"];

/** The API's query from the form's values: tags split, dates as UTC midnights. */
function apiQuery(values, cursor) {
  const q = { ...values, limit: PAGE_SIZE, cursor };
  q.tag = (values.tag || "").split(/\s+/).filter(Boolean);
  for (const key of ["created_after", "created_before"]) {
    if (values[key]) q[key] = `${values[key]}T00:00:00Z`;
  }
  return q;
}

export async function searchPage(params) {
  const values = Object.fromEntries(FILTERS.map(([name]) => [name, params.get(name) || ""]));
  const fields = Object.fromEntries(FILTERS.map(([name, label, props, hint]) => {
    const f = field(label, name, props, hint);
    f.input.value = values[name];
    return [name, f];
  }));
  const results = h("section", { "aria-labelledby": "results-heading", class: "results" });
  const form = h("form", {
    role: "search",
    class: "filters card",
    onsubmit: (event) => {
      event.preventDefault();
      const next = {};
      for (const [name, f] of Object.entries(fields)) if (f.input.value.trim()) next[name] = f.input.value.trim();
      const target = `#/${query(next)}`;
      if (location.hash === target) run([]);
      else location.hash = target;
    },
  },
  h("div", { class: "grid" }, PRIMARY.map((name) => fields[name].wrap)),
  h("details", { class: "more", open: FILTERS.some(([name]) => !PRIMARY.includes(name) && values[name]) },
    h("summary", {}, "More filters"),
    h("div", { class: "grid" }, FILTERS.filter(([name]) => !PRIMARY.includes(name)).map(([name]) => fields[name].wrap))),
  h("div", { class: "actions" },
    h("button", { type: "submit" }, "Search"),
    h("a", { href: "#/", class: "button secondary" }, "Clear filters"),
    exportButton("csv", "Export CSV", fields, values),
    exportButton("ndjson", "Export NDJSON", fields, values)));
  page("Names", form, results);
  if (!may("read")) {
    for (const f of Object.values(fields)) f.input.disabled = true;
    for (const b of form.querySelectorAll("button")) b.disabled = true;
    show(results, h("p", { class: "notice" }, lacks("read")));
    return;
  }

  // The cursors of the pages before this one, for "Previous".
  const before = [];
  async function run(stack, cursor) {
    before.splice(0, before.length, ...stack);
    for (const f of Object.values(fields)) fieldError(f, null);
    show(results, h("p", { role: "status" }, "Searching…"));
    try {
      const { body } = await call("GET", `/names${query(apiQuery(values, cursor))}`);
      renderResults(body, cursor);
    } catch (e) {
      const f = e instanceof Problem && fields[e.field];
      if (f) {
        const fold = f.wrap.closest("details");
        if (fold) fold.open = true;
        fieldError(f, e.message);
        show(results, h("p", { class: "notice error-box", role: "alert" }, `Check ${f.wrap.querySelector("label").textContent}: `, e.message));
      } else {
        show(results, problemNotice(e));
      }
    }
  }

  function renderResults(body, cursor) {
    const names = body.names;
    const heading = h("h2", { id: "results-heading" }, names.length ? `${names.length} name${names.length === 1 ? "" : "s"} on this page` : "No names match");
    const table = h("table", {},
      h("caption", { class: "offscreen" }, "Names matching the filters"),
      h("thead", {}, h("tr", {}, ["Hostname", "Status", "Application", "Role", "Environment", "Owner", "Tags", "Created", "Created by"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, names.map((n) => h("tr", {},
        h("th", { scope: "row" }, h("a", { href: `#/names/${encodeURIComponent(n.hostname)}` }, n.hostname)),
        h("td", {}, h("span", { class: `status ${n.status}` }, n.status)),
        h("td", {}, n.application), h("td", {}, n.role), h("td", {}, n.environment),
        h("td", {}, n.owner || ""),
        h("td", {}, tagList(n.tags)),
        h("td", {}, when(n.created_at)),
        h("td", {}, n.created_by || "")))));
    const pager = h("nav", { class: "pager", "aria-label": "Pages" },
      h("button", { type: "button", class: "secondary", disabled: before.length === 0 && !cursor, onclick: () => {
        const previous = before.pop();
        run([...before], previous);
      } }, "Previous page"),
      h("button", { type: "button", class: "secondary", disabled: !body.next_cursor, onclick: () => run([...before, cursor], body.next_cursor) }, "Next page"));
    show(results, heading, names.length ? h("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": "Results" }, table) : null, pager);
  }

  await run([]);
}

/** Tags as a list of `key: value` chips. */
export function tagList(tags) {
  const entries = Object.entries(tags || {});
  if (!entries.length) return "";
  return h("ul", { class: "tags" }, entries.map(([k, v]) => h("li", {}, h("span", { class: "tag-key" }, k), ": ", v)));
}

/** Downloads the export with the current filters and the caller's credentials, which a
 * plain link could not send. */
function exportButton(format, label, fields, values) {
  return h("button", {
    type: "button",
    class: "secondary",
    onclick: async (event) => {
      const button = event.currentTarget;
      button.disabled = true;
      const q = apiQuery(values);
      delete q.limit;
      delete q.cursor;
      try {
        const { body } = await call("GET", `/names/export${query({ ...q, format })}`, { raw: true });
        const blob = await body.blob();
        const a = h("a", { href: URL.createObjectURL(blob), download: `hostnames.${format === "csv" ? "csv" : "ndjson"}` });
        document.body.append(a);
        a.click();
        a.remove();
        setTimeout(() => URL.revokeObjectURL(a.href), 10000);
      } catch (e) {
        const f = e instanceof Problem && fields[e.field];
        if (f) fieldError(f, e.message);
        else button.after(problemNotice(e));
      } finally {
        button.disabled = !may("read");
      }
    },
  }, label);
}
