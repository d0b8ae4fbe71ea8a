//! The operating-system edge: every call into libc lives here, and this is the only module of
//! the project allowed `unsafe`.
//!
//! Each function is safe to call and small. What the Rust runtime does before `main` matters
//! to qmail-style programs: it ignores SIGPIPE (children started through `std::process`
//! get the default back before exec) and reopens closed fds 0-2 on `/dev/null`.
#![allow(unsafe_code)]

pub mod crypt;
pub mod proc;

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

/// The text the SIGALRM handler of [`alarm_say`] writes to fd 2.
static ALARM_TEXT: std::sync::atomic::AtomicPtr<u8> =
    std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());
/// The length of [`ALARM_TEXT`].
static ALARM_TEXT_LEN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

extern "C" fn on_alarm_say(_sig: libc::c_int) {
    let p = ALARM_TEXT.load(Ordering::Acquire);
    let n = ALARM_TEXT_LEN.load(Ordering::Acquire);
    if !p.is_null() {
        // SAFETY: p and n describe a 'static byte slice stored by alarm_say; write is
        // async-signal-safe.
        unsafe { libc::write(2, p.cast(), n) };
    }
    // SAFETY: _exit is async-signal-safe; the atomic load is lock-free.
    unsafe { libc::_exit(ALARM_CODE.load(Ordering::Relaxed)) }
}

/// Arranges for the process to write `text` to fd 2 and `_exit(code)` when `secs` seconds
/// have passed, interrupting whatever it is blocked in (qmail-local's 30-second mbox lock
/// and 24-hour maildir deadlines). [`alarm_cancel`] disarms it.
pub fn alarm_say(secs: u32, code: i32, text: &'static [u8]) {
    ALARM_CODE.store(code, Ordering::Relaxed);
    ALARM_TEXT_LEN.store(text.len(), Ordering::Release);
    ALARM_TEXT.store(text.as_ptr().cast_mut(), Ordering::Release);
    catch(libc::SIGALRM, on_alarm_say);
    // SAFETY: alarm has no preconditions.
    unsafe { libc::alarm(secs) };
}

/// Disarms a pending alarm.
pub fn alarm_cancel() {
    // SAFETY: alarm has no preconditions.
    unsafe { libc::alarm(0) };
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

/// Runs a reentrant passwd lookup with a growing buffer and converts its answer with
/// `convert` while the strings it points to are still in the buffer (which is then zeroed).
pub(crate) fn passwd_lookup<T>(
    mut call: impl FnMut(&mut libc::passwd, &mut [u8], &mut *mut libc::passwd) -> libc::c_int,
    convert: impl FnOnce(&libc::passwd) -> T,
) -> io::Result<Option<T>> {
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: a zeroed passwd is a valid out-parameter.
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut out: *mut libc::passwd = std::ptr::null_mut();
        let rc = call(&mut pw, &mut buf, &mut out);
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
        let t = convert(&pw);
        buf.fill(0);
        return Ok(Some(t));
    }
}

/// A string of a passwd entry the C library filled in; empty for NULL.
pub(crate) fn pw_string(p: *const libc::c_char) -> Vec<u8> {
    if p.is_null() {
        return Vec::new();
    }
    // SAFETY: callers pass pointers from a passwd (or spwd) the C library filled in: they
    // point to NUL-terminated strings inside the buffer given to it, which is still live.
    unsafe { CStr::from_ptr(p) }.to_bytes().to_vec()
}

fn to_account(pw: &libc::passwd) -> Account {
    Account {
        name: pw_string(pw.pw_name),
        uid: pw.pw_uid,
        gid: pw.pw_gid,
        home: pw_string(pw.pw_dir),
    }
}

/// Looks an account up by name through the C library (so NSS sources count).
/// `Ok(None)` means there is no such account.
pub fn account(name: &[u8]) -> io::Result<Option<Account>> {
    let cname = CString::new(name).map_err(|_| io::ErrorKind::InvalidInput)?;
    passwd_lookup(
        |pw, buf, out| {
            // SAFETY: every pointer refers to live memory of the stated size.
            unsafe { libc::getpwnam_r(cname.as_ptr(), pw, buf.as_mut_ptr().cast(), buf.len(), out) }
        },
        to_account,
    )
}

