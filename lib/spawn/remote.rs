//! qmail-rspawn: runs qmail-remote (or `$QMAILREMOTE`) for each remote recipient as
//! `qmail-remote host sender recipient`, and turns its per-recipient (`r`/`h`/`s`) and
//! per-message (`K`/`Z`/`D`) results into one report.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};

use super::{Deliver, crashed, os, unable_to_run};
use crate::env;

/// qmail-rspawn's state.
pub struct Remote {
    /// The qmail home.
    pub home: PathBuf,
}

impl Deliver for Remote {
    fn start(
        &mut self,
        mess: File,
        out: File,
        sender: &[u8],
        recip: &[u8],
        at: usize,
    ) -> Result<Child, Vec<u8>> {
        let prog = env::var("QMAILREMOTE")
            .filter(|p| !p.is_empty())
            .map(|p| self.home.join(os(&p)))
            .unwrap_or_else(|| self.home.join("bin/qmail-remote"));
        let err = out
            .try_clone()
            .map_err(|_| b"ZUnable to run qmail-remote.\n".to_vec())?;
        Command::new(prog)
            .arg(os(recip.get(at + 1..).unwrap_or_default()))
            .arg(os(sender))
            .arg(os(recip))
            .stdin(mess)
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| unable_to_run(&e, "qmail-remote"))
    }

    fn report(&self, st: ExitStatus, s: &[u8]) -> Vec<u8> {
        if crashed(st) {
            return b"Zqmail-remote crashed.\n".to_vec();
        }
        match st.code() {
            Some(0) => {}
            Some(111) => return b"ZUnable to run qmail-remote.\n".to_vec(),
            _ => return b"DUnable to run qmail-remote.\n".to_vec(),
        }
        remote_report(s)
    }

    fn truncate(&self) -> usize {
        0
    }
}

/// qmail-rspawn's reading of qmail-remote's output: NUL-terminated records, first the
/// recipient's (`r` accepted, `h` permanently refused, `s` temporarily), then the message's
/// (`K`, `Z`, `D`). The report's letter comes from the recipient record, corrected by the
/// message record, and the texts of both are joined.
pub fn remote_report(s: &[u8]) -> Vec<u8> {
    if s.is_empty() {
        return b"Zqmail-remote produced no output.\n".to_vec();
    }
    let mut result: i32 = -1;
    let mut j = 0;
    for (k, &c) in s.iter().enumerate() {
        if c == 0 {
            match s.get(j) {
                Some(b'K') => {
                    result = 1;
                    break;
                }
                Some(b'Z') => {
                    result = 0;
                    break;
                }
                Some(b'D') => break,
                _ => j = k + 1,
            }
        }
    }
    let orr = match s.first() {
        Some(b's') => 0,
        Some(b'h') => -1,
        _ => result,
    };
    let mut out = vec![match orr {
        1 => b'K',
        0 => b'Z',
        _ => b'D',
    }];
    let cstr = |from: usize| {
        s.get(from..)
            .unwrap_or_default()
            .split(|&b| b == 0)
            .next()
            .unwrap_or_default()
    };
    if let Some(k) = s.iter().skip(1).position(|&b| b == 0).map(|p| p + 2) {
        out.extend_from_slice(cstr(1));
        if result <= orr && k < s.len() && matches!(s.get(k), Some(b'Z' | b'D' | b'K')) {
            out.extend_from_slice(cstr(k + 1));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_follow_qmail_rspawn() {
        assert_eq!(remote_report(b"r\0Kok 123\0"), b"Kok 123");
        assert_eq!(remote_report(b"rAccepted\0Kqueued\0"), b"KAcceptedqueued");
        assert_eq!(
            remote_report(b"hNo such user\0DGiving up\0"),
            b"DNo such userGiving up"
        );
        assert_eq!(remote_report(b"sTry later\0Zlater\0"), b"ZTry laterlater");
        assert_eq!(
            remote_report(b"ZConnection refused\0"),
            b"ZConnection refused"
        );
        assert_eq!(remote_report(b"DBad host\0"), b"DBad host");
        assert_eq!(remote_report(b""), b"Zqmail-remote produced no output.\n");
    }
}
