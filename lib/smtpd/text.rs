//! The texts qmail-smtpd writes besides its replies: the Received header field and the log
//! lines on fd 2 (s/qmail's format, which qmail-mrtg parses).

/// The client as the Received line and the log show it.
#[derive(Clone, Debug, Default)]
pub struct Peer {
    /// TCPREMOTEIP, or `unknown`.
    pub ip: Vec<u8>,
    /// TCPREMOTEHOST, when set.
    pub host: Option<Vec<u8>>,
    /// TCPREMOTEINFO, or the authenticated user.
    pub info: Option<Vec<u8>>,
    /// TCPLOCALHOST, else TCPLOCALIP, else `unknown`.
    pub local: Vec<u8>,
}

impl Peer {
    /// The remote host name, `unknown` when not known.
    pub fn host(&self) -> &[u8] {
        self.host.as_deref().unwrap_or(b"unknown")
    }
}

/// qmail's safeput: letters, digits and `.@%+/=:-[]` pass, everything else becomes `?`.
pub fn safe(out: &mut Vec<u8>, s: &[u8]) {
    out.extend(s.iter().map(|&c| {
        if c.is_ascii_alphanumeric() || b".@%+/=:-[]".contains(&c) {
            c
        } else {
            b'?'
        }
    }));
}

/// The Received field qmail-smtpd puts in front of the message:
/// `Received: from HOST (HELO helo) (info@ip)`, an optional `  de/crypted with TLS` line,
/// then `  by LOCAL with PROTOCOL; DATE`. `helo` is left out when it equals the host
/// (case-insensitively). `date` is qmail's date822fmt, newline included.
pub fn received(peer: &Peer, helo: &[u8], tls: Option<&[u8]>, proto: &str, date: &str) -> Vec<u8> {
    let mut r = b"Received: from ".to_vec();
    safe(&mut r, peer.host());
    if !helo.eq_ignore_ascii_case(peer.host()) {
        r.extend_from_slice(b" (HELO ");
        safe(&mut r, helo);
        r.push(b')');
    }
    r.extend_from_slice(b" (");
    if let Some(info) = &peer.info {
        safe(&mut r, info);
        r.push(b'@');
    }
    safe(&mut r, &peer.ip);
    r.extend_from_slice(b")\n");
    if let Some(t) = tls {
        r.extend_from_slice(b"  de/crypted with ");
        r.extend(t.iter().map(|&c| {
            if c.is_ascii_graphic() || c == b' ' {
                c
            } else {
                b'?'
            }
        }));
        r.push(b'\n');
    }
    r.extend_from_slice(b"  by ");
    safe(&mut r, &peer.local);
    r.extend_from_slice(b" with ");
    r.extend_from_slice(proto.as_bytes());
    r.extend_from_slice(b"; ");
    r.extend_from_slice(date.as_bytes());
    r
}

/// The TLS description of the Received line:
/// `PROTOCOL: CIPHER [usebits/algbits] DN=client-DN-or-none`.
pub fn tls_info(vars: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let get = |k: &[u8]| {
        vars.iter()
            .find(|(n, _)| n.as_slice() == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let dn = get(b"SSL_CLIENT_S_DN");
    let mut t = get(b"SSL_PROTOCOL");
    t.extend_from_slice(b": ");
    t.extend_from_slice(&get(b"SSL_CIPHER"));
    t.extend_from_slice(b" [");
    t.extend_from_slice(&get(b"SSL_CIPHER_USEKEYSIZE"));
    t.push(b'/');
    t.extend_from_slice(&get(b"SSL_CIPHER_ALGKEYSIZE"));
    t.extend_from_slice(b"] DN=");
    t.extend_from_slice(if dn.is_empty() { b"none" } else { &dn });
    t
}

/// One decision for the log.
#[derive(Clone, Copy, Debug)]
pub struct Event<'a> {
    /// `Accept` or `Reject`.
    pub action: &'a str,
    /// `SNDR`, `ORIG`, `RCPT`, `DATA`, `AUTH` or `TLS`.
    pub kind: &'a str,
    /// The condition, such as `Bad_Rcptto`.
    pub cond: &'a str,
}

/// Where the session stands, for the log.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    /// The process id.
    pub pid: u32,
    /// The protocol label (`ESMTPSA`…).
    pub proto: &'a str,
    /// The client.
    pub peer: &'a Peer,
    /// The HELO argument.
    pub helo: &'a [u8],
    /// The envelope sender.
    pub from: &'a [u8],
    /// The recipient in question.
    pub to: &'a [u8],
}

fn printable(out: &mut Vec<u8>, s: &[u8]) {
    out.extend(
        s.iter()
            .map(|&c| if c.is_ascii_graphic() { c } else { b'?' }),
    );
}

/// `qmail-smtpd: pid PID Action::Type::Condition P:PROTO S:IP:HOST H:HELO F:FROM T:TO`,
/// then ` extra` when given, and a newline.
pub fn log(c: &Context<'_>, e: &Event<'_>, extra: &[u8]) -> Vec<u8> {
    let mut l = format!(
        "qmail-smtpd: pid {} {}::{}::{} P:{} S:",
        c.pid, e.action, e.kind, e.cond, c.proto
    )
    .into_bytes();
    printable(&mut l, &c.peer.ip);
    l.push(b':');
    printable(&mut l, c.peer.host());
    l.extend_from_slice(b" H:");
    printable(&mut l, c.helo);
    l.extend_from_slice(b" F:");
    printable(&mut l, c.from);
    l.extend_from_slice(b" T:");
    printable(&mut l, c.to);
    if !extra.is_empty() {
        l.push(b' ');
        l.extend(extra.iter().map(|&c| {
            if c == b' ' || c.is_ascii_graphic() {
                c
            } else {
                b'?'
            }
        }));
    }
    l.push(b'\n');
    l
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> Peer {
        Peer {
            ip: b"127.0.0.1".to_vec(),
            host: Some(b"client.test".to_vec()),
            info: None,
            local: b"mx.test".to_vec(),
        }
    }

    #[test]
    fn received_lines() {
        let d = "26 Nov 2026 04:28:40 -0000\n";
        assert_eq!(
            received(&peer(), b"Client.Test", None, "ESMTP", d),
            b"Received: from client.test (127.0.0.1)\n  by mx.test with ESMTP; 26 Nov 2026 04:28:40 -0000\n"
        );
        let mut p = peer();
        p.info = Some(b"joe".to_vec());
        p.host = None;
        assert_eq!(
            received(&p, b"x y", Some(b"TLSv1.3: X [256/256] DN=none"), "ESMTPSA", d),
            b"Received: from unknown (HELO x?y) (joe@127.0.0.1)\n  de/crypted with TLSv1.3: X [256/256] DN=none\n  by mx.test with ESMTPSA; 26 Nov 2026 04:28:40 -0000\n".to_vec()
        );
    }

    #[test]
    fn log_lines() {
        let p = peer();
        let c = Context {
            pid: 7,
            proto: "ESMTP",
            peer: &p,
            helo: b"h",
            from: b"a@b",
            to: b"c\rd",
        };
        let e = Event {
            action: "Reject",
            kind: "RCPT",
            cond: "Bad_Rcptto",
        };
        assert_eq!(
            log(&c, &e, b""),
            b"qmail-smtpd: pid 7 Reject::RCPT::Bad_Rcptto P:ESMTP S:127.0.0.1:client.test H:h F:a@b T:c?d\n"
        );
    }
}
