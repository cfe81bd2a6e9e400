"""Fixtures for the web page's browser tests.

`tests/system/browser.rs` starts OpenBao and the services (the real component in the real
host) and runs these tests with their addresses in the environment:

- HOSTNAMING_OPEN_URL: a service without API tokens;
- HOSTNAMING_TOKENS_URL with HOSTNAMING_FULL_TOKEN (every scope) and
  HOSTNAMING_READER_TOKEN (`read` only);
- HOSTNAMING_VAULT_URL: pass-through mode, with HOSTNAMING_VAULT_READER_TOKEN, a Vault
  token whose policy only reads names;
- HOSTNAMING_DOWN_URL: a service whose Vault does not answer;
- HOSTNAMING_MISCONFIGURED_URL: a service whose mount does not exist;
- HOSTNAMING_ARTIFACTS: where screenshots and page weights are written.

Chromium is Debian's (`/usr/bin/chromium`), driven by Playwright for Python.
"""

import json
import os
import pathlib
import urllib.error
import urllib.request
import uuid

import pytest
from playwright.sync_api import expect, sync_playwright

CHROMIUM = os.environ.get("HOSTNAMING_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = pathlib.Path(os.environ.get("HOSTNAMING_ARTIFACTS", "target/browser-artifacts"))

# Conditions are waited on, never slept on: a generous ceiling for a loaded CI machine.
expect.set_options(timeout=15_000)


def env(name):
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run these tests through `cargo test` (tests/system/browser.rs)")
    return value


class Api:
    """The service's JSON API, called directly: to set up and to change things behind the
    page's back."""

    def __init__(self, url, token=None):
        self.url = url
        self.token = token

    def call(self, method, path, body=None, headers=None, content_type="application/json"):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", content_type)
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        for key, value in (headers or {}).items():
            request.add_header(key, value)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.headers, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, e.headers, json.loads(e.read() or b"null")

    def generate(self, application, role="app", environment="prod", **fields):
        status, _, body = self.call("POST", "/generate-name",
                                    {"application": application, "role": role, "environment": environment, **fields})
        assert status == 200, body
        return body

    def record(self, hostname):
        status, headers, body = self.call("GET", f"/names/{hostname}")
        assert status == 200, body
        return headers["ETag"], body


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def context(browser, request):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    errors = []
    context.on("weberror", lambda e: errors.append(str(e.error)))
    yield context
    context.close()
    # An uncaught error in the page's scripts fails the test that caused it.
    assert not errors, errors


@pytest.fixture
def page(context):
    page = context.new_page()
    console = []
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    yield page
    # Expected refusals show in the console as failed loads; a CSP violation never should.
    violations = [m for m in console if "Content Security Policy" in m]
    assert not violations, violations


@pytest.fixture(scope="session")
def open_url():
    return env("HOSTNAMING_OPEN_URL")


@pytest.fixture(scope="session")
def api(open_url):
    return Api(open_url)


@pytest.fixture
def app():
    """An application name no other test uses, so each test's names are its own."""
    return "ui" + uuid.uuid4().hex[:8]


def shot(page, name, full_page=True):
    """Saves a screenshot as a test artifact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)
