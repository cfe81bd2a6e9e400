//! Everything a caller controls before Vault is touched: the body, the query string, the
//! Idempotency-Key header and the path. None may panic, and whatever is accepted must be
//! something the service can safely turn into Vault paths and hostnames.
#![no_main]

use hostnaming::core::idempotency::IdempotencyKey;
use hostnaming::api::request::parse_list_query;
use hostnaming::core::registry::parse_hostname;
use hostnaming::api::request::parse_generate;
use hostnaming::api::routes::route;
use hostnaming::core::template::Template;
use libfuzzer_sys::fuzz_target;

fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && !s.ends_with('-')
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fuzz_target!(|data: &[u8]| {
    if let Ok((request, count)) = parse_generate(data) {
        assert!((1..=100).contains(&count));
        let template = Template::default();
        if request.check_fits(&template).is_ok() {
            let name = request.hostname(&template, 1).expect("fits at 1");
            assert!(is_label(&name), "{name}");
            assert!(!template.counter_path(&request).contains(".."));
        }
    }
    let text = String::from_utf8_lossy(data);
    if let Ok(q) = parse_list_query(&text) {
        assert!((1..=100).contains(&q.limit));
        assert!(is_label(q.application.as_str()));
    }
    if let Ok(key) = IdempotencyKey::parse(&text) {
        let path = key.path();
        assert!(path.starts_with("idempotency/") && !path[12..].contains(|c: char| !c.is_ascii_hexdigit()));
    }
    if let Ok(h) = parse_hostname(&text) {
        assert!(is_label(h) && !h.contains('/'));
    }
    let _ = route("GET", &text);
    let _ = route("DELETE", &text);
});
