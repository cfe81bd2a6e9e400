"""The web page in headless Chromium against the real host, component and OpenBao."""

import csv
import io
import json
import os
import re

from playwright.sync_api import expect

from conftest import ARTIFACTS, Api, env, shot


def field(page, label):
    """An input by its label: every input has one."""
    return page.get_by_label(label, exact=True)


def test_a_generated_name_is_previewed_issued_and_found_in_search(page, open_url, app):
    page.goto(f"{open_url}/#/generate")
    expect(page.get_by_role("heading", name="Generate names")).to_be_visible()
    field(page, "Application").fill(app)
    field(page, "Role").fill("web")
    field(page, "Environment").fill("prod")
    field(page, "Owner").fill("team-web")
    # The live preview is a dry run: the next name, nothing reserved.
    preview = page.locator("#preview")
    expect(preview).to_contain_text(f"The next name would be {app}-web-prod-vm1")
    field(page, "How many").fill("2")
    expect(preview).to_contain_text(f"{app}-web-prod-vm1, {app}-web-prod-vm2")
    shot(page, "generate")
    page.get_by_role("button", name="Generate", exact=True).click()
    result = page.locator("#result")
    expect(result.get_by_role("link", name=f"{app}-web-prod-vm1")).to_be_visible()
    expect(result.get_by_role("link", name=f"{app}-web-prod-vm2")).to_be_visible()
    # The preview moves on to the names after those issued.
    expect(preview).to_contain_text(f"{app}-web-prod-vm3, {app}-web-prod-vm4")

    page.get_by_role("link", name="Names", exact=True).click()
    field(page, "Application").fill(app)
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(rf"#/\?application={app}$"))
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text(f"{app}-web-prod-vm1")
    expect(rows.nth(0)).to_contain_text("team-web")
    shot(page, "search")

    # The values used are suggested the next time.
    page.goto(f"{open_url}/#/generate")
    expect(page.locator(f"#used-application option[value='{app}']")).to_have_count(1)
    field(page, "Application").fill(app)
    field(page, "Application").dispatch_event("change")
    expect(page.locator("#used-role option[value='web']")).to_have_count(1)


def test_filters_narrow_the_search_pages_follow_and_export_uses_the_same_filters(page, api, open_url, app):
    for i in range(3):
        api.generate(app, "db", "prod", owner="dba", tags={"tier": "gold" if i else "silver"})
    for _ in range(27):
        api.generate(app, "web", "dev")
    released = api.generate(app, "web", "test")["hostname"]
    assert api.call("DELETE", f"/names/{released}")[0] == 200

    page.goto(f"{open_url}/#/?application={app}&tag=tier:gold")
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text(f"{app}-db-prod-vm2")
    expect(field(page, "Tags")).to_have_value("tier:gold")

    page.goto(f"{open_url}/#/?application={app}&status=released&created_after=2020-01-01")
    expect(rows).to_have_count(1)
    expect(field(page, "Created on or after")).to_be_visible()
    expect(rows.nth(0)).to_contain_text(released)

    # Filters typed into the form: owner and prefix together. Owner is among the folded
    # filters; a filter set in the address unfolds them.
    page.goto(f"{open_url}/#/")
    expect(field(page, "Owner")).to_be_hidden()
    page.get_by_text("More filters").click()
    field(page, "Owner").fill("dba")
    field(page, "Hostname starts with").fill(f"{app}-db")
    page.get_by_role("button", name="Search").click()
    expect(rows).to_have_count(3)

    # 28 names of the dev/test tuples: a page of 25, then the rest.
    page.goto(f"{open_url}/#/?prefix={app}-web")
    expect(rows).to_have_count(25)
    page.get_by_role("button", name="Next page").click()
    expect(rows).to_have_count(3)
    expect(page.get_by_role("button", name="Next page")).to_be_disabled()
    page.get_by_role("button", name="Previous page").click()
    expect(rows).to_have_count(25)

    # The export buttons send the filters of the page.
    page.goto(f"{open_url}/#/?application={app}&owner=dba")
    expect(rows).to_have_count(3)
    with page.expect_download() as download:
        page.get_by_role("button", name="Export CSV").click()
    text = open(download.value.path(), encoding="utf-8").read()
    table = list(csv.DictReader(io.StringIO(text)))
    assert sorted(r["hostname"] for r in table) == [f"{app}-db-prod-vm{n}" for n in (1, 2, 3)], text
    with page.expect_download() as download:
        page.get_by_role("button", name="Export NDJSON").click()
    lines = open(download.value.path(), encoding="utf-8").read().splitlines()
    assert {json.loads(line)["owner"] for line in lines} == {"dba"} and len(lines) == 3


