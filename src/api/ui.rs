//! The web page: a few static files embedded in the component, so that it is served the
//! same way under Spin and under the host, with no second service and nothing to build at
//! run time. The page is an ordinary client of the JSON API; no route here touches Vault.
//!
//! The files are embedded gzip-compressed (by the build script) and sent so, since every
//! browser accepts gzip: about a third of their size, in the component and on the wire.

use sha2::{Digest, Sha256};

use crate::api::problem::ApiError;

/// One embedded file.
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    /// The file, gzip-compressed.
    pub gzip: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $type:literal) => {
        Asset {
            name: $name,
            content_type: $type,
            gzip: include_bytes!(concat!(env!("OUT_DIR"), "/ui/", $name, ".gz")),
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

/// Whether an `Accept-Encoding` value takes gzip. No header at all means any coding will do
/// (RFC 9110, section 12.5.3).
pub fn accepts_gzip(accept_encoding: Option<&str>) -> bool {
    let Some(header) = accept_encoding else {
        return true;
    };
    header.split(',').any(|item| {
        let mut parts = item.split(';').map(str::trim);
        let coding = parts.next().unwrap_or("").to_ascii_lowercase();
        // A weight of zero (`q=0`, `q=0.000`) refuses; read as text, since parsing floats
        // would add float code to the component for this one comparison.
        let refused = parts.any(|p| {
            p.strip_prefix("q=")
                .is_some_and(|q| q.starts_with('0') && q.chars().all(|c| c == '0' || c == '.'))
        });
        matches!(coding.as_str(), "gzip" | "x-gzip" | "*") && !refused
    })
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
    let digest = Sha256::digest(asset.gzip);
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// A file's answer: status, headers, body.
pub type FileAnswer = (u16, Vec<(&'static str, String)>, &'static [u8]);

/// What a request for `asset` gets: its gzip bytes, 304 without a body when
/// `if_none_match` names its current tag, or 406 for a client that refuses gzip.
pub fn answer(
    asset: &'static Asset,
    if_none_match: Option<&str>,
    accept_encoding: Option<&str>,
) -> Result<FileAnswer, ApiError> {
    if !accepts_gzip(accept_encoding) {
        return Err(ApiError::NotAcceptable(
            "the page's files are sent gzip-compressed; send `Accept-Encoding: gzip`".into(),
        ));
    }
    let tag = etag(asset);
    let fresh =
        if_none_match.is_some_and(|h| h.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let mut headers = vec![
        ("content-type", asset.content_type.to_string()),
        ("content-encoding", "gzip".to_string()),
        ("vary", "accept-encoding".to_string()),
        ("cache-control", "no-cache".to_string()),
        ("etag", tag),
    ];
    headers.extend(SECURITY_HEADERS.map(|(k, v)| (k, v.to_string())));
    Ok(if fresh {
        (304, headers, b"")
    } else {
        (200, headers, asset.gzip)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// An embedded file, decompressed.
    fn text(asset: &Asset) -> String {
        let mut out = String::new();
        flate2::read::GzDecoder::new(asset.gzip)
            .read_to_string(&mut out)
            .unwrap();
        out
    }

    fn all() -> impl Iterator<Item = &'static Asset> {
        std::iter::once(&PAGE).chain(ASSETS)
    }

    #[test]
    fn every_embedded_file_is_its_source_in_ui() {
        let ui = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ui");
        for asset in all() {
            let source = std::fs::read_to_string(ui.join(asset.name)).unwrap();
            assert_eq!(text(asset), source, "{}", asset.name);
        }
        // And every file in ui/ is served.
        let files = std::fs::read_dir(&ui).unwrap().count();
        assert_eq!(files, all().count());
    }

    #[test]
    fn every_file_the_page_loads_is_embedded() {
        let page = text(&PAGE);
        let scripts: Vec<String> = ASSETS
            .iter()
            .filter(|a| a.name.ends_with(".js"))
            .map(text)
            .collect();
        // Every `/ui/...` reference in the page and every module import resolves.
        let referenced = page
            .split("/ui/")
            .skip(1)
            .chain(scripts.iter().flat_map(|s| s.split("from \"./").skip(1)))
            .map(|rest| rest.split('"').next().unwrap().to_string())
            .collect::<Vec<_>>();
        assert!(referenced.len() > ASSETS.len(), "{referenced:?}");
        for name in referenced {
            assert!(
                asset(&name).is_some(),
                "{name} is referenced but not embedded"
            );
        }
    }

    #[test]
    fn the_page_has_no_inline_script_or_style_and_no_html_sinks() {
        let page = text(&PAGE);
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
            let text = text(script);
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
        assert_eq!(answer(css, Some(&tag), None).unwrap().0, 304);
        let (status, headers, body) = answer(css, Some("\"stale\""), Some("gzip, br")).unwrap();
        assert_eq!((status, body.len()), (200, css.gzip.len()));
        assert!(headers.contains(&("content-type", "text/css; charset=utf-8".into())));
        assert!(headers.contains(&("content-encoding", "gzip".into())));
        assert!(headers
            .iter()
            .any(|(k, v)| *k == "content-security-policy" && v.contains("frame-ancestors 'none'")));
    }

    #[test]
    fn a_client_that_refuses_gzip_gets_406() {
        for refuses in ["identity", "br", "gzip;q=0", "gzip; q=0.000", "*;q=0", ""] {
            assert!(!accepts_gzip(Some(refuses)), "{refuses}");
            let e = answer(&PAGE, None, Some(refuses)).unwrap_err();
            assert_eq!(e.problem().status, 406);
        }
        for takes in [
            "gzip",
            "deflate, gzip;q=0.5",
            "gzip;q=1",
            "*",
            "GZIP",
            "x-gzip",
        ] {
            assert!(accepts_gzip(Some(takes)), "{takes}");
        }
        assert!(accepts_gzip(None));
    }
}
