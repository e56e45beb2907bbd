//! One [`AuditEvent`] as one JSON line, written by hand: byte for byte what
//! `serde_json::to_vec(&event)` writes (same fields, same order, same escapes; the tests compare
//! them), at a fraction of the cost. Strings that need no escape (almost all) are copied whole
//! after one branch-free scan instead of being escaped byte by byte, and the timestamp, ids and
//! numbers are written without `fmt`. Anything unusual (a string to escape, an IPv6 address, a
//! year outside 0000–9999, a leap second) is handed to `serde_json` for that value alone.

use super::AuditEvent;
use chrono::{DateTime, Datelike, Timelike, Utc};
use std::net::IpAddr;
use uuid::Uuid;

/// `,"name":` as one literal: one copy per field instead of three.
macro_rules! key {
    ($name:literal) => {
        concat!(",\"", $name, "\":").as_bytes()
    };
}

/// Appends `event` as JSON and a newline to `out`.
pub fn write_line(event: &AuditEvent, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    let e = event;
    out.reserve(1024);
    out.extend_from_slice(b"{\"event_id\":");
    uuid(out, &e.event_id);
    out.extend_from_slice(b",\"occurred_at\":");
    timestamp(out, &e.occurred_at)?;
    field(out, key!("request_id"), Some(&e.request_id))?;
    field(out, key!("instance_id"), Some(&*e.instance_id))?;
    field(out, key!("api"), e.api.as_deref())?;
    field(out, key!("method"), Some(&e.method))?;
    field(out, key!("path"), Some(&e.path))?;
    field(out, key!("route_id"), e.route_id.as_deref())?;
    field(out, key!("principal_id"), e.principal_id.as_deref())?;
    field(out, key!("principal_kind"), Some(&*e.principal_kind))?;
    field(out, key!("principal_issuer"), e.principal_issuer.as_deref())?;
    list(out, key!("groups"), &e.groups)?;
    out.extend_from_slice(key!("node_keys"));
    out.push(b'[');
    for (i, k) in e.node_keys.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        uuid(out, k);
    }
    out.push(b']');
    list(out, key!("verbs"), &e.verbs)?;
    field(out, key!("decision"), Some(&*e.decision))?;
    field(out, key!("reason"), e.reason.as_deref())?;
    field(out, key!("reason_detail"), e.reason_detail.as_deref())?;
    list(out, key!("granted_via"), &e.granted_via)?;
    out.extend_from_slice(key!("client_addr"));
    match e.client_addr {
        None => out.extend_from_slice(b"null"),
        Some(IpAddr::V4(v4)) => {
            out.push(b'"');
            for (i, octet) in v4.octets().iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                integer(out, u64::from(*octet));
            }
            out.push(b'"');
        }
        Some(addr) => serde_json::to_writer(&mut *out, &addr)?,
    }
    field(out, key!("user_agent"), e.user_agent.as_deref())?;
    out.extend_from_slice(key!("upstream_status"));
    match e.upstream_status {
        Some(s) => integer(out, u64::from(s)),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(key!("upstream_latency_us"));
    match e.upstream_latency_us {
        Some(n) if n >= 0 => integer(out, n.unsigned_abs()),
        Some(n) => serde_json::to_writer(&mut *out, &n)?,
        None => out.extend_from_slice(b"null"),
    }
    field(
        out,
        key!("upstream_identity"),
        e.upstream_identity.as_deref(),
    )?;
    out.extend_from_slice(b"}\n");
    Ok(())
}

/// `,"name":value` for a string or `null` (`key` is `key!("name")`).
fn field(out: &mut Vec<u8>, key: &[u8], value: Option<&str>) -> Result<(), serde_json::Error> {
    out.extend_from_slice(key);
    match value {
        Some(v) => string(out, v),
        None => {
            out.extend_from_slice(b"null");
            Ok(())
        }
    }
}

/// `,"name":[…]` for a list of strings (`key` is `key!("name")`).
fn list<S: AsRef<str>>(
    out: &mut Vec<u8>,
    key: &[u8],
    values: &[S],
) -> Result<(), serde_json::Error> {
    out.extend_from_slice(key);
    out.push(b'[');
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(out, v.as_ref())?;
    }
    out.push(b']');
    Ok(())
}

/// A JSON string: copied whole when nothing in it needs an escape (`"`, `\`, control bytes:
/// exactly what serde_json escapes), else escaped by serde_json.
fn string(out: &mut Vec<u8>, s: &str) -> Result<(), serde_json::Error> {
    if needs_escape(s.as_bytes()) {
        return serde_json::to_writer(&mut *out, s);
    }
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
    Ok(())
}

