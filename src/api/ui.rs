//! The web page: a few static files embedded in the component, so that it is served the
//! same way under Spin and under the host, with no second service and nothing to build at
//! run time. The page is an ordinary client of the JSON API; no route here touches Vault.

use sha2::{Digest, Sha256};

/// One embedded file.
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $type:literal) => {
        Asset {
            name: $name,
            content_type: $type,
            body: include_bytes!(concat!("../../ui/", $name)),
        }
    };
}

/// The page (`/`) and its files (`/ui/{name}`).
pub static PAGE: Asset = asset!("index.html", "text/html; charset=utf-8");
pub const ASSETS: &[Asset] = &[
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("app.js", "text/javascript; charset=utf-8"),
    asset!("api.js", "text/javascript; charset=utf-8"),
    asset!("dom.js", "text/javascript; charset=utf-8"),
    asset!("search.js", "text/javascript; charset=utf-8"),
    asset!("name.js", "text/javascript; charset=utf-8"),
    asset!("generate.js", "text/javascript; charset=utf-8"),
    asset!("icon.svg", "image/svg+xml"),
];

/// The file served at `/ui/{name}`.
pub fn asset(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

/// Scripts and styles from this origin's files only (nothing inline, nothing from
/// elsewhere), requests to this origin only, never framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'none'; \
     base-uri 'none'; frame-ancestors 'none'";

/// The headers every answer carries, the JSON ones too: a browser that is handed an
/// API answer directly renders nothing from it.
pub const SECURITY_HEADERS: [(&str, &str); 4] = [
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
];

/// A file's entity tag: a digest of its bytes, so a browser revalidates (`no-cache`) and
/// downloads a file again only when a new component changed it.
pub fn etag(asset: &Asset) -> String {
    let digest = Sha256::digest(asset.body);
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// The answer for `asset`: 304 without a body when `if_none_match` names its current tag.
pub fn answer(
    asset: &'static Asset,
    if_none_match: Option<&str>,
) -> (u16, Vec<(&'static str, String)>, &'static [u8]) {
    let tag = etag(asset);
    let fresh =
        if_none_match.is_some_and(|h| h.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let mut headers = vec![
        ("content-type", asset.content_type.to_string()),
        ("cache-control", "no-cache".to_string()),
        ("etag", tag),
    ];
    headers.extend(SECURITY_HEADERS.map(|(k, v)| (k, v.to_string())));
    if fresh {
        (304, headers, b"")
    } else {
        (200, headers, asset.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_the_page_loads_is_embedded() {
        let page = std::str::from_utf8(PAGE.body).unwrap();
        let scripts: Vec<&str> = ASSETS
            .iter()
            .filter(|a| a.name.ends_with(".js"))
            .map(|a| std::str::from_utf8(a.body).unwrap())
            .collect();
        // Every `/ui/...` reference in the page and every module import resolves.
        let referenced = page
            .split("/ui/")
            .skip(1)
            .chain(scripts.iter().flat_map(|s| s.split("from \"./").skip(1)))
            .map(|rest| rest.split('"').next().unwrap());
        for name in referenced {
            assert!(
                asset(name).is_some(),
                "{name} is referenced but not embedded"
            );
        }
    }

    #[test]
    fn the_page_has_no_inline_script_or_style() {
        let page = std::str::from_utf8(PAGE.body).unwrap();
        for inline in [
            "<script>",
            "style=",
            "<style",
            "onclick=",
            "onload=",
            "javascript:",
        ] {
            assert!(!page.contains(inline), "index.html contains {inline}");
        }
        for script in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            let text = std::str::from_utf8(script.body).unwrap();
            for sink in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
            ] {
                assert!(!text.contains(sink), "{} uses {sink}", script.name);
            }
        }
    }

    #[test]
    fn a_current_tag_gets_304_and_a_stale_one_the_file() {
        let css = asset("style.css").unwrap();
        let tag = etag(css);
        assert_eq!(answer(css, Some(&tag)).0, 304);
        let (status, headers, body) = answer(css, Some("\"stale\""));
        assert_eq!((status, body.len()), (200, css.body.len()));
        assert!(headers.contains(&("content-type", "text/css; charset=utf-8".into())));
        assert!(headers
            .iter()
            .any(|(k, v)| *k == "content-security-policy" && v.contains("frame-ancestors 'none'")));
    }
}
