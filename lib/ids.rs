//! qmail's accounts and groups, by role.
//!
//! s/qmail compiles the names in (conf-users, conf-groups); here they are read at run time
//! from `control/conf-users` and `control/conf-groups`, in the same format (one name per line,
//! in the order below), so that an instance can use other names or run wholly as one user.
//! Absent files mean s/qmail's defaults.

use std::path::Path;

use crate::fail::{Failure, Kind, Result};
use crate::sys;

/// The account roles, in the order of s/qmail's conf-users.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum User {
    /// Owns `~alias`, receives mail for postmaster and unknown local parts.
    Alias,
    /// Runs qmail-smtpd and the other network servers.
    Qmaild,
    /// Runs the loggers.
    Qmaill,
    /// The superuser (qmail-start, qmail-lspawn).
    Root,
    /// Runs qmail-getpw.
    Qmailp,
    /// Owns the queue; qmail-queue runs setuid to it.
    Qmailq,
    /// Runs qmail-rspawn and qmail-remote.
    Qmailr,
    /// Runs qmail-send and qmail-todo.
    Qmails,
}

/// The group roles, in the order of s/qmail's conf-groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// The group of the queue and the binaries (`sqmail`).
    Qmail,
    /// The group without files (`nofiles`).
    Nofiles,
}

/// s/qmail's default account names, in [`User`] order.
pub const DEFAULT_USERS: [&str; 8] = [
    "alias", "qmaild", "qmaill", "root", "qmailp", "qmailq", "qmailr", "qmails",
];
/// s/qmail's default group names, in [`Group`] order.
pub const DEFAULT_GROUPS: [&str; 2] = ["sqmail", "nofiles"];

/// The names an instance uses for its accounts and groups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ids {
    users: Vec<Vec<u8>>,
    groups: Vec<Vec<u8>>,
}

impl Ids {
    /// Reads `control/conf-users` and `control/conf-groups` under `home`.
    pub fn load(home: &Path) -> Result<Ids> {
        Ok(Ids {
            users: names(&home.join("control/conf-users"), &DEFAULT_USERS)?,
            groups: names(&home.join("control/conf-groups"), &DEFAULT_GROUPS)?,
        })
    }

    /// The instance with s/qmail's default names.
    pub fn defaults() -> Ids {
        Ids {
            users: DEFAULT_USERS
                .iter()
                .map(|s| s.as_bytes().to_vec())
                .collect(),
            groups: DEFAULT_GROUPS
                .iter()
                .map(|s| s.as_bytes().to_vec())
                .collect(),
        }
    }

    /// An instance run wholly by one account and its group.
    pub fn single(user: &[u8], group: &[u8]) -> Ids {
        Ids {
            users: vec![user.to_vec(); 8],
            groups: vec![group.to_vec(); 2],
        }
    }

    /// The account name for a role.
    pub fn user_name(&self, u: User) -> &[u8] {
        self.users.get(u as usize).map_or(&b""[..], Vec::as_slice)
    }

    /// The group name for a role.
    pub fn group_name(&self, g: Group) -> &[u8] {
        self.groups.get(g as usize).map_or(&b""[..], Vec::as_slice)
    }

    /// The account for a role, looked up in the system's user database.
    pub fn account(&self, u: User) -> Result<sys::Account> {
        let name = self.user_name(u);
        match sys::account(name) {
            Ok(Some(a)) => Ok(a),
            Ok(None) => Err(Failure::temp(
                Kind::Config,
                format!("no such account: {}", String::from_utf8_lossy(name)),
            )),
            Err(e) => Err(Failure::temp_io(
                Kind::Config,
                "unable to read the user database",
                e,
            )),
        }
    }

    /// The user id for a role.
    pub fn uid(&self, u: User) -> Result<u32> {
        self.account(u).map(|a| a.uid)
    }

    /// The group id for a role.
    pub fn gid(&self, g: Group) -> Result<u32> {
        let name = self.group_name(g);
        match sys::group(name) {
            Ok(Some(id)) => Ok(id),
            Ok(None) => Err(Failure::temp(
                Kind::Config,
                format!("no such group: {}", String::from_utf8_lossy(name)),
            )),
            Err(e) => Err(Failure::temp_io(
                Kind::Config,
                "unable to read the group database",
                e,
            )),
        }
    }

    /// The two files' contents, as [`Ids::load`] reads them.
    pub fn files(&self) -> (Vec<u8>, Vec<u8>) {
        let join = |v: &[Vec<u8>]| {
            let mut out = Vec::new();
            for n in v {
                out.extend_from_slice(n);
                out.push(b'\n');
            }
            out
        };
        (join(&self.users), join(&self.groups))
    }
}

fn names(path: &Path, defaults: &[&str]) -> Result<Vec<Vec<u8>>> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(defaults.iter().map(|s| s.as_bytes().to_vec()).collect());
        }
        Err(e) => {
            return Err(Failure::temp_io(
                Kind::Config,
                format!("unable to read {}", path.display()),
                e,
            ));
        }
    };
    let got: Vec<Vec<u8>> = text
        .split(|&b| b == b'\n')
        .map(|l| l.trim_ascii_end().to_vec())
        .filter(|l| !l.is_empty())
        .collect();
    if got.len() != defaults.len() {
        return Err(Failure::temp(
            Kind::Config,
            format!(
                "{} must name {} entries, one a line",
                path.display(),
                defaults.len()
            ),
        ));
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_user_instance_names_one_account_everywhere() {
        let ids = Ids::single(b"mail", b"mail");
        assert_eq!(ids.user_name(User::Qmailq), b"mail");
        assert_eq!(ids.group_name(Group::Nofiles), b"mail");
        assert_eq!(ids.files().0, b"mail\n".repeat(8));
    }

    #[test]
    fn absent_files_mean_sqmail_defaults() {
        let ids = Ids::load(Path::new("/nonexistent")).unwrap();
        assert_eq!(ids, Ids::defaults());
        assert_eq!(ids.user_name(User::Qmails), b"qmails");
        assert_eq!(ids.group_name(Group::Qmail), b"sqmail");
    }
}