def test_a_name_shows_its_fields_history_and_terraform_import_command(page, api, open_url, app):
    hostname = api.generate(app, "web", "prod", owner="alice", description="the web tier",
                            tags={"team": "web"})["hostname"]
    etag, _ = api.record(hostname)
    status, _, _ = api.call("PATCH", f"/names/{hostname}", {"owner": "bob"},
                            headers={"If-Match": etag}, content_type="application/merge-patch+json")
    assert status == 200
    page.goto(f"{open_url}/#/names/{hostname}")
    expect(page.get_by_role("heading", name=hostname, level=1)).to_be_visible()
    facts = page.locator("dl.facts")
    expect(facts).to_contain_text("bob")
    expect(facts).to_contain_text("the web tier")
    expect(facts).to_contain_text("team: web")
    expect(facts).to_contain_text("anonymous")
    history = page.locator("section[aria-labelledby=history-heading] tbody tr")
    expect(history).to_have_count(2)
    expect(history.nth(0)).to_contain_text("annotated")
    expect(history.nth(0)).to_contain_text("owner")
    expect(history.nth(1)).to_contain_text("issued")
    command = f"terraform import naming.{hostname.replace('-', '_')} {hostname}"
    expect(page.locator("#import-command")).to_have_text(command)
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_text("Copied.")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == command
    shot(page, "name")


def test_metadata_is_edited_with_if_match_and_a_conflict_is_shown_and_reloaded(page, api, open_url, app):
    hostname = api.generate(app, "web", "prod", owner="alice", tags={"team": "web", "old": "x"})["hostname"]
    page.goto(f"{open_url}/#/names/{hostname}")
    field(page, "Owner").fill("carol")
    page.get_by_role("button", name="Add tag").click()
    field(page, "Tag key").last.fill("tier")
    field(page, "Tag value").last.fill("gold")
    page.get_by_role("button", name="Remove tag old").click()
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_text("Saved.")).to_be_visible()
    _, record = api.record(hostname)
    assert (record["owner"], record["tags"]) == ("carol", {"team": "web", "tier": "gold"})
    expect(page.locator("dl.facts")).to_contain_text("tier: gold")

    # Someone else changes the name while the page is open: saving is refused (412).
    etag, _ = api.record(hostname)
    status, _, _ = api.call("PATCH", f"/names/{hostname}", {"description": "changed elsewhere"},
                            headers={"If-Match": etag}, content_type="application/merge-patch+json")
    assert status == 200
    field(page, "Owner").fill("dave")
    page.get_by_role("button", name="Save changes").click()
    conflict = page.get_by_role("alert").filter(has_text="Someone else changed this name")
    expect(conflict).to_be_visible()
    expect(conflict).to_contain_text("If-Match")
    shot(page, "edit-conflict")
    assert api.record(hostname)[1]["owner"] == "carol"
    conflict.get_by_role("button", name="Reload the name").click()
    expect(page.locator("dl.facts")).to_contain_text("changed elsewhere")
    expect(field(page, "Owner")).to_have_value("carol")


