//! qmail-lspawn: finds the account for a local recipient (users/assign.cdb, users/cdb, then
//! qmail-getpw) and runs qmail-local under that account's uid and gid, never as root.

use std::fs::File;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};

use super::{Deliver, crashed, os, unable_to_run};
use crate::ids::{Group, Ids, User};
use crate::sys;
use crate::users::{self, Assignment};

/// Report texts are cut to this many bytes (qmail-lspawn's truncreport).
pub const TRUNCATE: usize = 3000;
/// Longest answer read from qmail-getpw.
const GETPW_MAX: usize = 4096;

/// qmail-lspawn's state: the instance, its accounts, the default delivery.
pub struct Local {
    /// The qmail home.
    pub home: PathBuf,
    /// The instance's account names.
    pub ids: Ids,
    /// The default delivery instruction given to qmail-local (`./Maildir/` and so on).
    pub aliasempty: Vec<u8>,
}

impl Local {
    /// The account for a local part: the users database, else qmail-getpw run as qmailp.
    fn lookup(&self, local: &[u8]) -> Result<Assignment, Vec<u8>> {
        match users::open(&self.home) {
            Err(_) => return Err(b"ZTrouble reading users/cdb in qmail-lspawn.\n".to_vec()),
            Ok(Some(db)) => match users::lookup(&db, local) {
                Err(_) => return Err(b"ZTrouble reading users/cdb in qmail-lspawn.\n".to_vec()),
                Ok(Some(a)) => return Ok(a),
                Ok(None) => {}
            },
            Ok(None) => {}
        }
        self.getpw(local)
    }

    fn getpw(&self, local: &[u8]) -> Result<Assignment, Vec<u8>> {
        let mut cmd = Command::new(self.home.join("bin/qmail-getpw"));
        cmd.arg(os(local))
            .current_dir(&self.home)
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        if sys::euid() == 0 {
            let uid = self
                .ids
                .uid(User::Qmailp)
                .map_err(|_| b"ZTemporary failure in qmail-lspawn.\n".to_vec())?;
            let gid = self
                .ids
                .gid(Group::Nofiles)
                .map_err(|_| b"ZTemporary failure in qmail-lspawn.\n".to_vec())?;
            cmd.uid(uid).gid(gid);
        }
        let mut child = cmd
            .spawn()
            .map_err(|_| b"ZUnable to run qmail-getpw.\n".to_vec())?;
        let mut out = Vec::new();
        if let Some(o) = child.stdout.take() {
            let _ = o.take(GETPW_MAX as u64).read_to_end(&mut out);
        }
        let st = child
            .wait()
            .map_err(|_| b"ZTemporary failure in qmail-lspawn.\n".to_vec())?;
        if crashed(st) {
            return Err(b"ZTemporary failure in qmail-lspawn.\n".to_vec());
        }
        match st.code() {
            Some(0) => Assignment::from_record(&out)
                .ok_or_else(|| b"ZInternal qmail-lspawn bug.\n".to_vec()),
            Some(code) => Err(qlx_text(code)
                .unwrap_or(b"ZUnable to run qmail-getpw.\n")
                .to_vec()),
            None => Err(b"ZTemporary failure in qmail-lspawn.\n".to_vec()),
        }
    }
}

/// The texts for qmail-local's and qmail-getpw's internal exit codes (qmail's qlx.h).
pub fn qlx_text(code: i32) -> Option<&'static [u8]> {
    Some(match code {
        111 => return None,
        112 => b"ZInternal qmail-lspawn bug.\n",
        113 => b"ZNot allowed to perform deliveries as root.\n",
        115 => b"ZNFS failure in qmail-local.\n",
        116 => b"ZUnable to find alias user!\n",
        117 => b"ZTrouble reading users/cdb in qmail-lspawn.\n",
        118 => b"ZTemporary failure in qmail-lspawn.\n",
        119 => b"ZOut of memory in qmail-lspawn.\n",
        120 => b"ZUnable to run qmail-local.\n",
        121 => b"ZUnable to run qmail-getpw.\n",
        126 => b"DUnable to run qmail-local.\n",
        _ => return None,
    })
}

impl Deliver for Local {
    fn start(
        &mut self,
        mess: File,
        out: File,
        sender: &[u8],
        recip: &[u8],
        at: usize,
    ) -> Result<Child, Vec<u8>> {
        let local = recip.get(..at).unwrap_or_default();
        if local.is_empty() {
            return Err(b"K".to_vec());
        }
        let domain = recip.get(at + 1..).unwrap_or_default();
        let a = self.lookup(local)?;
        let (Some(uid), Some(gid)) = (a.uid(), a.gid()) else {
            return Err(b"ZInternal qmail-lspawn bug.\n".to_vec());
        };
        if uid == 0 {
            return Err(b"ZNot allowed to perform deliveries as root.\n".to_vec());
        }
        let me = sys::euid();
        if me != 0 && uid != me {
            return Err(format!(
                "ZUnable to deliver as uid {uid}: qmail-lspawn is not running as root. (#4.3.0)\n"
            )
            .into_bytes());
        }
        let err = out
            .try_clone()
            .map_err(|_| b"ZTemporary failure in qmail-lspawn.\n".to_vec())?;
        let mut cmd = Command::new(self.home.join("bin/qmail-local"));
        cmd.arg("--")
            .arg(os(&a.user))
            .arg(os(&a.home))
            .arg(os(local))
            .arg(os(&a.dash))
            .arg(os(&a.ext))
            .arg(os(domain))
            .arg(os(sender))
            .arg(os(&self.aliasempty))
            .current_dir(&self.home)
            .stdin(mess)
            .stdout(out)
            .stderr(err);
        if me == 0 {
            cmd.uid(uid).gid(gid);
        }
        cmd.spawn().map_err(|e| unable_to_run(&e, "qmail-local"))
    }

    fn report(&self, st: ExitStatus, output: &[u8]) -> Vec<u8> {
        if crashed(st) {
            return b"Zqmail-local crashed.\n".to_vec();
        }
        let code = st.code().unwrap_or(111);
        if let Some(t) = qlx_text(code) {
            return t.to_vec();
        }
        let letter = match code {
            0 => b'K',
            111 | 71 | 74 | 75 => b'Z',
            _ => b'D',
        };
        let text = output.split(|&b| b == 0).next().unwrap_or_default();
        [&[letter][..], text].concat()
    }

    fn truncate(&self) -> usize {
        TRUNCATE
    }
}
