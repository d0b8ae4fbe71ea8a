//! The environment, read in one place: the instance's home directory and the variables the
//! programs of this package consult.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use crate::sys;

/// The install root used when nothing says otherwise.
pub const DEFAULT_HOME: &str = "/var/qmail";

/// The value of an environment variable as bytes; `None` when it is unset.
pub fn var(name: &str) -> Option<Vec<u8>> {
    std::env::var_os(name).map(OsString::into_vec)
}

/// True when the variable is set, even to the empty string (qmail's `env_get` test).
pub fn is_set(name: &str) -> bool {
    std::env::var_os(name).is_some()
}

/// The qmail home directory of this instance.
///
/// `QMAILHOME` overrides the default `/var/qmail`, so that many instances can live side by
/// side. A program running with privileges its caller lacks (setuid qmail-queue) ignores the
/// variable and uses the instance it is installed in: the parent of the `bin` directory
/// holding its own executable, as the kernel names it in `/proc/self/exe`.
pub fn home() -> PathBuf {
    if sys::is_setuid() {
        return installed_home().unwrap_or_else(|| PathBuf::from(DEFAULT_HOME));
    }
    match std::env::var_os("QMAILHOME") {
        Some(h) if !h.is_empty() => PathBuf::from(h),
        _ => PathBuf::from(DEFAULT_HOME),
    }
}

fn installed_home() -> Option<PathBuf> {
    let exe = std::fs::read_link("/proc/self/exe").ok()?;
    let bin = exe.parent()?;
    if bin.file_name()? != "bin" {
        return None;
    }
    Some(bin.parent()?.to_path_buf())
}