/// Whether `s` holds a byte JSON escapes (`"`, `\`, below 0x20), eight bytes a step: the
/// classic test for a byte below `n` in a word, `(x - n·0x01…) & !x & 0x80…`, on `x` (below
/// 0x20) and on `x` xor `"` and xor `\` (a zero byte). A word with no such byte never tests
/// positive, so no escape is missed; a false positive only hands the string to `serde_json`.
fn needs_escape(s: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = ONES << 7;
    let below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x & HIGH;
    let mut words = s.chunks_exact(8);
    let mut hit = 0;
    for w in &mut words {
        let x = u64::from_ne_bytes(w.try_into().unwrap_or_default());
        hit |= below(x, 0x20)
            | below(x ^ (ONES * u64::from(b'"')), 1)
            | below(x ^ (ONES * u64::from(b'\\')), 1);
    }
    hit != 0
        || words
            .remainder()
            .iter()
            .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

fn uuid(out: &mut Vec<u8>, id: &Uuid) {
    let mut buf = [0u8; 36];
    out.push(b'"');
    out.extend_from_slice(id.hyphenated().encode_lower(&mut buf).as_bytes());
    out.push(b'"');
}

/// chrono's serialisation of a UTC time: RFC 3339 with `Z` and the fraction as 3, 6 or 9
/// digits, as many as it needs (`SecondsFormat::AutoSi`).
fn timestamp(out: &mut Vec<u8>, t: &DateTime<Utc>) -> Result<(), serde_json::Error> {
    let nano = t.nanosecond();
    if !(0..=9999).contains(&t.year()) || nano >= 1_000_000_000 {
        return serde_json::to_writer(&mut *out, t);
    }
    out.push(b'"');
    digits(out, t.year().unsigned_abs(), 4);
    out.push(b'-');
    digits(out, t.month(), 2);
    out.push(b'-');
    digits(out, t.day(), 2);
    out.push(b'T');
    digits(out, t.hour(), 2);
    out.push(b':');
    digits(out, t.minute(), 2);
    out.push(b':');
    digits(out, t.second(), 2);
    if nano != 0 {
        out.push(b'.');
        if nano % 1_000_000 == 0 {
            digits(out, nano / 1_000_000, 3);
        } else if nano % 1_000 == 0 {
            digits(out, nano / 1_000, 6);
        } else {
            digits(out, nano, 9);
        }
    }
    out.extend_from_slice(b"Z\"");
    Ok(())
}

/// `n` in exactly `width` decimal digits (zero-padded; `n` must fit).
fn digits(out: &mut Vec<u8>, mut n: u32, width: usize) {
    let start = out.len();
    out.resize(start + width, b'0');
    for slot in out[start..].iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// `n` in decimal.
fn integer(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::tests::{sample_allow, sample_deny};
    use chrono::TimeZone;

    fn same_as_serde(e: &AuditEvent) {
        let mut ours = Vec::new();
        write_line(e, &mut ours).expect("write");
        let mut theirs = serde_json::to_vec(e).expect("serde");
        theirs.push(b'\n');
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&theirs)
        );
    }

    #[test]
    fn sample_events_are_written_exactly_as_serde_json_writes_them() {
        same_as_serde(&sample_allow());
        same_as_serde(&sample_deny());
        let mut e = sample_allow();
        e.instance_id = "portcullis-1".into();
        e.upstream_identity = Some("umbraco-back-office-gw".into());
        e.upstream_latency_us = Some(0);
        e.upstream_status = Some(65535);
        same_as_serde(&e);
    }

    #[test]
    fn strings_that_need_escapes_and_odd_values_match_serde_json() {
        let mut e = sample_deny();
        e.user_agent = Some("q\"uote \\ back\u{1}ctl\ttab\u{7f}del é ü 中 🦀".into());
        e.path = "/a\nb\r\u{0}".into();
        e.groups = vec!["a\"b".into(), "".into(), "plain".into()];
        e.granted_via = vec!["x\u{1f}y".into()];
        e.client_addr = Some("2001:db8::1".parse().expect("ip"));
        e.upstream_latency_us = Some(-5);
        e.upstream_status = None;
        e.node_keys.clear();
        e.verbs.clear();
        same_as_serde(&e);
        e.client_addr = None;
        e.api = None;
        e.route_id = None;
        e.principal_id = None;
        same_as_serde(&e);
        e.client_addr = Some("255.0.10.1".parse().expect("ip"));
        same_as_serde(&e);
    }

    #[test]
    fn a_byte_to_escape_is_found_wherever_it_is_in_a_string() {
        let mut e = sample_allow();
        for len in 0..40 {
            e.path = "a".repeat(len);
            same_as_serde(&e);
            for at in 0..len {
                for special in ['"', '\\', '\u{0}', '\u{1}', '\u{1f}'] {
                    let mut p = "a".repeat(len);
                    p.replace_range(at..=at, &special.to_string());
                    e.path = p;
                    same_as_serde(&e);
                }
            }
            // Neighbours of the escaped bytes (and multi-byte UTF-8) beside one: still found.
            for filler in [" ", "!", "#", "[", "]", "\u{7f}", "\u{e9}", "\u{ffff}"] {
                let mut p = filler.repeat(len);
                e.path = p.clone();
                same_as_serde(&e);
                p.insert(len / 2 * filler.len(), '"');
                e.path = p;
                same_as_serde(&e);
            }
        }
    }

    #[test]
    fn timestamps_are_written_as_chrono_serialises_them() {
        let mut e = sample_allow();
        let base = Utc
            .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
            .single()
            .expect("time");
        for nanos in [
            0,
            7_000_000,
            123_000_000,
            120_000,
            1_000,
            123_456_000,
            999_999_999,
            1,
        ] {
            e.occurred_at = base + chrono::Duration::nanoseconds(nanos);
            same_as_serde(&e);
        }
        for (y, mo, d) in [(1, 1, 1), (999, 12, 31), (9999, 12, 31), (10000, 1, 1)] {
            e.occurred_at = Utc
                .with_ymd_and_hms(y, mo, d, 23, 59, 59)
                .single()
                .expect("t");
            same_as_serde(&e);
        }
        e.occurred_at = Utc.with_ymd_and_hms(-1, 1, 1, 0, 0, 0).single().expect("t");
        same_as_serde(&e);
    }
}
