//! The one failure type: every error is either temporary (try again later: exit 111, SMTP
//! 4xx, QMTP `Z`) or permanent (give up: exit 100, SMTP 5xx, QMTP `D`).
//!
//! The class is chosen where the failure happens and carried as data to the outermost
//! surface. The kind says what failed, so a surface with finer codes (qmail-queue's exit
//! table) can report it exactly.

use std::fmt;
use std::io;

use crate::sys;

/// Whether trying again later may help.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Give up: exit 100, SMTP 5xx, QMTP `D`.
    Perm,
    /// Try again later: exit 111, SMTP 4xx, QMTP `Z`.
    Temp,
}

/// What failed. qmail-queue's exit codes are derived from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// An envelope address is longer than the queue accepts (qmail-queue 11).
    AddressTooLong,
    /// A control file could not be read (qmail-queue 55).
    Config,
    /// The envelope does not follow the F/T record format (qmail-queue 91).
    EnvelopeFormat,
    /// The qmail home directory is unusable (qmail-queue 61).
    Home,
    /// The input is not acceptable (a permanent refusal of what was given).
    Input,
    /// Creating `queue/intd` files failed (qmail-queue 65).
    Intd,
    /// Creating `queue/mess` files failed (qmail-queue 64).
    Mess,
    /// Memory ran out (qmail-queue 51).
    Memory,
    /// A pid file in `queue/pid` could not be made (qmail-queue 63).
    Pid,
    /// The queue directory is unusable (qmail-queue 62).
    Queue,
    /// Reading the message or envelope failed (qmail-queue 54).
    Read,
    /// Anything else.
    System,
    /// A deadline passed (qmail-queue 52).
    Timeout,
    /// Linking into `queue/todo` failed (qmail-queue 66).
    Todo,
    /// The program was called wrongly.
    Usage,
    /// Writing failed or the disk is full (qmail-queue 53).
    Write,
}

/// A failure: its class, what failed, a description and the system error behind it.
#[derive(Debug)]
pub struct Failure {
    class: Class,
    kind: Kind,
    what: String,
    source: Option<io::Error>,
}

impl Failure {
    /// A temporary failure.
    pub fn temp(kind: Kind, what: impl Into<String>) -> Self {
        Failure {
            class: Class::Temp,
            kind,
            what: what.into(),
            source: None,
        }
    }

    /// A permanent failure.
    pub fn perm(kind: Kind, what: impl Into<String>) -> Self {
        Failure {
            class: Class::Perm,
            kind,
            what: what.into(),
            source: None,
        }
    }

    /// A failure caused by a system error, classed by qmail's `error_temp` list: errors
    /// that may go away by themselves are temporary, the rest permanent.
    pub fn io(kind: Kind, what: impl Into<String>, e: io::Error) -> Self {
        let class = if is_temp(&e) {
            Class::Temp
        } else {
            Class::Perm
        };
        Failure {
            class,
            kind,
            what: what.into(),
            source: Some(e),
        }
    }

    /// A temporary failure caused by a system error, whatever the errno (the rule on
    /// delivery and queueing paths, where a bounce cannot be taken back).
    pub fn temp_io(kind: Kind, what: impl Into<String>, e: io::Error) -> Self {
        Failure {
            class: Class::Temp,
            kind,
            what: what.into(),
            source: Some(e),
        }
    }

    /// Whether trying again may help.
    pub fn class(&self) -> Class {
        self.class
    }

    /// What failed.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// True for temporary failures.
    pub fn is_temp(&self) -> bool {
        self.class == Class::Temp
    }

    /// The exit code of a 0/100/111 program: 111 temporary, 100 permanent.
    pub fn exit_code(&self) -> u8 {
        match self.class {
            Class::Temp => 111,
            Class::Perm => 100,
        }
    }

    /// The exit code qmail-queue reports for this failure (qmail-queue(8)).
    pub fn qq_code(&self) -> u8 {
        match self.kind {
            Kind::AddressTooLong => 11,
            Kind::Memory => 51,
            Kind::Timeout => 52,
            Kind::Write => 53,
            Kind::Read => 54,
            Kind::Config => 55,
            Kind::Home => 61,
            Kind::Queue => 62,
            Kind::Pid => 63,
            Kind::Mess => 64,
            Kind::Intd => 65,
            Kind::Todo => 66,
            Kind::EnvelopeFormat => 91,
            Kind::Input if self.class == Class::Perm => 31,
            Kind::Input | Kind::System | Kind::Usage => 81,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what)?;
        if let Some(e) = &self.source {
            write!(f, ": {}", sys::strerror(e))?;
        }
        Ok(())
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// qmail's `error_temp`: the errno values that mean "try again later".
pub fn is_temp(e: &io::Error) -> bool {
    use io::ErrorKind as K;
    if matches!(
        e.kind(),
        K::OutOfMemory | K::TimedOut | K::Interrupted | K::WouldBlock
    ) {
        return true;
    }
    matches!(
        e.raw_os_error(),
        Some(
            libc::EINTR
                | libc::ENOMEM
                | libc::ETXTBSY
                | libc::EIO
                | libc::ETIMEDOUT
                | libc::EWOULDBLOCK
                | libc::EINPROGRESS
                | libc::ENETDOWN
                | libc::ENETUNREACH
                | libc::ENETRESET
                | libc::ECONNABORTED
                | libc::ECONNRESET
                | libc::ENOBUFS
                | libc::ECONNREFUSED
                | libc::EHOSTDOWN
                | libc::EHOSTUNREACH
                | libc::ENFILE
                | libc::EMFILE
                | libc::EDEADLK
                | libc::ENOLCK
                | libc::ESTALE
                | libc::EDQUOT
                | libc::ENOSPC
        )
    )
}

/// A short-hand for results carrying a [`Failure`].
pub type Result<T> = std::result::Result<T, Failure>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_classes_follow_error_temp() {
        for (errno, temp) in [
            (libc::ENOENT, false),
            (libc::EACCES, false),
            (libc::ENOSPC, true),
            (libc::EDQUOT, true),
            (libc::EIO, true),
            (libc::ENOMEM, true),
            (libc::ECONNREFUSED, true),
            (libc::EISDIR, false),
        ] {
            assert_eq!(
                is_temp(&io::Error::from_raw_os_error(errno)),
                temp,
                "errno {errno}"
            );
        }
    }

    #[test]
    fn qq_codes_match_the_qmail_queue_table() {
        let t = |k| Failure::temp(k, "x").qq_code();
        assert_eq!(t(Kind::AddressTooLong), 11);
        assert_eq!(t(Kind::Read), 54);
        assert_eq!(t(Kind::Write), 53);
        assert_eq!(t(Kind::EnvelopeFormat), 91);
        assert_eq!(t(Kind::Todo), 66);
        assert_eq!(Failure::perm(Kind::Input, "x").qq_code(), 31);
    }

    #[test]
    fn display_appends_the_system_text() {
        let f = Failure::io(
            Kind::Read,
            "unable to read",
            io::Error::from_raw_os_error(libc::EISDIR),
        );
        assert_eq!(f.to_string(), "unable to read: Is a directory");
        assert_eq!(f.exit_code(), 100);
    }
}
