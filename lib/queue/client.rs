//! The caller's side of qmail-queue (qmail's qmail.c): start `$QMAILQUEUE` or
//! `bin/qmail-queue` with the message on its fd 0 and the envelope on its fd 1, and turn its
//! exit code into the letter-prefixed text every caller reports.

use std::io::{self, BufWriter, Write};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};

use crate::env;
use crate::fail::{Class, Failure, Kind};

/// The answer of qmail-queue when it did not queue: permanent (`D`) or temporary (`Z`),
/// with qmail's text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// Permanent or temporary.
    pub class: Class,
    /// qmail's text, such as `qq write error or disk full (#4.3.0)`.
    pub text: &'static str,
}

impl Refused {
    /// The text with its class letter in front (`Z…` or `D…`), as qmail-local and
    /// qmail-send pass it on.
    pub fn lettered(&self) -> String {
        let l = if self.class == Class::Perm { 'D' } else { 'Z' };
        format!("{l}{}", self.text)
    }

    /// The refusal as a [`Failure`].
    pub fn failure(&self) -> Failure {
        match self.class {
            Class::Perm => Failure::perm(Kind::Input, self.text),
            Class::Temp => Failure::temp(Kind::System, self.text),
        }
    }
}

const fn z(text: &'static str) -> Refused {
    Refused {
        class: Class::Temp,
        text,
    }
}

const fn d(text: &'static str) -> Refused {
    Refused {
        class: Class::Perm,
        text,
    }
}

/// qmail's mapping from a qmail-queue exit code to the caller's text. `None` for a clean 0.
pub fn refusal(code: i32) -> Option<Refused> {
    Some(match code {
        0 => return None,
        11 | 115 => d("envelope address too long for qq (#5.1.3)"),
        31 => d("mail server permanently rejected message (#5.3.0)"),
        51 => z("qq out of memory (#4.3.0)"),
        52 => z("qq timeout (#4.3.0)"),
        53 => z("qq write error or disk full (#4.3.0)"),
        54 => z("qq read error (#4.3.0)"),
        55 => z("qq unable to read configuration (#4.3.0)"),
        56 => z("qq trouble making network connection (#4.3.0)"),
        61 => z("qq trouble in home directory (#4.3.0)"),
        62..=66 => z("qq trouble creating files in queue (#4.3.0)"),
        71 => z("mail server temporarily rejected message (#4.3.0)"),
        72 => z("connection to mail server timed out (#4.4.1)"),
        73 => z("connection to mail server rejected (#4.4.1)"),
        74 => z("communication with mail server failed (#4.4.2)"),
        81 | 91 => z("qq internal bug (#4.3.0)"),
        120 => z("unable to exec qq (#4.3.0)"),
        12..=40 => d("qq permanent problem (#5.3.0)"),
        _ => z("qq temporary problem (#4.3.0)"),
    })
}

/// A running qmail-queue being fed a message.
pub struct Queue {
    child: Child,
    message: Option<BufWriter<ChildStdin>>,
    envelope: Option<io::PipeWriter>,
    failed: bool,
}

impl Queue {
    /// Starts `$QMAILQUEUE` (when set and not empty) or `bin/qmail-queue`, in `home`.
    /// A relative program name is taken relative to `home`, as qmail's callers do.
    pub fn open(home: &Path) -> Result<Queue, Refused> {
        Queue::open_with(home, &[])
    }

