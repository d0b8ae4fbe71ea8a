//! The operating-system edge: every call into libc lives here, and this is the only module of
//! the project allowed `unsafe`.
//!
//! Each function is safe to call and small. What the Rust runtime does before `main` matters
//! to qmail-style programs: it ignores SIGPIPE (children started through `std::process`
//! get the default back before exec) and reopens closed fds 0-2 on `/dev/null`.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};

/// The real user id of the process.
pub fn uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// The effective user id of the process.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The real group id of the process.
pub fn gid() -> u32 {
    // SAFETY: getgid has no preconditions and cannot fail.
    unsafe { libc::getgid() }
}

/// The effective group id of the process.
pub fn egid() -> u32 {
    // SAFETY: getegid has no preconditions and cannot fail.
    unsafe { libc::getegid() }
}

/// True when the program runs with privileges its caller does not have (setuid or setgid
/// bit, or any other reason the kernel marks the process secure).
pub fn is_setuid() -> bool {
    // SAFETY: getauxval only reads the auxiliary vector; unknown types return 0.
    let secure = unsafe { libc::getauxval(libc::AT_SECURE) };
    secure != 0 || uid() != euid() || gid() != egid()
}

/// Sets the file mode creation mask and returns the previous one.
pub fn umask(mask: u32) -> u32 {
    // SAFETY: umask has no preconditions and cannot fail.
    unsafe { libc::umask(mask) }
}

/// The exit code the SIGALRM handler uses (see [`alarm_exit`]).
static ALARM_CODE: AtomicI32 = AtomicI32::new(111);
/// The exit code the handler for crash signals uses (see [`crash_exit`]).
static CRASH_CODE: AtomicI32 = AtomicI32::new(111);

extern "C" fn on_alarm(_sig: libc::c_int) {
    // SAFETY: _exit is async-signal-safe; the atomic load is lock-free.
    unsafe { libc::_exit(ALARM_CODE.load(Ordering::Relaxed)) }
}

extern "C" fn on_crash(_sig: libc::c_int) {
    // SAFETY: _exit is async-signal-safe; the atomic load is lock-free.
    unsafe { libc::_exit(CRASH_CODE.load(Ordering::Relaxed)) }
}

fn catch(sig: libc::c_int, handler: extern "C" fn(libc::c_int)) {
    // SAFETY: a zeroed sigaction is a valid value to fill in.
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = handler as libc::sighandler_t;
    // SAFETY: sa_mask is a valid sigset_t owned by this frame.
    unsafe { libc::sigemptyset(&mut sa.sa_mask) };
    // SAFETY: sa is fully initialised and the handler only calls async-signal-safe functions.
    unsafe { libc::sigaction(sig, &sa, std::ptr::null_mut()) };
}

/// Arranges for the process to `_exit(code)` without any clean-up when `secs` seconds have
/// passed (qmail-queue's DEATH alarm: "thou shalt not clean up here").
pub fn alarm_exit(secs: u32, code: i32) {
    ALARM_CODE.store(code, Ordering::Relaxed);
    catch(libc::SIGALRM, on_alarm);
    // SAFETY: alarm has no preconditions.
    unsafe { libc::alarm(secs) };
}

/// Makes SIGSEGV, SIGBUS, SIGILL, SIGFPE and SIGABRT end the process with `_exit(code)`,
/// as qmail's sig_bugcatch does (qmail-queue reports 81, "internal bug").
pub fn crash_exit(code: i32) {
    CRASH_CODE.store(code, Ordering::Relaxed);
    for sig in [
        libc::SIGSEGV,
        libc::SIGBUS,
        libc::SIGILL,
        libc::SIGFPE,
        libc::SIGABRT,
    ] {
        catch(sig, on_crash);
    }
}

/// Ignores the signals a terminal or a resource limit would send (SIGHUP, SIGINT, SIGQUIT,
/// SIGXCPU, SIGXFSZ; qmail's sig_miscignore) and unblocks every signal the caller may have
/// blocked, so that alarms set later do fire.
pub fn settle_signals() {
    for sig in [
        libc::SIGHUP,
        libc::SIGINT,
        libc::SIGQUIT,
        libc::SIGXCPU,
        libc::SIGXFSZ,
    ] {
        // SAFETY: SIG_IGN is a valid disposition for these signals.
        unsafe { libc::signal(sig, libc::SIG_IGN) };
    }
    // SAFETY: a zeroed sigset_t is filled by sigemptyset before use.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: set is a valid sigset_t owned by this frame.
    unsafe { libc::sigemptyset(&mut set) };
    // SAFETY: an empty mask with SIG_SETMASK unblocks everything.
    unsafe { libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut()) };
}

/// A passwd entry: what qmail needs of an account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// The login name.
    pub name: Vec<u8>,
    /// The user id.
    pub uid: u32,
    /// The primary group id.
    pub gid: u32,
    /// The home directory.
    pub home: Vec<u8>,
}

/// Looks an account up by name through the C library (so NSS sources count).
/// `Ok(None)` means there is no such account.
pub fn account(name: &[u8]) -> io::Result<Option<Account>> {
    let cname = CString::new(name).map_err(|_| io::ErrorKind::InvalidInput)?;
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: a zeroed passwd is a valid out-parameter.
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut out: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer refers to live memory of the stated size.
        let rc = unsafe {
            libc::getpwnam_r(
                cname.as_ptr(),
                &mut pw,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut out,
            )
        };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        if out.is_null() {
            return Ok(None);
        }
        // SAFETY: on success pw_name and pw_dir point to NUL-terminated strings inside buf.
        let (n, h) = unsafe { (CStr::from_ptr(pw.pw_name), CStr::from_ptr(pw.pw_dir)) };
        return Ok(Some(Account {
            name: n.to_bytes().to_vec(),
            uid: pw.pw_uid,
            gid: pw.pw_gid,
            home: h.to_bytes().to_vec(),
        }));
    }
}

