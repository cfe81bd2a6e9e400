//! The built component imports only what Spin provides and exports what Spin and our
//! host call, so `spin up` can run it.

use hostnaming_testkit as common;

/// The names of the built component's imports and of its exports.
fn imports_and_exports() -> (Vec<String>, Vec<String>) {
    let rt = common::runtime();
    let ty = rt.component().component_type();
    let imports = ty.imports(rt.engine()).map(|(n, _)| n.to_string());
    let exports = ty.exports(rt.engine()).map(|(n, _)| n.to_string());
    (imports.collect(), exports.collect())
}

#[test]
fn the_component_imports_only_wasi_0_2_and_spin_variables() {
    let (imports, _) = imports_and_exports();
    assert!(
        imports.iter().any(|i| i == "fermyon:spin/variables@2.0.0"),
        "{imports:?}"
    );
    assert!(
        imports
            .iter()
            .any(|i| i.starts_with("wasi:http/outgoing-handler@0.2.")),
        "{imports:?}"
    );
    for import in &imports {
        let wasi_0_2 = import.starts_with("wasi:")
            && import
                .rsplit_once('@')
                .is_some_and(|(_, v)| v.starts_with("0.2."));
        assert!(
            wasi_0_2 || import == "fermyon:spin/variables@2.0.0",
            "{import} is not provided by Spin"
        );
    }
}

#[test]
fn the_component_exports_the_http_handler_and_our_allocator() {
    let (_, exports) = imports_and_exports();
    assert!(
        exports
            .iter()
            .any(|e| e.starts_with("wasi:http/incoming-handler@0.2.")),
        "{exports:?}"
    );
    assert!(
        exports.contains(&"hostnaming:naming/allocator@0.1.0".to_string()),
        "{exports:?}"
    );
}

/// The size budget: 640 KiB with the web page embedded (docs/performance.md says what it
/// costs and how it was met).
const BUDGET: u64 = 640 * 1024;

#[test]
fn the_shipped_component_fits_its_size_budget() {
    let size = std::fs::metadata(common::COMPONENT).unwrap().len();
    assert!(
        size <= BUDGET,
        "the component is {size} bytes ({} KiB), over its budget of {} KiB",
        size / 1024,
        BUDGET / 1024
    );
}
