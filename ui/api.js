// The service's JSON API as the page uses it: credentials from session storage only,
// problem documents turned into errors that say which field they are about.

const TOKEN_KEY = "hostnaming.token";
const MODE_KEY = "hostnaming.auth";

/** What the service answered instead of success: an RFC 9457 problem document. */
export class Problem extends Error {
  constructor(status, doc, headers) {
    super(doc.detail || doc.title || `the service answered ${status}`);
    this.status = status;
    this.doc = doc;
    this.headers = headers;
  }
  /** The request field the problem names (`application`, `tags.team`), if any. */
  get field() {
    return this.doc.field || null;
  }
}

/** How this service wants callers to authenticate: `tokens` (an API token), `vault` (the
 * caller's Vault token) or `open`; learnt from `/session` and its 401 challenge. */
export function authMode() {
  return sessionStorage.getItem(MODE_KEY) || "tokens";
}

export function setAuthMode(mode) {
  sessionStorage.setItem(MODE_KEY, mode);
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

function credentials() {
  const t = token();
  if (!t) return {};
  return authMode() === "vault" ? { "X-Vault-Token": t } : { Authorization: `Bearer ${t}` };
}

/** Sends a request; answers `{ status, headers, body }` on 2xx, throws a Problem otherwise.
 * `body` is parsed JSON, or the raw Response when `raw` is set. */
export async function call(method, path, { json, headers = {}, contentType, raw } = {}) {
  const init = { method, headers: { ...credentials(), ...headers } };
  if (json !== undefined) {
    init.headers["Content-Type"] = contentType || "application/json";
    init.body = JSON.stringify(json);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    throw new Problem(0, { title: "Unreachable", detail: `the service did not answer (${e.message})` });
  }
  if (response.ok && raw) return { status: response.status, headers: response.headers, body: response };
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!response.ok) {
    const doc = body && typeof body === "object" ? body : { title: response.statusText, detail: text.slice(0, 300) };
    throw new Problem(response.status, doc, response.headers);
  }
  return { status: response.status, headers: response.headers, body };
}

/** A query string from an object, skipping empty values; arrays repeat their key. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    for (const v of [value].flat()) if (v !== undefined && v !== null && v !== "") q.append(key, v);
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

/** The caller as the service sees it, `{ auth, actor, scopes }`; a 401 says from its
 * challenge which kind of token to ask for. */
export async function session(hostname) {
  try {
    const { body } = await call("GET", `/session${query({ hostname })}`);
    setAuthMode(body.auth);
    return body;
  } catch (e) {
    if (e.status === 401) {
      const challenge = (e.headers && e.headers.get("WWW-Authenticate")) || "";
      setAuthMode(challenge.startsWith("X-Vault-Token") ? "vault" : "tokens");
    }
    throw e;
  }
}

/** A random Idempotency-Key (the Web Crypto RNG works outside secure contexts too). */
export function idempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