def test_release_asks_for_a_confirmation_that_names_the_hostname(page, api, open_url, app):
    hostname = api.generate(app, "web", "prod")["hostname"]
    page.goto(f"{open_url}/#/names/{hostname}")
    page.get_by_role("button", name="Release…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text(f"Release {hostname}?")
    shot(page, "release-dialog", full_page=False)
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert api.record(hostname)[1]["status"] == "issued"

    page.get_by_role("button", name="Release…").click()
    dialog.get_by_role("button", name=f"Release {hostname}").click()
    expect(page.get_by_text(f"Released {hostname}.")).to_be_visible()
    expect(page.locator("dl.facts")).to_contain_text("released")
    assert api.record(hostname)[1]["status"] == "released"
    expect(page.get_by_role("button", name="Release…")).to_be_disabled()
    expect(page.get_by_role("button", name="Save changes")).to_be_disabled()


def test_a_token_is_asked_for_kept_in_session_storage_and_its_scopes_decide_what_is_enabled(page, context, app):
    url = env("HOSTNAMING_TOKENS_URL")
    full, reader = env("HOSTNAMING_FULL_TOKEN"), env("HOSTNAMING_READER_TOKEN")
    hostname = Api(url, full).generate(app)["hostname"]
    sent = []
    page.on("request", lambda r: sent.append(r.headers.get("authorization")) if "/names" in r.url else None)

    page.goto(f"{url}/#/names/{hostname}")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    token = field(page, "API token")
    expect(token).to_be_focused()
    token.fill("not-a-token")
    token.press("Enter")
    # The 401's detail, shown at the token field.
    expect(page.locator("#f-token-error")).to_have_text("the bearer token is not one this service knows")
    shot(page, "sign-in")
    token.fill(reader)
    token.press("Enter")
    expect(page.locator("#who")).to_contain_text("Signed in as reader")
    expect(page.get_by_role("heading", name=hostname, level=1)).to_be_visible()
    assert f"Bearer {reader}" in sent
    # Kept for this tab only.
    assert page.evaluate("sessionStorage.getItem('hostnaming.token')") == reader
    assert page.evaluate("localStorage.length") == 0
    # What a read-only token may not do is disabled, with the reason, before any click.
    expect(page.get_by_role("button", name="Save changes")).to_be_disabled()
    expect(page.get_by_role("button", name="Release…")).to_be_disabled()
    expect(page.get_by_text("lacks the `annotate` scope")).to_be_visible()
    expect(page.get_by_text("lacks the `admin` scope")).to_be_visible()
    page.get_by_role("link", name="Generate", exact=True).click()
    expect(page.get_by_text("lacks the `generate` scope")).to_be_visible()
    expect(page.get_by_role("button", name="Generate", exact=True)).to_be_disabled()
    expect(field(page, "Application")).to_be_disabled()

    # Another tab of the same browser shares nothing: it asks again.
    other = context.new_page()
    other.goto(f"{url}/")
    expect(other.get_by_role("heading", name="Sign in")).to_be_visible()
    other.close()

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('hostnaming.token')") is None
    field(page, "API token").fill(full)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#who")).to_contain_text("Signed in as full")
    page.goto(f"{url}/#/names/{hostname}")
    expect(page.get_by_role("button", name="Save changes")).to_be_enabled()
    expect(page.get_by_role("button", name="Release…")).to_be_enabled()


def test_in_pass_through_mode_the_page_asks_for_a_vault_token_and_vault_decides(page):
    url = env("HOSTNAMING_VAULT_URL")
    page.goto(f"{url}/")
    token = field(page, "Vault token")
    expect(token).to_be_visible()
    # Vault refusing a token is a 403, shown plainly at the field.
    token.fill("s.not-a-vault-token")
    token.press("Enter")
    expect(page.locator("#f-token-error")).to_contain_text("Vault refused your token")
    token.fill(env("HOSTNAMING_VAULT_READER_TOKEN"))
    token.press("Enter")
    expect(page.locator("#who")).to_contain_text("(read)")
    expect(page.get_by_role("heading", name="Names", level=1)).to_be_visible()
    page.get_by_role("link", name="Generate", exact=True).click()
    expect(page.get_by_role("button", name="Generate", exact=True)).to_be_disabled()


def test_a_400_is_shown_at_the_field_it_names_and_nothing_is_issued(page, api, open_url, app):
    page.goto(f"{open_url}/#/generate")
    field(page, "Application").fill("Not Valid")
    field(page, "Role").fill("web")
    field(page, "Environment").fill("prod")
    error = page.locator(".field[data-field=application] .error")
    expect(error).to_contain_text("lowercase")
    expect(field(page, "Application")).to_have_attribute("aria-invalid", "true")
    page.get_by_role("button", name="Generate", exact=True).click()
    expect(error).to_contain_text("lowercase")
    expect(page.locator("#result a")).to_have_count(0)
    shot(page, "field-error")
    # A tag value over its limit is named `tags.{key}` and shown at that tag's row.
    field(page, "Application").fill(app)
    page.get_by_role("button", name="Add tag").click()
    field(page, "Tag key").fill("team")
    field(page, "Tag value").fill("x" * 300)
    page.get_by_role("button", name="Generate", exact=True).click()
    expect(page.locator(".field[data-field=tag-value-1] .error")).to_contain_text("256")
    expect(page.locator("#result a")).to_have_count(0)
    status, _, body = api.call("GET", f"/names?application={app}")
    assert status == 200 and body["names"] == [], body
    # A search filter too.
    page.goto(f"{open_url}/#/?created_after=2026-13-45")
    expect(page.locator(".field[data-field=created_after] .error")).to_contain_text("RFC 3339")


def test_values_from_the_api_are_shown_as_text_never_as_html(page, api, open_url, app):
    payload = "<img src=x onerror=window.__xss=1>"
    hostname = api.generate(app, "web", "prod", owner="<script>window.__xss=2</script>",
                            description=payload, tags={"evil": payload})["hostname"]
    response = page.goto(f"{open_url}/#/names/{hostname}")
    headers = response.headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "unsafe-inline" not in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    facts = page.locator("dl.facts")
    expect(facts).to_contain_text(payload)
    expect(facts).to_contain_text("<script>window.__xss=2</script>")
    page.goto(f"{open_url}/#/?application={app}")
    expect(page.locator("tbody")).to_contain_text(payload)
    assert page.locator("main img").count() == 0
    assert page.locator("main script").count() == 0
    assert page.evaluate("window.__xss") is None
    shot(page, "xss-shown-as-text")


def test_a_banner_says_when_vault_is_unavailable(page):
    url = env("HOSTNAMING_DOWN_URL")
    page.goto(f"{url}/")
    banner = page.locator("#banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("Vault is not available")
    expect(banner).to_contain_text("unreachable")
    # The search itself answers 503, shown as such.
    expect(page.get_by_role("alert").filter(has_text="503")).to_be_visible()
    shot(page, "vault-down")


def test_the_banner_also_says_when_the_mount_is_missing(page):
    page.goto(f"{env('HOSTNAMING_MISCONFIGURED_URL')}/")
    banner = page.locator("#banner")
    expect(banner).to_contain_text("Vault is not available")
    # Vault refuses the service's token outside its mount's policy, or there is no mount:
    # either way the banner names the mount.
    expect(banner).to_contain_text(re.compile(r"no KV v2 mount at 'missing'|read missing/config"))


def test_a_healthy_vault_shows_no_banner(page, open_url):
    page.goto(f"{open_url}/")
    expect(page.get_by_role("heading", name="Names", level=1)).to_be_visible()
    expect(page.locator("#banner")).to_be_hidden()


def test_everything_works_from_the_keyboard_with_visible_focus(page, open_url, app):
    page.goto(f"{open_url}/")
    expect(page.get_by_role("heading", name="Names", level=1)).to_be_visible()
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    outline = skip.evaluate("e => getComputedStyle(e).outlineStyle")
    assert outline != "none", outline
    # Tab to the Generate link and follow it.
    for _ in range(6):
        if page.evaluate("document.activeElement.textContent") == "Generate":
            break
        page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    heading = page.get_by_role("heading", name="Generate names")
    expect(heading).to_be_focused()
    page.keyboard.press("Tab")
    expect(field(page, "Application")).to_be_focused()
    page.keyboard.type(app)
    page.keyboard.press("Tab")
    page.keyboard.type("kb")
    page.keyboard.press("Tab")
    page.keyboard.type("prod")
    width = field(page, "Environment").evaluate("e => getComputedStyle(e).outlineWidth")
    assert width != "0px", width
    page.keyboard.press("Enter")
    link = page.locator("#result").get_by_role("link", name=f"{app}-kb-prod-vm1")
    expect(link).to_be_visible()
    expect(page.locator("#result-heading")).to_be_focused()
    page.keyboard.press("Tab")
    expect(link).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=f"{app}-kb-prod-vm1", level=1)).to_be_focused()
    # The release dialog opens, cancels and confirms from the keyboard.
    page.get_by_role("button", name="Release…").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("dialog")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_be_hidden()


