//! Processes and descriptors for the daemons: moving pipes onto fixed descriptor numbers in a
//! child, signal flags that interrupt `poll`, non-blocking descriptors.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

/// Arranges for the child of `cmd` to find each `from` descriptor of the parent at number
/// `to` (qmail-start's fd plumbing). Descriptors not mapped keep close-on-exec. Overlapping
/// numbers are handled by moving every source above the targets first.
pub fn map_fds(cmd: &mut Command, map: &[(RawFd, RawFd)]) {
    let map = map.to_vec();
    let high = map.iter().map(|&(f, t)| f.max(t)).max().unwrap_or(0) + 1;
    let run = move || -> io::Result<()> {
        let mut tmp: [RawFd; 32] = [0; 32];
        for (i, &(from, _)) in map.iter().enumerate().take(tmp.len()) {
            // SAFETY: F_DUPFD_CLOEXEC only duplicates a descriptor; async-signal-safe.
            let d = unsafe { libc::fcntl(from, libc::F_DUPFD_CLOEXEC, high) };
            if d == -1 {
                return Err(io::Error::last_os_error());
            }
            if let Some(slot) = tmp.get_mut(i) {
                *slot = d;
            }
        }
        for (i, &(_, to)) in map.iter().enumerate().take(tmp.len()) {
            let d = tmp.get(i).copied().unwrap_or(-1);
            // SAFETY: dup2 onto a fixed number; the copy loses close-on-exec as intended.
            if unsafe { libc::dup2(d, to) } == -1 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    };
    // SAFETY: the closure calls only fcntl and dup2, which are async-signal-safe, and
    // allocates nothing (the map was copied before fork).
    unsafe { cmd.pre_exec(run) };
}

/// The signals a daemon reacts to by setting a flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// SIGALRM: qmail-send retries everything now.
    Alarm,
    /// SIGCHLD: a child exited.
    Child,
    /// SIGHUP: reread the control files.
    Hangup,
    /// SIGTERM: finish what is in progress and exit.
    Terminate,
}

static FLAGS: [AtomicBool; 4] = [
    AtomicBool::new(false),
    AtomicBool::new(false),
    AtomicBool::new(false),
    AtomicBool::new(false),
];

fn number(s: Signal) -> libc::c_int {
    match s {
        Signal::Alarm => libc::SIGALRM,
        Signal::Child => libc::SIGCHLD,
        Signal::Hangup => libc::SIGHUP,
        Signal::Terminate => libc::SIGTERM,
    }
}

extern "C" fn on_signal(sig: libc::c_int) {
    let i = match sig {
        libc::SIGALRM => 0,
        libc::SIGCHLD => 1,
        libc::SIGHUP => 2,
        _ => 3,
    };
    if let Some(f) = FLAGS.get(i) {
        f.store(true, Ordering::SeqCst);
    }
}

/// Makes each signal set its flag. The handlers are installed without SA_RESTART, so a
/// blocking `poll` returns early with EINTR and the loop sees the flag at once.
pub fn catch(signals: &[Signal]) {
    for &s in signals {
        // SAFETY: a zeroed sigaction is a valid value to fill in.
        let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
        sa.sa_sigaction = on_signal as *const () as libc::sighandler_t;
        if s == Signal::Child {
            sa.sa_flags = libc::SA_NOCLDSTOP;
        }
        // SAFETY: sa_mask is a valid sigset_t owned by this frame.
        unsafe { libc::sigemptyset(&mut sa.sa_mask) };
        // SAFETY: the handler only stores to an atomic.
        unsafe { libc::sigaction(number(s), &sa, std::ptr::null_mut()) };
    }
}

/// Reads and clears a signal's flag.
pub fn take(s: Signal) -> bool {
    let i = match s {
        Signal::Alarm => 0,
        Signal::Child => 1,
        Signal::Hangup => 2,
        Signal::Terminate => 3,
    };
    FLAGS
        .get(i)
        .is_some_and(|f| f.swap(false, Ordering::SeqCst))
}

/// Readiness asked of and reported for one descriptor by [`poll`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ready {
    /// Can be read (or is at end of file / hung up).
    pub read: bool,
    /// Can be written.
    pub write: bool,
}