    /// As [`Queue::open`], with `vars` added to (or replacing in) the environment
    /// qmail-queue inherits (qmail-smtpd's HELOHOST, MAILFROM, RCPTTO and the like).
    pub fn open_with(home: &Path, vars: &[(Vec<u8>, Vec<u8>)]) -> Result<Queue, Refused> {
        let prog = env::var("QMAILQUEUE")
            .filter(|p| !p.is_empty())
            .map(|p| home.join(std::ffi::OsString::from_vec(p)))
            .unwrap_or_else(|| home.join("bin/qmail-queue"));
        let (envelope_read, envelope) =
            io::pipe().map_err(|_| z("qq temporary problem (#4.3.0)"))?;
        let mut cmd = Command::new(&prog);
        for (k, v) in vars {
            cmd.env(
                std::ffi::OsString::from_vec(k.clone()),
                std::ffi::OsString::from_vec(v.clone()),
            );
        }
        // qmail-queue (or $QMAILQUEUE) runs in home, as qmail's qmail_open has it.
        // qmail-smtpd, the caller that queues most, already works there; asking std for the
        // chdir anyway makes it fork instead of using posix_spawn in a statically linked
        // program (it cannot find posix_spawn's chdir action there), and a fork copies the
        // caller's page tables. The other callers work elsewhere and keep the chdir.
        if std::env::current_dir().ok().as_deref() != Some(home) {
            cmd.current_dir(home);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::from(envelope_read))
            .spawn()
            .map_err(|_| z("unable to exec qq (#4.3.0)"))?;
        let message = child
            .stdin
            .take()
            .map(|s| BufWriter::with_capacity(64 * 1024, s));
        Ok(Queue {
            child,
            message,
            envelope: Some(envelope),
            failed: false,
        })
    }

    /// The process id of qmail-queue, as qmail-smtpd reports it (`qp <pid>`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Writes message bytes. A failure is remembered and reported by [`Queue::close`].
    pub fn put(&mut self, b: &[u8]) {
        if self.failed {
            return;
        }
        if let Some(m) = self.message.as_mut()
            && m.write_all(b).is_err()
        {
            self.failed = true;
        }
    }

    /// True once a write to qmail-queue has failed.
    pub fn has_failed(&self) -> bool {
        self.failed
    }

    /// Gives up on the message: qmail-queue sees the message end without an envelope and
    /// queues nothing. Waits for it to exit.
    pub fn abort(mut self) {
        self.message = None;
        self.envelope = None;
        let _ = self.child.wait();
    }

    /// Ends the message, sends the envelope, waits for qmail-queue and reports the outcome.
    pub fn close(mut self, sender: &[u8], recipients: &[Vec<u8>]) -> Result<(), Refused> {
        if let Some(mut m) = self.message.take()
            && m.flush().is_err()
        {
            self.failed = true;
        }
        if let Some(mut e) = self.envelope.take() {
            let refs: Vec<&[u8]> = recipients.iter().map(Vec::as_slice).collect();
            if !self.failed
                && e.write_all(&crate::envelope::encode(sender, &refs))
                    .is_err()
            {
                self.failed = true;
            }
        }
        let status = loop {
            match self.child.wait() {
                Ok(s) => break s,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(z("qq waitpid surprise (#4.3.0)")),
            }
        };
        if status.signal().is_some() {
            return Err(z("qq crashed (#4.3.0)"));
        }
        match refusal(status.code().unwrap_or(111)) {
            None if self.failed => Err(z("qq read error (#4.3.0)")),
            None => Ok(()),
            Some(r) => Err(r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_map_to_qmails_texts() {
        assert_eq!(refusal(0), None);
        assert_eq!(
            refusal(11).unwrap().lettered(),
            "Denvelope address too long for qq (#5.1.3)"
        );
        assert_eq!(
            refusal(115).unwrap().lettered(),
            "Denvelope address too long for qq (#5.1.3)"
        );
        assert_eq!(
            refusal(32).unwrap().lettered(),
            "Dqq permanent problem (#5.3.0)"
        );
        assert_eq!(
            refusal(53).unwrap().lettered(),
            "Zqq write error or disk full (#4.3.0)"
        );
        assert_eq!(
            refusal(64).unwrap().lettered(),
            "Zqq trouble creating files in queue (#4.3.0)"
        );
        assert_eq!(refusal(91).unwrap().lettered(), "Zqq internal bug (#4.3.0)");
        assert_eq!(
            refusal(41).unwrap().lettered(),
            "Zqq temporary problem (#4.3.0)"
        );
        assert_eq!(
            refusal(120).unwrap().lettered(),
            "Zunable to exec qq (#4.3.0)"
        );
    }
}
