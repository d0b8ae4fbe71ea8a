//! sslserver's `-x` rules lookup in a cdb written by tcprules, in ucspi-tcp 0.88's order:
//! `info@ip`, `info@=host`, `ip`, `=host`, the dotted prefixes of `ip` longest first, the
//! `=.suffix`es of host, `=` (host known), and the empty key. The first key found decides;
//! its data is `D\0` (deny) and `+NAME=value\0` items. The file is opened per connection.

use std::io;
use std::path::Path;

use sqmail::cdb;

/// What a rule said.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decision {
    /// The connection is refused.
    pub deny: bool,
    /// Variables to set, in rule order.
    pub vars: Vec<(String, String)>,
}

fn decode(data: &[u8]) -> Decision {
    let mut d = Decision::default();
    for item in data.split(|&b| b == 0) {
        match item.split_first() {
            Some((b'D', _)) => d.deny = true,
            Some((b'+', kv)) => {
                if let Some(i) = kv.iter().position(|&b| b == b'=') {
                    let (k, v) = kv.split_at(i);
                    d.vars.push((
                        String::from_utf8_lossy(k).into_owned(),
                        String::from_utf8_lossy(v.get(1..).unwrap_or_default()).into_owned(),
                    ));
                }
            }
            _ => {}
        }
    }
    d
}

/// The keys tried, in order.
pub fn keys(ip: &str, host: Option<&str>, info: Option<&str>) -> Vec<String> {
    let mut k = Vec::new();
    if let Some(i) = info {
        k.push(format!("{i}@{ip}"));
        if let Some(h) = host {
            k.push(format!("{i}@={h}"));
        }
    }
    k.push(ip.to_string());
    if let Some(h) = host {
        k.push(format!("={h}"));
    }
    if !ip.contains(':') {
        let mut end = ip.len();
        while let Some(i) = ip.get(..end).and_then(|s| s.rfind('.')) {
            k.push(ip.get(..=i).unwrap_or_default().to_string());
            end = i;
        }
    }
    if let Some(h) = host {
        let mut rest = h;
        while let Some(i) = rest.find('.') {
            rest = rest.get(i..).unwrap_or_default();
            k.push(format!("={rest}"));
            rest = rest.get(1..).unwrap_or_default();
        }
        k.push("=".to_string());
    }
    k.push(String::new());
    k
}

/// Looks the client up. `Ok(None)`: the cdb does not exist.
///
/// # Errors
/// The cdb exists but cannot be read.
pub fn lookup(
    path: &str,
    ip: &str,
    host: Option<&str>,
    info: Option<&str>,
) -> io::Result<Option<Decision>> {
    let Some(r) = cdb::Reader::open(Path::new(path))? else {
        return Ok(None);
    };
    for key in keys(ip, host, info) {
        if let Some(data) = r.get(key.as_bytes())? {
            return Ok(Some(decode(&data)));
        }
    }
    Ok(Some(Decision::default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_order() {
        assert_eq!(
            keys("1.2.3.4", Some("mx.a.example"), Some("joe")),
            [
                "joe@1.2.3.4",
                "joe@=mx.a.example",
                "1.2.3.4",
                "=mx.a.example",
                "1.2.3.",
                "1.2.",
                "1.",
                "=.a.example",
                "=.example",
                "=",
                ""
            ]
        );
        assert_eq!(keys("::1", None, None), ["::1", ""]);
    }

    #[test]
    fn data_items() {
        let d = decode(b"D\0+RELAYCLIENT=\0+X=a=b\0junk\0");
        assert!(d.deny);
        assert_eq!(
            d.vars,
            [
                ("RELAYCLIENT".into(), String::new()),
                ("X".into(), "a=b".into())
            ]
        );
    }
}
