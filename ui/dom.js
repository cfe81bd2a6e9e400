// Building the page: every value is inserted as text (a text node or an attribute), never
// parsed as HTML, so whatever a name's metadata holds is shown literally.

/** An element with properties, attributes, listeners (`onclick`) and children. */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (typeof value === "boolean") el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

/** Appends children: nodes as they are, anything else as text. */
export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replaces an element's children. */
export function show(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** A labelled input with room for its error: `{ wrap, input, error }`. */
export function field(label, name, props = {}, hint = null) {
  const id = `f-${name.replace(/[^a-z0-9_-]/gi, "_")}`;
  const error = h("p", { class: "error", id: `${id}-error`, hidden: true });
  const hintEl = hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null;
  const tag = props.tag || "input";
  const { tag: _ignored, options, ...rest } = props;
  const input = h(tag, {
    id,
    name,
    "aria-describedby": [hintEl && hintEl.id, error.id].filter(Boolean).join(" "),
    ...rest,
  });
  if (options) for (const [value, text] of options) input.append(h("option", { value }, text));
  const wrap = h("div", { class: "field", dataset: { field: name } },
    h("label", { for: id }, label), input, hintEl, error);
  return { wrap, input, error };
}

/** Shows `message` as a field's error, or clears it with `null`. */
export function fieldError(f, message) {
  f.error.textContent = message || "";
  f.error.hidden = !message;
  if (message) f.input.setAttribute("aria-invalid", "true");
  else f.input.removeAttribute("aria-invalid");
}

/** A date-time as the reader's locale writes it, with the exact value on hover. */
export function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return h("time", { datetime: iso, title: iso }, isNaN(d) ? iso : d.toLocaleString());
}

/** Copies `text`, answering whether it worked. The clipboard API needs a secure context;
 * elsewhere a hidden text area and the older copy command do. */
export async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = h("textarea", { class: "offscreen", readonly: true });
    area.value = text;
    document.body.append(area);
    area.select();
    const done = document.execCommand("copy");
    area.remove();
    return done;
  }
}
