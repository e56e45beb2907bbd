//! Numbers and addresses as text without `core::fmt`, for what every request writes: the
//! audit line, the `granted_via` entries, `X-Forwarded-For` and `traceparent`. `fmt`'s
//! machinery (a `Formatter`, a `dyn Write`, padding checks) costs ~0.5–1 k instructions a value
//! (callgrind, `benches/load/instructions`); these write the same bytes directly (integers
//! through `itoa`). The tests compare every function with `fmt`'s output.

use std::fmt::Write as _;
use std::net::IpAddr;

/// Appends `n` in decimal, with a `-` when negative (as `Display` for `i64`), through `itoa`
/// (two digits a step from a table).
pub fn push_int(out: &mut String, n: i64) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// Appends the address as `Display` writes it: IPv4 dotted by hand, IPv6 (rare behind the
/// usual proxies, and with its zero-run rules) through `fmt`.
pub fn push_ip(out: &mut String, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                out.push_str(itoa::Buffer::new().format(octet));
            }
        }
        IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
}

/// Appends the low `digits` hex digits of `n`, lower case, zero-padded (as `{:0width$x}`).
pub fn push_hex(out: &mut String, n: u128, digits: u32) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for shift in (0..digits).rev() {
        let nibble = (n >> (shift * 4)) & 0xf;
        out.push(char::from(HEX[nibble as usize]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_match_display_at_the_edges() {
        for n in [
            0i64,
            7,
            9,
            10,
            255,
            -1,
            -20,
            99,
            100,
            1234,
            -21,
            i64::from(u32::MAX),
            i64::MAX,
            i64::MIN,
        ] {
            let mut s = String::new();
            push_int(&mut s, n);
            assert_eq!(s, n.to_string());
        }
    }

    #[test]
    fn addresses_match_display() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.255.9",
            "255.255.255.255",
            "::1",
            "2001:db8::8a2e:370:7334",
            "::ffff:192.0.2.1",
        ] {
            let ip: IpAddr = ip.parse().expect("address");
            let mut s = String::from("x");
            push_ip(&mut s, ip);
            assert_eq!(s, format!("x{ip}"));
        }
    }

    #[test]
    fn hex_matches_padded_lower_hex() {
        for n in [0u128, 1, 0xabc, u128::from(u64::MAX), u128::MAX, 1 << 100] {
            let mut s = String::new();
            push_hex(&mut s, n, 32);
            assert_eq!(s, format!("{n:032x}"));
            let mut s = String::new();
            push_hex(&mut s, n & u128::from(u64::MAX), 16);
            assert_eq!(s, format!("{:016x}", n & u128::from(u64::MAX)));
        }
    }
}