def test_every_input_has_a_label_on_every_page(page, api, open_url, app):
    hostname = api.generate(app, "web", "prod", tags={"team": "web"})["hostname"]
    for view in ["#/", "#/generate", f"#/names/{hostname}"]:
        page.goto(f"{open_url}/{view}")
        expect(page.locator("main h1")).to_be_visible()
        expect(page.locator("main p[role=status]")).to_have_count(0)
        unlabelled = page.evaluate("""() => [...document.querySelectorAll('input, select, textarea')]
            .filter(e => e.labels.length === 0 && !e.getAttribute('aria-label'))
            .map(e => e.outerHTML)""")
        assert unlabelled == [], (view, unlabelled)


def test_the_pages_read_at_375_px_and_on_a_desktop_in_light_and_dark(browser, api, open_url, app):
    hostname = api.generate(app, "web", "prod", owner="team-web", description="a long description " * 5,
                            tags={"team": "web", "tier": "gold"})["hostname"]
    views = {"search": f"#/?application={app}", "name": f"#/names/{hostname}", "generate": "#/generate"}
    backgrounds = {}
    for scheme in ["light", "dark"]:
        for width, height in [(375, 812), (1280, 900)]:
            context = browser.new_context(viewport={"width": width, "height": height}, color_scheme=scheme)
            page = context.new_page()
            for name, view in views.items():
                page.goto(f"{open_url}/{view}")
                expect(page.locator("main h1")).to_be_visible()
                expect(page.locator("main p[role=status]")).to_have_count(0)
                # Nothing makes the page itself scroll sideways (wide tables scroll in place).
                overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
                assert overflow <= 0, (scheme, width, name, overflow)
                backgrounds[scheme] = page.evaluate("getComputedStyle(document.body).backgroundColor")
                shot(page, f"{name}-{width}-{scheme}")
            context.close()
    assert backgrounds["light"] != backgrounds["dark"], backgrounds