/// Looks an account up by user id. `Ok(None)` means there is no such account.
pub fn account_by_uid(id: u32) -> io::Result<Option<Account>> {
    passwd_lookup(
        |pw, buf, out| {
            // SAFETY: every pointer refers to live memory of the stated size.
            unsafe { libc::getpwuid_r(id, pw, buf.as_mut_ptr().cast(), buf.len(), out) }
        },
        to_account,
    )
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

/// Opens a file for reading without blocking on a FIFO (qmail's open_read, which uses
/// `O_NDELAY`).
pub fn open_read_nonblock(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

/// Opens a file for appending, creating it with mode 0600 (before the umask) if missing,
/// without blocking on a FIFO (qmail's open_append).
pub fn open_append(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

/// Makes `dir` the root directory of the process and moves into it (sslserver's
/// `$SSL_CHROOT` for its TLS engine). Needs root.
pub fn chroot(dir: &Path) -> io::Result<()> {
    let c = CString::new(dir.as_os_str().as_bytes()).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: c is a valid NUL-terminated path.
    if unsafe { libc::chroot(c.as_ptr()) } == -1 {
        return Err(io::Error::last_os_error());
    }
    std::env::set_current_dir("/")
}

/// Converts an `OsStr` path argument to bytes (Unix paths are bytes).
pub fn bytes(s: &OsStr) -> &[u8] {
    s.as_bytes()
}

// ---- processes, signals, descriptors and sockets for the ucspi tools ----

/// Which side of a [`fork`] the caller is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forked {
    /// The new process.
    Child,
    /// The original process; the child has this process id.
    Parent(u32),
}

/// The number of threads of this process: procfs gives `/proc/self/task` a link count of
/// two plus one per thread (one system call, cheap enough to ask before every fork).
fn thread_count() -> io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let links = std::fs::metadata("/proc/self/task")?.nlink();
    links
        .checked_sub(2)
        .ok_or_else(|| io::Error::other("unreadable /proc/self/task"))
}

/// Splits the process in two, as fork(2) does. It refuses (an error) when the process runs
/// more than one thread: only a single-threaded process may run arbitrary code in the child.
pub fn fork() -> io::Result<Forked> {
    if thread_count()? != 1 {
        return Err(io::Error::other(
            "refusing to fork a multi-threaded process",
        ));
    }
    // SAFETY: the process has one thread, so no lock is held by a thread that the child
    // would lack; the child may run any code.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        p => Ok(Forked::Parent(u32::try_from(p).unwrap_or(0))),
    }
}

/// Reaps one ended child without waiting: its pid and raw wait status, or `None` when no
/// child has ended (or there are none).
pub fn wait_nohang() -> io::Result<Option<(u32, i32)>> {
    let mut status: libc::c_int = 0;
    // SAFETY: status is a valid out-parameter for the call.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
    match pid {
        -1 => {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ECHILD) {
                Ok(None)
            } else {
                Err(e)
            }
        }
        0 => Ok(None),
        p => Ok(Some((u32::try_from(p).unwrap_or(0), status))),
    }
}

/// The exit code the SIGTERM handler of [`term_exit`] uses.
static TERM_CODE: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_term(_sig: libc::c_int) {
    // SAFETY: _exit is async-signal-safe; the atomic load is lock-free.
    unsafe { libc::_exit(TERM_CODE.load(Ordering::Relaxed)) }
}

/// Makes SIGTERM end the process at once with `_exit(code)` (tcpserver exits 0, leaving
/// its children running). A program exec'd later gets the default action back.
pub fn term_exit(code: i32) {
    TERM_CODE.store(code, Ordering::Relaxed);
    catch(libc::SIGTERM, on_term);
}

/// A socket address in the C layout.
fn c_sockaddr(addr: &std::net::SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: a zeroed sockaddr_storage is a valid value.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        std::net::SocketAddr::V4(a) => {
            // SAFETY: a zeroed sockaddr_in is a valid value.
            let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write((&raw mut ss).cast::<libc::sockaddr_in>(), sin) };
            size_of::<libc::sockaddr_in>()
        }
        std::net::SocketAddr::V6(a) => {
            // SAFETY: a zeroed sockaddr_in6 is a valid value.
            let mut sin6: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_addr.s6_addr = a.ip().octets();
            sin6.sin6_scope_id = a.scope_id();
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write((&raw mut ss).cast::<libc::sockaddr_in6>(), sin6) };
            size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, libc::socklen_t::try_from(len).unwrap_or(0))
}

/// A new TCP socket of the address's family, close-on-exec.
fn tcp_socket(addr: &std::net::SocketAddr) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let family = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: socket has no memory preconditions.
    let fd = unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just created and nothing else owns it.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

