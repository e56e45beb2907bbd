//! Fuzzes request-target canonicalisation: whatever the input, the result is either a rejection
//! or a canonical target that is idempotent, has no dot or empty segments, no raw `\`, `;`, `#`
//! or control characters, and stays inside the protected prefix the input started in.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::request::normalize::{canonicalize, Prefixes};

const PREFIXES: [&str; 2] = ["/umbraco/management/api", "/umbraco/delivery/api"];

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let prefixes = Prefixes::new(PREFIXES);
    let Ok(c) = canonicalize(input, &prefixes) else {
        return;
    };
    let uri = c.uri();
    assert!(c.path.starts_with('/'), "{input:?} -> {uri:?}");
    assert!(c.path == "/" || !c.path.ends_with('/'), "{input:?} -> {uri:?}");
    assert!(!c.path.contains("//"), "{input:?} -> {uri:?}");
    assert!(
        !uri.bytes().any(|b| b < 0x20 || b >= 0x7f || b == b'\\' || b == b'#'),
        "{input:?} -> {uri:?}"
    );
    assert!(!c.path.contains(';'), "{input:?} -> {uri:?}");
    for seg in c.segments() {
        assert!(!seg.is_empty() && !seg.ends_with('.'), "{input:?} -> {uri:?}");
    }
    // Idempotent.
    let again = canonicalize(&uri, &prefixes);
    assert_eq!(again.as_ref().map(|a| a.uri()), Ok(uri.clone()), "{input:?}");
    // Never leaves the protected prefix the input lexically started in.
    if input.starts_with('/') {
        let raw_path = input.split(['?', '#']).next().unwrap_or("");
        let raw_segs = raw_path.split('/').filter(|s| !s.is_empty());
        if let Some(p) = prefixes.find(raw_segs) {
            assert_eq!(prefixes.find(c.segments()), Some(p), "{input:?} -> {uri:?}");
        }
    }
});
