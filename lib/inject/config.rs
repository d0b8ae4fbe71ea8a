//! What qmail-inject reads before the message: the `QMAILINJECT` letters, the user, host
//! and name variables, `QMAILMFTFILE`, and the control files `defaultdomain`,
//! `defaulthost`, `plusdomain` and `idhost` with their environment overrides.

use std::collections::HashSet;
use std::ffi::OsString;
use std::io::Read;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use super::Fatal;
use super::rewrite::{self, Rules};
use crate::control::{self, Control};
use crate::env;

/// The largest `QMAILMFTFILE` read, in bytes.
pub const MFT_FILE_MAX: u64 = 1 << 20;

/// The letters of `QMAILINJECT`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    /// `c`: address-comment style for the new From field.
    pub name_comment: bool,
    /// `s`: ignore and delete an incoming Return-Path.
    pub delete_sender: bool,
    /// `f`: delete an incoming From.
    pub delete_from: bool,
    /// `i`: delete an incoming Message-ID.
    pub delete_message_id: bool,
    /// `r`: per-recipient VERP.
    pub verp_recipient: bool,
    /// `m`: per-message VERP.
    pub verp_message: bool,
}

impl Flags {
    /// The flags named by the letters of `s`; other letters are ignored.
    pub fn parse(s: &[u8]) -> Flags {
        let mut f = Flags::default();
        for c in s {
            match c {
                b'c' => f.name_comment = true,
                b's' => f.delete_sender = true,
                b'f' => f.delete_from = true,
                b'i' => f.delete_message_id = true,
                b'r' => f.verp_recipient = true,
                b'm' => f.verp_message = true,
                _ => {}
            }
        }
        f
    }
}

/// Everything qmail-inject knows before it reads the message.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// The `QMAILINJECT` letters.
    pub flags: Flags,
    /// `QMAILHOST` or `MAILHOST`: the host of the new From field.
    pub mail_host: Option<Vec<u8>>,
    /// `QMAILSHOST`, else the From host: the host of the default envelope sender.
    pub sender_host: Option<Vec<u8>>,
    /// `QMAILUSER`, `MAILUSER`, `USER`, `LOGNAME` or `anonymous`.
    pub mail_user: Vec<u8>,
    /// `QMAILSUSER`, else the From user: the user of the default envelope sender.
    pub sender_user: Vec<u8>,
    /// `QMAILNAME`, `MAILNAME` or `NAME`: the personal name of the new From field.
    pub full_name: Option<Vec<u8>>,
    /// The names added to incomplete addresses.
    pub rules: Rules,
    /// The host of new Message-IDs.
    pub id_host: Vec<u8>,
    /// The mailing lists of `QMAILMFTFILE`, lower-cased; `None` when there is no file.
    pub mft: Option<HashSet<Vec<u8>>>,
    /// When qmail-inject started (seconds since the epoch).
    pub start: i64,
    /// The process id, for Message-IDs and per-message VERP.
    pub pid: u32,
}

fn first_var(names: &[&str]) -> Option<Vec<u8>> {
    names.iter().find_map(|n| env::var(n))
}

impl Settings {
    /// Reads the environment and the control files of `home`, as qmail-inject does before
    /// it looks at its options.
    pub fn load(home: &Path, start: i64, pid: u32) -> Result<Settings, Fatal> {
        let flags = Flags::parse(&env::var("QMAILINJECT").unwrap_or_default());
        let mail_host = first_var(&["QMAILHOST", "MAILHOST"]);
        let sender_host = env::var("QMAILSHOST").or_else(|| mail_host.clone());
        let mail_user = first_var(&["QMAILUSER", "MAILUSER", "USER", "LOGNAME"])
            .unwrap_or_else(|| b"anonymous".to_vec());
        let sender_user = env::var("QMAILSUSER").unwrap_or_else(|| mail_user.clone());
        let full_name = first_var(&["QMAILNAME", "MAILNAME", "NAME"]);
        let mft = mft_list()?;
        if !home.is_dir() {
            return Err(Fatal::temp(b"internal bug"));
        }
        let read_error = |_| Fatal::temp(b"read error");
        let c = Control::open(home).map_err(read_error)?;
        let name = |file: &str, var: &str| -> Result<Vec<u8>, Fatal> {
            let v = c.line_or_me(file, file.as_bytes()).map_err(read_error)?;
            Ok(env::var(var).unwrap_or(v))
        };
        let domain = name("defaultdomain", "QMAILDEFAULTDOMAIN")?;
        let host = name("defaulthost", "QMAILDEFAULTHOST")?;
        let plus = name("plusdomain", "QMAILPLUSDOMAIN")?;
        let id_host = name("idhost", "QMAILIDHOST")?;
        let rules = Rules::new(&host, &domain, &plus).map_err(Fatal::unparsable)?;
        Ok(Settings {
            flags,
            mail_host,
            sender_host,
            mail_user,
            sender_user,
            full_name,
            rules,
            id_host,
            mft,
            start,
            pid,
        })
    }

    /// True when `addr` is one of the `QMAILMFTFILE` lists (case does not matter).
    pub fn is_list(&self, addr: &[u8]) -> bool {
        self.mft
            .as_ref()
            .is_some_and(|m| m.contains(&addr.to_ascii_lowercase()))
    }

    /// Whether the user name must be quoted in the new From field.
    pub fn user_needs_quotes(&self) -> bool {
        rewrite::quote_need(&self.mail_user)
    }
}

/// The lists in `$QMAILMFTFILE`, read like a control file: `None` when the variable is
/// unset or the file does not exist.
fn mft_list() -> Result<Option<HashSet<Vec<u8>>>, Fatal> {
    let Some(path) = env::var("QMAILMFTFILE") else {
        return Ok(None);
    };
    let path = PathBuf::from(OsString::from_vec(path));
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(_) => return Err(Fatal::temp(b"read error")),
    };
    let mut b = Vec::new();
    file.take(MFT_FILE_MAX + 1)
        .read_to_end(&mut b)
        .map_err(|_| Fatal::temp(b"read error"))?;
    if u64::try_from(b.len()).unwrap_or(u64::MAX) > MFT_FILE_MAX {
        return Err(Fatal::perm(
            format!("QMAILMFTFILE is longer than {MFT_FILE_MAX} bytes").as_bytes(),
        ));
    }
    Ok(Some(
        control::list_lines(&b)
            .into_iter()
            .map(|l| l.to_ascii_lowercase())
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qmailinject_letters_set_their_flags() {
        assert_eq!(Flags::parse(b""), Flags::default());
        let all = Flags::parse(b"csfirmxyz");
        assert!(all.name_comment && all.delete_sender && all.delete_from);
        assert!(all.delete_message_id && all.verp_recipient && all.verp_message);
        let some = Flags::parse(b"r");
        assert_eq!(
            some,
            Flags {
                verp_recipient: true,
                ..Flags::default()
            }
        );
    }
}
