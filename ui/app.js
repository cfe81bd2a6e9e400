// The page's frame: who is signed in, the Vault banner, and which view the address shows
// (`#/` search, `#/names/{hostname}` one name, `#/generate`).

import { Problem, authMode, session, setToken, token } from "./api.js";
import { field, fieldError, h, show } from "./dom.js";
import { generatePage } from "./generate.js";
import { namePage } from "./name.js";
import { searchPage } from "./search.js";

const main = document.getElementById("main");
const banner = document.getElementById("banner");
const who = document.getElementById("who");

/** The signed-in caller (`{ auth, actor, scopes }`) once known. */
const state = { session: null };

/** Whether the caller may do what `scope` covers. */
export function may(scope) {
  return Boolean(state.session && state.session.scopes.includes(scope));
}

/** Why an action is unavailable, for the note next to a disabled control. */
export function lacks(scope) {
  return `Your token lacks the \`${scope}\` scope, so this is unavailable.`;
}

/** A problem shown as a notice: 401 sends the reader back to the token prompt. */
export function problemNotice(e) {
  if (e instanceof Problem && e.status === 401) {
    setToken(null);
    signIn(e.message);
    return h("p", { class: "notice error-box", role: "alert" }, "Your token was not accepted: ", e.message);
  }
  const title = e instanceof Problem && e.doc.title ? `${e.doc.title}: ` : "";
  const status = e instanceof Problem && e.status ? ` (HTTP ${e.status})` : "";
  return h("p", { class: "notice error-box", role: "alert" }, title, e.message, status);
}

// Whether the reader has moved since the page loaded: until then focus starts at the top
// (skip link first); after, each view's heading takes it.
let moved = false;

/** Starts a view. Once the reader has moved (a link, signing in), its heading takes the
 * focus, so keyboard and screen-reader users land on what changed. */
export function page(title, ...children) {
  document.title = `${title} · hostnaming`;
  const heading = h("h1", { tabindex: "-1" }, title);
  show(main, heading, ...children);
  if (moved) heading.focus({ preventScroll: true });
  return heading;
}

function markNav(view) {
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (a.dataset.nav === view) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

async function route() {
  if (!state.session) return;
  const hash = location.hash.slice(1) || "/";
  const [path, search] = hash.split("?");
  const params = new URLSearchParams(search || "");
  if (path.startsWith("/names/")) {
    markNav("names");
    await namePage(decodeURIComponent(path.slice("/names/".length)), state.session);
  } else if (path === "/generate") {
    markNav("generate");
    await generatePage(params);
  } else {
    markNav("names");
    await searchPage(params);
  }
}

function showWho() {
  const s = state.session;
  if (!s) return show(who);
  const signOut = s.auth === "open" ? null : h("button", {
    type: "button",
    class: "link",
    onclick: () => {
      setToken(null);
      state.session = null;
      signIn(null);
    },
  }, "Sign out");
  show(who, h("span", {}, s.auth === "open" ? "Open service · " : "Signed in as ", h("strong", {}, s.actor)),
    " ", h("span", { class: "scopes" }, `(${s.scopes.join(", ") || "no scopes"})`), " ", signOut);
}

/** Asks for a token when the service requires one; `message` says why the last one failed. */
function signIn(message) {
  state.session = null;
  showWho();
  const vault = authMode() === "vault";
  const f = field(vault ? "Vault token" : "API token", "token", {
    type: "password",
    autocomplete: "off",
    required: true,
    spellcheck: "false",
  }, vault
    ? "This service passes your own Vault token to Vault, whose policies decide what you may do."
    : "This service requires an API token. `hostnaming token` makes one; an operator gives it scopes.");
  fieldError(f, message);
  const form = h("form", {
    class: "card narrow",
    onsubmit: async (event) => {
      event.preventDefault();
      setToken(f.input.value.trim());
      moved = true;
      await start(true);
    },
  }, f.wrap, h("p", { class: "hint" }, "Kept in this tab's session storage only, and sent with each request."),
  h("button", { type: "submit" }, "Sign in"));
  page("Sign in", form);
  f.input.focus();
}

async function start(fromPrompt) {
  try {
    state.session = await session();
  } catch (e) {
    if (e instanceof Problem && e.status === 401) {
      setToken(null);
      return signIn(fromPrompt || token() ? e.message : null);
    }
    if (e instanceof Problem && e.status === 403 && fromPrompt) {
      setToken(null);
      return signIn(e.message);
    }
    page("hostnaming", problemNotice(e));
    return;
  }
  showWho();
  await route();
}

async function checkHealth() {
  let problem = null;
  try {
    const response = await fetch("/healthz");
    if (!response.ok) {
      const doc = await response.json().catch(() => ({}));
      problem = `${doc.title || `HTTP ${response.status}`}: ${doc.detail || "Vault cannot be used."}`;
    }
  } catch (e) {
    problem = `The service did not answer: ${e.message}`;
  }
  if (problem) {
    show(banner, h("strong", {}, "Vault is not available. "), problem,
      " Names cannot be issued, read or changed until it is.");
    banner.hidden = false;
  } else {
    banner.hidden = true;
    show(banner);
  }
}

window.addEventListener("hashchange", () => {
  moved = true;
  route().catch((e) => show(main, problemNotice(e)));
});
checkHealth();
setInterval(checkHealth, 15000);
start(false);