def test_page_weights_of_a_first_load(browser, api, open_url, app):
    """Bytes transferred (headers and bodies, as Chromium counts them) for a first load of each
    main page, written to the artifacts for the performance doc."""
    hostname = api.generate(app, "web", "prod")["hostname"]
    weights = {}
    for name, view in {"search": "#/", "name": f"#/names/{hostname}", "generate": "#/generate"}.items():
        context = browser.new_context()
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        sizes = {}
        urls = {}
        cdp.on("Network.responseReceived", lambda e: urls.__setitem__(e["requestId"], e["response"]["url"]))
        cdp.on("Network.loadingFinished", lambda e: sizes.__setitem__(e["requestId"], e["encodedDataLength"]))
        page.goto(f"{open_url}/{view}")
        expect(page.locator("main h1")).to_be_visible()
        expect(page.locator("main p[role=status]")).to_have_count(0)
        page.wait_for_load_state("networkidle")
        files = sum(n for r, n in sizes.items() if "/ui/" in urls.get(r, "") or urls.get(r, "").endswith("/"))
        total = sum(sizes.values())
        weights[name] = {"requests": len(sizes), "bytes": total, "page_files_bytes": files}
        context.close()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "page-weights.json").write_text(json.dumps(weights, indent=2))
    print(json.dumps(weights))
    for name, w in weights.items():
        assert w["page_files_bytes"] > 0, (name, w)
