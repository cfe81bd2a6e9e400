//! Placeholder; the provider is being written.
fn main() {}