fn set_int_option(
    fd: &impl std::os::fd::AsRawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    let len = libc::socklen_t::try_from(size_of::<libc::c_int>()).unwrap_or(4);
    // SAFETY: value is a valid int of the stated length for the call to read.
    let r =
        unsafe { libc::setsockopt(fd.as_raw_fd(), level, name, (&raw const value).cast(), len) };
    if r == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn bind_to(fd: &impl std::os::fd::AsRawFd, addr: &std::net::SocketAddr) -> io::Result<()> {
    let (ss, len) = c_sockaddr(addr);
    // SAFETY: ss holds a valid socket address of length len.
    if unsafe { libc::bind(fd.as_raw_fd(), (&raw const ss).cast(), len) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A listening TCP socket bound to `addr` with SO_REUSEADDR and the given backlog. For an
/// IPv6 address `v6only` says whether IPv4 clients are refused (true) or accepted as
/// v4-mapped addresses (false).
pub fn tcp_listen(
    addr: &std::net::SocketAddr,
    backlog: i32,
    v6only: bool,
) -> io::Result<std::net::TcpListener> {
    use std::os::fd::AsRawFd;
    let sock = tcp_socket(addr)?;
    set_int_option(&sock, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    if addr.is_ipv6() {
        set_int_option(
            &sock,
            libc::IPPROTO_IPV6,
            libc::IPV6_V6ONLY,
            libc::c_int::from(v6only),
        )?;
    }
    bind_to(&sock, addr)?;
    // SAFETY: listen has no memory preconditions; sock is an open socket.
    if unsafe { libc::listen(sock.as_raw_fd(), backlog) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(std::net::TcpListener::from(sock))
}

/// Connects to `remote`, first binding to `local` when given, giving up after `timeout`.
/// The stream returned is blocking.
pub fn tcp_connect(
    local: Option<&std::net::SocketAddr>,
    remote: &std::net::SocketAddr,
    timeout: std::time::Duration,
) -> io::Result<std::net::TcpStream> {
    use std::os::fd::AsRawFd;
    let sock = tcp_socket(remote)?;
    if let Some(l) = local {
        bind_to(&sock, l)?;
    }
    let stream = std::net::TcpStream::from(sock);
    stream.set_nonblocking(true)?;
    let (ss, len) = c_sockaddr(remote);
    // SAFETY: ss holds a valid socket address of length len.
    let r = unsafe { libc::connect(stream.as_raw_fd(), (&raw const ss).cast(), len) };
    if r == -1 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(e);
        }
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(io::Error::from_raw_os_error(libc::ETIMEDOUT));
            }
            let ms = i32::try_from(left.as_micros().div_ceil(1000)).unwrap_or(i32::MAX);
            let want = proc::Ready {
                read: false,
                write: true,
            };
            if proc::poll(&[(stream.as_raw_fd(), want)], ms)?
                .iter()
                .any(|r| r.write)
            {
                break;
            }
        }
        if let Some(e) = stream.take_error()? {
            return Err(e);
        }
        stream.peer_addr()?;
    }
    stream.set_nonblocking(false)?;
    Ok(stream)
}

/// Removes IP options (source routes) from an IPv4 socket; errors are ignored, as
/// ucspi-tcp ignores them.
pub fn kill_ip_options(sock: &std::net::TcpStream) {
    use std::os::fd::AsRawFd;
    // SAFETY: a null option value of length 0 clears the options; nothing is read.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_OPTIONS,
            std::ptr::null(),
            0,
        )
    };
}