/// Looks an account up by user id. `Ok(None)` means there is no such account.
pub fn account_by_uid(id: u32) -> io::Result<Option<Account>> {
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: a zeroed passwd is a valid out-parameter.
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut out: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer refers to live memory of the stated size.
        let rc =
            unsafe { libc::getpwuid_r(id, &mut pw, buf.as_mut_ptr().cast(), buf.len(), &mut out) };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        if out.is_null() {
            return Ok(None);
        }
        // SAFETY: on success pw_name and pw_dir point to NUL-terminated strings inside buf.
        let (n, h) = unsafe { (CStr::from_ptr(pw.pw_name), CStr::from_ptr(pw.pw_dir)) };
        return Ok(Some(Account {
            name: n.to_bytes().to_vec(),
            uid: pw.pw_uid,
            gid: pw.pw_gid,
            home: h.to_bytes().to_vec(),
        }));
    }
}

/// The name of a group id, if it has one.
pub fn group_name(id: u32) -> io::Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: a zeroed group is a valid out-parameter.
        let mut gr: libc::group = unsafe { std::mem::zeroed() };
        let mut out: *mut libc::group = std::ptr::null_mut();
        // SAFETY: every pointer refers to live memory of the stated size.
        let rc =
            unsafe { libc::getgrgid_r(id, &mut gr, buf.as_mut_ptr().cast(), buf.len(), &mut out) };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        if out.is_null() {
            return Ok(None);
        }
        // SAFETY: on success gr_name points to a NUL-terminated string inside buf.
        return Ok(Some(
            unsafe { CStr::from_ptr(gr.gr_name) }.to_bytes().to_vec(),
        ));
    }
}

/// Looks a group id up by group name. `Ok(None)` means there is no such group.
pub fn group(name: &[u8]) -> io::Result<Option<u32>> {
    let cname = CString::new(name).map_err(|_| io::ErrorKind::InvalidInput)?;
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: a zeroed group is a valid out-parameter.
        let mut gr: libc::group = unsafe { std::mem::zeroed() };
        let mut out: *mut libc::group = std::ptr::null_mut();
        // SAFETY: every pointer refers to live memory of the stated size.
        let rc = unsafe {
            libc::getgrnam_r(
                cname.as_ptr(),
                &mut gr,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut out,
            )
        };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        return Ok(if out.is_null() { None } else { Some(gr.gr_gid) });
    }
}

/// Creates a FIFO with the given mode (before the umask).
pub fn mkfifo(path: &Path, mode: u32) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: c is a valid NUL-terminated path.
    if unsafe { libc::mkfifo(c.as_ptr(), mode) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Flushes a directory's entries to stable storage. On Linux file systems a `link`,
/// `rename` or `unlink` is durable only once its directory has been fsynced.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Truncates an open file to zero length.
pub fn truncate(file: &File) -> io::Result<()> {
    file.set_len(0)
}

/// The host name as the kernel has it.
pub fn hostname() -> io::Result<Vec<u8>> {
    let mut buf = [0u8; 256];
    // SAFETY: buf is writable for its whole length.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == -1 {
        return Err(io::Error::last_os_error());
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Ok(buf.get(..end).unwrap_or_default().to_vec())
}

/// Takes an exclusive `flock` on an open file, waiting for it.
pub fn lock_exclusive(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: the fd is owned by `file` and stays open for the call.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Tries to take an exclusive `flock` without waiting; `Ok(false)` when another holds it.
pub fn try_lock_exclusive(file: &File) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: the fd is owned by `file` and stays open for the call.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == -1 {
        let e = io::Error::last_os_error();
        return if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            Ok(false)
        } else {
            Err(e)
        };
    }
    Ok(true)
}

/// The kernel's text for an errno value, as qmail's error_str gives it.
pub fn strerror(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => {
            let s = io::Error::from_raw_os_error(n).to_string();
            // std appends " (os error N)"; qmail prints the bare text.
            match s.find(" (os error") {
                Some(i) => s.get(..i).unwrap_or(&s).to_string(),
                None => s,
            }
        }
        None => e.to_string(),
    }
}

/// Takes ownership of an inherited file descriptor (fd 1 as qmail-queue's envelope input,
/// fd 3 for checkpassword, fds 6 and 7 for UCSPI clients). `None` when it is not open.
/// Call it at most once per descriptor.
pub fn inherited_fd(fd: i32) -> Option<File> {
    use std::os::fd::FromRawFd;
    // SAFETY: F_GETFD only inspects the descriptor table.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
        return None;
    }
    // SAFETY: the descriptor is open and, by this function's contract, owned by no other
    // object in the process.
    Some(unsafe { File::from_raw_fd(fd) })
}

/// Opens a file (a FIFO) for writing without waiting for a reader.
pub fn open_write_nonblock(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

/// Converts an `OsStr` path argument to bytes (Unix paths are bytes).
pub fn bytes(s: &OsStr) -> &[u8] {
    s.as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strerror_drops_the_os_error_suffix() {
        let e = io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(strerror(&e), "No such file or directory");
    }

    #[test]
    fn root_account_exists() {
        let a = account(b"root").unwrap().unwrap();
        assert_eq!(a.uid, 0);
        assert!(account(b"no-such-user-here").unwrap().is_none());
    }
}
