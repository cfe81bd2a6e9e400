//! The name template parser: never panics, and any template it accepts only ever renders
//! valid single DNS labels' characters, starting with a letter and not ending in a hyphen,
//! whatever the counter.
#![no_main]

use hostnaming::core::template::Template;
use hostnaming::core::validate::Tuple;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: (&str, u64)| {
    let (source, number) = data;
    let Ok(template) = Template::parse(source) else {
        return;
    };
    let request = Tuple::parse("web", "a-1", "prod").expect("valid");
    for n in [0, 1, 9, 10, number, u64::MAX] {
        let name = template.render(&request, n);
        assert!(name.starts_with(|c: char| c.is_ascii_lowercase()), "{source:?} -> {name}");
        assert!(!name.ends_with('-'), "{source:?} -> {name}");
        assert!(
            name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{source:?} -> {name}"
        );
    }
    let path = template.counter_path(&request);
    assert!(path.starts_with("applications/") && path.ends_with("/counter") && !path.contains(".."));
});