/// Sets the group id and makes it the only supplementary group (ucspi-tcp's prot_gid).
pub fn set_gid(gid: u32) -> io::Result<()> {
    let groups = [gid];
    // SAFETY: groups is a valid array of one gid_t.
    if unsafe { libc::setgroups(1, groups.as_ptr()) } == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: setgid has no memory preconditions.
    if unsafe { libc::setgid(gid) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets the user id (ucspi-tcp's prot_uid).
pub fn set_uid(uid: u32) -> io::Result<()> {
    // SAFETY: setuid has no memory preconditions.
    if unsafe { libc::setuid(uid) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Replaces the process with the program at `path`, given `argv` and exactly the
/// environment `envp` (`NAME=value` strings), after putting SIGPIPE back to its default
/// action and emptying the signal mask, as std's `Command::exec` does. Everything is built
/// by the caller, so a forked child can exec without allocating more than two small
/// pointer arrays. Returns only on failure.
pub fn exec(path: &CStr, argv: &[&CStr], envp: &[&CStr]) -> io::Error {
    let args: Vec<*const libc::c_char> = argv
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let env: Vec<*const libc::c_char> = envp
        .iter()
        .map(|e| e.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    // SAFETY: a zeroed sigset_t is a valid value for sigemptyset to fill in.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: set is a valid sigset_t owned by this frame.
    unsafe { libc::sigemptyset(&mut set) };
    // SAFETY: set is initialised; the old mask is not asked for.
    unsafe { libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut()) };
    // SAFETY: restoring a default disposition has no memory preconditions.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    // SAFETY: path and every element of both arrays are NUL-terminated strings that
    // outlive the call, and both arrays end with a null pointer.
    unsafe { libc::execve(path.as_ptr(), args.as_ptr(), env.as_ptr()) };
    let e = io::Error::last_os_error();
    // The exec failed: the caller goes on as before, SIGPIPE ignored as Rust has it.
    // SAFETY: as above.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    e
}

/// Moves a descriptor to the number `target` (ucspi-tcp's fd_move): afterwards `target`
/// refers to it, stays open across exec, and the old number is closed. Whatever `target`
/// referred to before is closed; the caller must own nothing there.
pub fn fd_move(fd: std::os::fd::OwnedFd, target: i32) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::{AsRawFd, FromRawFd};
    if fd.as_raw_fd() == target {
        // SAFETY: F_SETFD with 0 only clears close-on-exec on an open descriptor.
        if unsafe { libc::fcntl(target, libc::F_SETFD, 0) } == -1 {
            return Err(io::Error::last_os_error());
        }
        return Ok(fd);
    }
    fd_copy(&fd, target)?;
    drop(fd);
    // SAFETY: dup2 made target an open descriptor that this function hands to one owner.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(target) })
}

/// Makes `target` a copy of `fd` that stays open across exec (ucspi-tcp's fd_copy). The
/// copy is left open for the program about to be exec'd; whatever `target` referred to
/// before is closed, so the caller must own nothing there.
pub fn fd_copy(fd: &impl std::os::fd::AsRawFd, target: i32) -> io::Result<()> {
    if fd.as_raw_fd() == target {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: dup2 has no memory preconditions; both numbers are checked by the kernel.
    if unsafe { libc::dup2(fd.as_raw_fd(), target) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The index of a network interface by name (what an IPv6 link-local address needs as
/// its scope), asked of the kernel in this process's network namespace; None for a name
/// that is not an interface there.
pub fn interface_index(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    // SAFETY: c is a NUL-terminated string that outlives the call.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}

/// The addresses of this host's network interfaces (qmail's ipme), from getifaddrs(3):
/// IPv4 and IPv6, loopback included.
pub fn local_addresses() -> io::Result<Vec<std::net::IpAddr>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: head is a valid place for the list pointer; it is freed below.
    if unsafe { libc::getifaddrs(&raw mut head) } == -1 {
        return Err(io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: cur is a node of the list getifaddrs returned, not yet freed.
        let node = unsafe { &*cur };
        let sa = node.ifa_addr;
        if !sa.is_null() {
            // SAFETY: ifa_addr points to a sockaddr of the family it names.
            let family = i32::from(unsafe { (*sa).sa_family });
            if family == libc::AF_INET {
                // SAFETY: the family says this is a sockaddr_in.
                let sin = unsafe { &*sa.cast::<libc::sockaddr_in>() };
                out.push(std::net::IpAddr::V4(std::net::Ipv4Addr::from(
                    u32::from_be(sin.sin_addr.s_addr),
                )));
            } else if family == libc::AF_INET6 {
                // SAFETY: the family says this is a sockaddr_in6.
                let sin6 = unsafe { &*sa.cast::<libc::sockaddr_in6>() };
                out.push(std::net::IpAddr::V6(std::net::Ipv6Addr::from(
                    sin6.sin6_addr.s6_addr,
                )));
            }
        }
        cur = node.ifa_next;
    }
    // SAFETY: head came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
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
    fn loopback_is_a_local_address() {
        let a = local_addresses().unwrap();
        assert!(a.contains(&"127.0.0.1".parse().unwrap()), "{a:?}");
    }

    #[test]
    fn interfaces_are_found_by_name_only() {
        assert_eq!(interface_index("lo"), Some(1));
        for bad in ["", "nosuchif0", "../lo", ".", "lo/.."] {
            assert_eq!(interface_index(bad), None, "{bad}");
        }
    }

    #[test]
    fn root_account_exists() {
        let a = account(b"root").unwrap().unwrap();
        assert_eq!(a.uid, 0);
        assert!(account(b"no-such-user-here").unwrap().is_none());
    }
}
