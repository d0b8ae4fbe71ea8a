//! Numbers, ports and IP addresses as ucspi-tcp reads and writes them: `scan_ulong`'s
//! leading digits, decimal or `/etc/services` ports, DJB's lenient dotted-decimal parsing,
//! and the address forms the rules database uses (the expanded upper-case IPv6 text and the
//! CIDR bit strings of ucspi-tcp6).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The longest `/etc/services` this reads (bytes).
const SERVICES_MAX: u64 = 1 << 20;

/// DJB's `scan_ulong`: the value of the leading decimal digits (wrapping as C does) and how
/// many bytes they take.
pub fn scan_ulong(s: &[u8]) -> (u64, usize) {
    let mut v: u64 = 0;
    let mut n = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            break;
        }
        v = v.wrapping_mul(10).wrapping_add(u64::from(c - b'0'));
        n += 1;
    }
    (v, n)
}

/// A numeric option argument: its leading digits, 0 when there are none.
pub fn number(s: &[u8]) -> u64 {
    scan_ulong(s).0
}

/// A port: decimal (truncated to 16 bits, as C's assignment does) or a TCP service name
/// from `/etc/services`.
pub fn port(s: &[u8]) -> Option<u16> {
    let (v, n) = scan_ulong(s);
    if n == s.len() {
        #[allow(clippy::cast_possible_truncation)] // ucspi-tcp assigns to a uint16
        return Some(v as u16);
    }
    let data = std::fs::read("/etc/services").ok()?;
    service(&data, s)
}

/// Looks a TCP service up in `/etc/services` text.
fn service(data: &[u8], name: &[u8]) -> Option<u16> {
    let data = data
        .get(..usize::try_from(SERVICES_MAX).unwrap_or(usize::MAX))
        .unwrap_or(data);
    for line in data.split(|&c| c == b'\n') {
        let line = line.split(|&c| c == b'#').next().unwrap_or_default();
        let mut words = line
            .split(|&c| c == b' ' || c == b'\t' || c == b'\r')
            .filter(|w| !w.is_empty());
        let (Some(first), Some(pp)) = (words.next(), words.next()) else {
            continue;
        };
        let Some(slash) = pp.iter().position(|&c| c == b'/') else {
            continue;
        };
        if pp.get(slash + 1..) != Some(b"tcp".as_slice()) {
            continue;
        }
        if first != name && !words.any(|w| w == name) {
            continue;
        }
        let num = pp.get(..slash).unwrap_or_default();
        let (v, n) = scan_ulong(num);
        if n == num.len() && n > 0 {
            return u16::try_from(v).ok();
        }
    }
    None
}

/// DJB's `ip4_scan`: four dotted decimal numbers (each taken modulo 256) at the start of
/// `s`, and how many bytes they take.
pub fn ip4_scan(s: &[u8]) -> Option<(Ipv4Addr, usize)> {
    let mut o = [0u8; 4];
    let mut pos = 0;
    for (k, slot) in o.iter_mut().enumerate() {
        if k > 0 {
            if s.get(pos) != Some(&b'.') {
                return None;
            }
            pos += 1;
        }
        let (v, n) = scan_ulong(s.get(pos..).unwrap_or_default());
        if n == 0 {
            return None;
        }
        #[allow(clippy::cast_possible_truncation)] // C stores the number in a char
        {
            *slot = v as u8;
        }
        pos += n;
    }
    Some((Ipv4Addr::from(o), pos))
}

/// DJB's `dns_ip4` for a name made only of digits, dots and brackets: the addresses it
/// spells without asking the DNS (`None` when the name has other bytes and needs a lookup).
pub fn numeric_ip4(name: &[u8]) -> Option<Vec<Ipv4Addr>> {
    if !name
        .iter()
        .all(|&c| c.is_ascii_digit() || c == b'.' || c == b'[' || c == b']')
    {
        return None;
    }
    let mut bytes = Vec::new();
    let mut code: u8 = 0;
    for &c in name.iter().chain(b".") {
        match c {
            b'[' | b']' => {}
            b'.' => {
                bytes.push(code);
                code = 0;
            }
            d => code = code.wrapping_mul(10).wrapping_add(d - b'0'),
        }
    }
    Some(
        bytes
            .chunks_exact(4)
            .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]))
            .collect(),
    )
}

/// The address as the tcp-environ variables show it: dotted decimal, or the compact
/// RFC 5952 form for IPv6.
pub fn text(ip: IpAddr) -> String {
    ip.to_string()
}