/// Waits until one of the descriptors is ready or `timeout_ms` passes (-1: no limit).
/// Returns one entry per descriptor; all false on timeout or when a signal arrived.
pub fn poll(fds: &[(RawFd, Ready)], timeout_ms: i32) -> io::Result<Vec<Ready>> {
    let mut p: Vec<libc::pollfd> = fds
        .iter()
        .map(|&(fd, want)| libc::pollfd {
            fd,
            events: (if want.read { libc::POLLIN } else { 0 })
                | (if want.write { libc::POLLOUT } else { 0 }),
            revents: 0,
        })
        .collect();
    let n = libc::nfds_t::try_from(p.len()).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: p is a valid array of n pollfd structures.
    let r = unsafe { libc::poll(p.as_mut_ptr(), n, timeout_ms) };
    if r == -1 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
        return Ok(vec![Ready::default(); fds.len()]);
    }
    let hup = libc::POLLHUP | libc::POLLERR | libc::POLLNVAL;
    Ok(p.iter()
        .map(|q| Ready {
            read: q.revents & (libc::POLLIN | hup) != 0,
            write: q.revents & (libc::POLLOUT | hup) != 0,
        })
        .collect())
}

/// Puts a descriptor into non-blocking mode (or back).
pub fn set_nonblocking(fd: &impl AsRawFd, on: bool) -> io::Result<()> {
    let fd = fd.as_raw_fd();
    // SAFETY: F_GETFL only reads the descriptor's flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags == -1 {
        return Err(io::Error::last_os_error());
    }
    let new = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    // SAFETY: F_SETFL with flags derived from the current ones.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, new) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets the process's supplementary groups, group and user, in that order (for a
/// privileged program that goes on running as someone else). Refuses uid 0.
pub fn become_user(uid: u32, gid: u32) -> io::Result<()> {
    if uid == 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "refusing to run as root",
        ));
    }
    // SAFETY: an empty group list; setgroups copies nothing.
    if unsafe { libc::setgroups(0, std::ptr::null()) } == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: setgid and setuid take plain integers.
    if unsafe { libc::setgid(gid) } == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::setuid(uid) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sends a signal to a process.
pub fn kill(pid: u32, sig: Signal) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: kill takes plain integers.
    if unsafe { libc::kill(pid, number(sig)) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Opens a file (the trigger FIFO) for reading without waiting for a writer.
pub fn open_read_nonblock(path: &std::path::Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

static CHILD_PIPE: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

extern "C" fn on_child(_sig: libc::c_int) {
    let fd = CHILD_PIPE.load(Ordering::SeqCst);
    if fd >= 0 {
        let b = [0u8; 1];
        // SAFETY: write is async-signal-safe; the pipe is non-blocking, so a full pipe
        // (a wake-up already pending) only drops this byte.
        let _ = unsafe { libc::write(fd, b.as_ptr().cast(), 1) };
    }
}

/// A descriptor that becomes readable whenever a child exits (the self-pipe trick), so a
/// `poll` loop cannot miss SIGCHLD. Call once; read and discard its bytes after waking.
pub fn child_pipe() -> io::Result<std::fs::File> {
    let (r, w) = io::pipe()?;
    set_nonblocking(&r, true)?;
    set_nonblocking(&w, true)?;
    let w: std::os::fd::OwnedFd = w.into();
    CHILD_PIPE.store(std::os::fd::IntoRawFd::into_raw_fd(w), Ordering::SeqCst);
    // SAFETY: a zeroed sigaction is a valid value to fill in.
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = on_child as *const () as libc::sighandler_t;
    sa.sa_flags = libc::SA_NOCLDSTOP | libc::SA_RESTART;
    // SAFETY: sa_mask is a valid sigset_t owned by this frame.
    unsafe { libc::sigemptyset(&mut sa.sa_mask) };
    // SAFETY: the handler only writes one byte to a non-blocking pipe.
    unsafe { libc::sigaction(libc::SIGCHLD, &sa, std::ptr::null_mut()) };
    Ok(std::fs::File::from(std::os::fd::OwnedFd::from(r)))
}

/// Flushes every file and directory of the file system holding `f` to stable storage
/// (syncfs(2)): one call where a batch of files and links would need one fsync each.
pub fn syncfs(f: &std::fs::File) -> io::Result<()> {
    // SAFETY: the descriptor is owned by `f` and open for the call.
    if unsafe { libc::syncfs(f.as_raw_fd()) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Kills a whole process group (a delivery program and everything it started) with
/// SIGKILL.
pub fn kill_group(pgid: u32) -> io::Result<()> {
    let pgid = libc::pid_t::try_from(pgid).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: kill takes plain integers; a negative pid names a process group.
    if unsafe { libc::kill(-pgid, libc::SIGKILL) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
