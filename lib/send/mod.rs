//! qmail-send: the scheduler. It takes preprocessed messages from qmail-todo, hands one
//! recipient at a time to qmail-lspawn or qmail-rspawn, records results in the channel
//! files, retries deferrals on qmail's schedule, and bounces failures.
//!
//! Descriptors, as qmail-start arranges them: 0 the log; 1/2 to and from qmail-lspawn; 3/4
//! to and from qmail-rspawn; 5/6 to and from qmail-clean; 7/8 to and from qmail-todo.
//! Signals: TERM finishes deliveries in progress and exits; ALRM retries everything now;
//! HUP rereads the control files.

pub mod bounce;
pub mod clean;
pub mod log;
pub mod retry;
pub mod todo;

mod state;

pub use state::Send;

use crate::addr::Rewrite;
use crate::control::Control;
use crate::fail::Result;
use std::path::Path;

/// The settings qmail-send reads from control/.
#[derive(Clone, Debug)]
pub struct Config {
    /// `queuelifetime`, seconds.
    pub lifetime: i64,
    /// `concurrencylocal`, `concurrencyremote`.
    pub concurrency: [usize; 2],
    /// `bouncefrom`.
    pub bouncefrom: Vec<u8>,
    /// `bouncehost`.
    pub bouncehost: Vec<u8>,
    /// `doublebounceto` (local part; empty means double bounces are discarded).
    pub doublebounceto: Vec<u8>,
    /// `doublebouncehost`.
    pub doublebouncehost: Vec<u8>,
    /// `bouncemaxbytes` (0: whole message).
    pub bouncemaxbytes: u64,
    /// The rewriting rules (for removing virtual-domain prefixes from bounces).
    pub rewrite: Rewrite,
}

/// The largest concurrency qmail accepts (conf-spawn's hard limit).
pub const CONCURRENCY_MAX: u64 = 1024;

impl Config {
    /// Reads the control files.
    pub fn load(home: &Path) -> Result<Config> {
        let c = Control::open(home)?;
        let conc = |name, d| -> Result<usize> {
            Ok(usize::try_from(c.int(name, d)?.min(CONCURRENCY_MAX)).unwrap_or(0))
        };
        Ok(Config {
            lifetime: i64::try_from(c.int("queuelifetime", 604_800)?).unwrap_or(i64::MAX / 2),
            concurrency: [
                conc("concurrencylocal", 10)?,
                conc("concurrencyremote", 20)?,
            ],
            bouncefrom: c.line_or("bouncefrom", b"MAILER-DAEMON")?,
            bouncehost: c.line_or_me("bouncehost", b"bouncehost")?,
            doublebounceto: c.line_or("doublebounceto", b"postmaster")?,
            doublebouncehost: c.line_or_me("doublebouncehost", b"doublebouncehost")?,
            bouncemaxbytes: c.int("bouncemaxbytes", 0)?,
            rewrite: todo::rules(home)?,
        })
    }
}

/// qmail's VERP: for a sender `owner-@host-@[]` and recipient `box@rhost`, the sender a
/// delivery sees is `owner-box=rhost@host`. Other senders are unchanged.
pub fn verp_sender(sender: &[u8], recip: &[u8]) -> Vec<u8> {
    let i = sender.len();
    if i >= 4 && sender.ends_with(b"-@[]") {
        let base = sender.get(..i - 4).unwrap_or_default();
        let j = base.iter().rposition(|&c| c == b'@');
        let k = recip.iter().rposition(|&c| c == b'@');
        if let (Some(j), Some(k)) = (j, k)
            && j + 5 <= i
        {
            let mut out = Vec::with_capacity(i + recip.len());
            out.extend_from_slice(sender.get(..j).unwrap_or_default());
            out.extend_from_slice(recip.get(..k).unwrap_or_default());
            out.push(b'=');
            out.extend_from_slice(recip.get(k + 1..).unwrap_or_default());
            out.push(b'@');
            out.extend_from_slice(sender.get(j + 1..i - 4).unwrap_or_default());
            return out;
        }
    }
    sender.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verp_senders_are_expanded() {
        assert_eq!(
            verp_sender(b"owner-@host-@[]", b"box@rhost"),
            b"owner-box=rhost@host"
        );
        assert_eq!(
            verp_sender(b"owner-@host-@[]", b"nobox"),
            b"owner-@host-@[]"
        );
        assert_eq!(verp_sender(b"plain@host", b"box@rhost"), b"plain@host");
        assert_eq!(verp_sender(b"", b"box@rhost"), b"");
        assert_eq!(verp_sender(b"#@[]", b"box@rhost"), b"#@[]");
    }
}