/// An IPv6 address fully expanded, upper-case, a colon after every four digits: the key
/// form ucspi-tcp6 stores for IPv6 rules (`2001:0DB8:0000:...:0001`).
pub fn expanded(ip: &Ipv6Addr) -> String {
    ip.segments()
        .iter()
        .map(|s| format!("{s:04X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The symbols ucspi-tcp6 writes for the one bits of an IPv4 address, by bit position.
const IP4_ONES: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz123456";

/// The CIDR bit string of an IPv4 address (32 symbols): a zero bit is `0`, a one bit at
/// position k (0 = the top bit of the first octet) is the k-th byte of
/// `abcdefghijklmnopqrstuvwxyz123456`. A `/n` rule is `_` plus the first n symbols.
pub fn bits4(ip: &Ipv4Addr) -> Vec<u8> {
    let v = u32::from(*ip);
    IP4_ONES
        .iter()
        .enumerate()
        .map(|(k, &one)| if v >> (31 - k) & 1 == 1 { one } else { b'0' })
        .collect()
}

/// The CIDR bit string of an IPv6 address (128 symbols): a zero bit is `0`, the i-th one
/// bit (counting one bits from 0) is the byte 0x60 + i. A `/n` rule is `^` plus the first n
/// symbols.
pub fn bits6(ip: &Ipv6Addr) -> Vec<u8> {
    let v = u128::from(*ip);
    let mut ones: u8 = 0x60;
    (0..128)
        .map(|k| {
            if v >> (127 - k) & 1 == 1 {
                let s = ones;
                ones = ones.wrapping_add(1);
                s
            } else {
                b'0'
            }
        })
        .collect()
}

/// An IPv4 CIDR block as tcprules reads it: one to four dotted numbers (missing octets are
/// zero) and a prefix length 1..=32.
pub fn cidr4(s: &[u8]) -> Option<(Ipv4Addr, usize)> {
    let slash = s.iter().position(|&c| c == b'/')?;
    let (a, p) = (s.get(..slash)?, s.get(slash + 1..)?);
    let (len, n) = scan_ulong(p);
    if n == 0 || n != p.len() || !(1..=32).contains(&len) {
        return None;
    }
    let a = a.strip_suffix(b".").unwrap_or(a);
    let mut o = [0u8; 4];
    for (k, part) in a.split(|&c| c == b'.').enumerate() {
        let (v, n) = scan_ulong(part);
        let slot = o.get_mut(k)?;
        if n == 0 || n != part.len() || v > 255 {
            return None;
        }
        *slot = u8::try_from(v).ok()?;
    }
    Some((Ipv4Addr::from(o), usize::try_from(len).ok()?))
}

/// An IPv6 CIDR block: an address and a prefix length 1..=128.
pub fn cidr6(s: &[u8]) -> Option<(Ipv6Addr, usize)> {
    let slash = s.iter().position(|&c| c == b'/')?;
    let ip = ipv6(s.get(..slash)?)?;
    let p = s.get(slash + 1..)?;
    let (len, n) = scan_ulong(p);
    if n == 0 || n != p.len() || !(1..=128).contains(&len) {
        return None;
    }
    Some((ip, usize::try_from(len).ok()?))
}

/// An IPv6 address in text form.
pub fn ipv6(s: &[u8]) -> Option<Ipv6Addr> {
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// The index of a network interface by name (for an IPv6 link-local bind), asked of the
/// kernel in this process's network namespace.
pub use sqmail::sys::interface_index;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_ulong_takes_leading_digits() {
        assert_eq!(scan_ulong(b"40x"), (40, 2));
        assert_eq!(scan_ulong(b"x"), (0, 0));
        assert_eq!(number(b""), 0);
        assert_eq!(port(b"65537"), Some(1), "truncated like a C uint16");
        assert_eq!(port(b"25"), Some(25));
    }

    #[test]
    fn services_are_found_by_name_and_alias() {
        let data = b"# c\nsmtp\t\t25/tcp\t\tmail\nfoo 7/udp\nqmtp 209/tcp # x\n";
        assert_eq!(service(data, b"smtp"), Some(25));
        assert_eq!(service(data, b"mail"), Some(25));
        assert_eq!(service(data, b"qmtp"), Some(209));
        assert_eq!(service(data, b"foo"), None, "udp only");
        assert_eq!(service(data, b"x"), None);
    }

    #[test]
    fn dotted_decimal_is_read_as_djb_does() {
        assert_eq!(ip4_scan(b"1.2.3.4x"), Some((Ipv4Addr::new(1, 2, 3, 4), 7)));
        assert_eq!(ip4_scan(b"1.2.3.260"), Some((Ipv4Addr::new(1, 2, 3, 4), 9)));
        assert_eq!(ip4_scan(b"1.2.3"), None);
        assert_eq!(numeric_ip4(b"127.0.0.1"), Some(vec![Ipv4Addr::LOCALHOST]));
        assert_eq!(
            numeric_ip4(b"[10.0.0.1]"),
            Some(vec![Ipv4Addr::new(10, 0, 0, 1)])
        );
        assert_eq!(numeric_ip4(b"1.2.3"), Some(vec![]));
        assert_eq!(numeric_ip4(b"0"), Some(vec![]));
        assert_eq!(numeric_ip4(b"a.example"), None);
    }

    #[test]
    fn rule_forms_of_addresses() {
        let ip: Ipv6Addr = "2001:db8::1".parse().unwrap();
        assert_eq!(expanded(&ip), "2001:0DB8:0000:0000:0000:0000:0000:0001");
        assert_eq!(&bits4(&Ipv4Addr::new(10, 0, 0, 0))[..8], b"0000e0g0");
        assert_eq!(bits4(&Ipv4Addr::new(255, 255, 255, 255)), IP4_ONES.to_vec());
        let b = bits6(&"8000::1".parse().unwrap());
        assert_eq!(b[0], 0x60);
        assert_eq!(b[127], 0x61);
        assert_eq!(b.iter().filter(|&&c| c == b'0').count(), 126);
        assert_eq!(cidr4(b"127./8"), Some((Ipv4Addr::new(127, 0, 0, 0), 8)));
        assert_eq!(cidr4(b"10.0.0.0/8"), Some((Ipv4Addr::new(10, 0, 0, 0), 8)));
        assert_eq!(cidr4(b"10.0.0.0/0"), None);
        assert_eq!(cidr4(b"10.0.0.0/33"), None);
        assert_eq!(cidr4(b"1.2.3.4.5/8"), None);
        assert_eq!(cidr4(b"300.0/8"), None);
        assert_eq!(cidr6(b"2002::/48").map(|c| c.1), Some(48));
        assert_eq!(cidr6(b"2002::/129"), None);
    }
}
