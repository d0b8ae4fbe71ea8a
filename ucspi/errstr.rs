//! The texts ucspi-tcp prints for system errors (its `error_str` table: "file does not
//! exist", "address already used", ...), so our messages match DJB's byte for byte.
//!
//! Numbers are Linux errno values; a test checks each against the C library's.

use std::io;

/// (errno, text) in the order of DJB's table: where two names share a number (EAGAIN and
/// EWOULDBLOCK), the first entry wins, as it does in C.
const TABLE: &[(i32, &str)] = &[
    (0, "no error"),
    (4, "interrupted system call"),
    (12, "out of memory"),
    (2, "file does not exist"),
    (26, "text busy"),
    (5, "input/output error"),
    (17, "file already exists"),
    (110, "timed out"),
    (115, "operation in progress"),
    (11, "temporary failure"),
    (32, "broken pipe"),
    (1, "permission denied"),
    (13, "access denied"),
    (6, "device not configured"),
    (71, "protocol error"),
    (21, "is a directory"),
    (111, "connection refused"),
    (20, "not a directory"),
    (3, "no such process"),
    (7, "argument list too long"),
    (8, "exec format error"),
    (9, "file descriptor not open"),
    (10, "no child processes"),
    (35, "operation would cause deadlock"),
    (14, "bad address"),
    (15, "not a block device"),
    (16, "device busy"),
    (18, "cross-device link"),
    (19, "device does not support operation"),
    (22, "invalid argument"),
    (23, "system cannot open more files"),
    (24, "process cannot open more files"),
    (25, "not a tty"),
    (27, "file too big"),
    (28, "out of disk space"),
    (29, "unseekable descriptor"),
    (30, "read-only file system"),
    (31, "too many links"),
    (33, "input out of range"),
    (34, "output out of range"),
    (114, "operation already in progress"),
    (88, "not a socket"),
    (89, "destination address required"),
    (90, "message too long"),
    (91, "incorrect protocol type"),
    (92, "protocol not available"),
    (93, "protocol not supported"),
    (94, "socket type not supported"),
    (95, "operation not supported"),
    (96, "protocol family not supported"),
    (97, "address family not supported"),
    (98, "address already used"),
    (99, "address not available"),
    (100, "network down"),
    (101, "network unreachable"),
    (102, "network reset"),
    (103, "connection aborted"),
    (104, "connection reset"),
    (105, "out of buffer space"),
    (106, "already connected"),
    (107, "not connected"),
    (108, "socket shut down"),
    (109, "too many references"),
    (40, "symbolic link loop"),
    (36, "file name too long"),
    (112, "host down"),
    (113, "host unreachable"),
    (39, "directory not empty"),
    (87, "too many users"),
    (122, "disk quota exceeded"),
    (116, "stale NFS file handle"),
    (66, "too many levels of remote in path"),
    (37, "no locks available"),
    (38, "system call not available"),
    (60, "not a stream device"),
    (62, "timer expired"),
    (63, "out of stream resources"),
    (42, "no message of desired type"),
    (74, "bad message type"),
    (43, "identifier removed"),
    (64, "machine not on network"),
    (67, "link severed"),
    (68, "advertise error"),
    (69, "srmount error"),
    (70, "communication error"),
    (72, "multihop attempted"),
    (78, "remote address changed"),
];

/// ENOENT.
pub const ENOENT: i32 = 2;
/// EINVAL.
pub const EINVAL: i32 = 22;
/// ETIMEDOUT.
pub const ETIMEDOUT: i32 = 110;
/// EPROTO, what a malformed database reports.
pub const EPROTO: i32 = 71;

/// DJB's text for an errno value.
pub fn errno_text(errno: i32) -> &'static str {
    TABLE
        .iter()
        .find(|&&(n, _)| n == errno)
        .map_or("unknown error", |&(_, s)| s)
}

/// DJB's text for an I/O error. Errors that carry no errno (a malformed file, say) read as
/// "protocol error", which is what DJB's readers report for them.
pub fn text(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(n) => errno_text(n),
        None if e.kind() == io::ErrorKind::TimedOut => errno_text(110),
        None => errno_text(EPROTO),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_the_c_library() {
        for (n, name) in [
            (libc::EINTR, "interrupted system call"),
            (libc::ENOENT, "file does not exist"),
            (libc::EAGAIN, "temporary failure"),
            (libc::EWOULDBLOCK, "temporary failure"),
            (libc::ETIMEDOUT, "timed out"),
            (libc::EADDRINUSE, "address already used"),
            (libc::EADDRNOTAVAIL, "address not available"),
            (libc::ECONNREFUSED, "connection refused"),
            (libc::EACCES, "access denied"),
            (libc::EPERM, "permission denied"),
            (libc::EISDIR, "is a directory"),
            (libc::EPROTO, "protocol error"),
            (libc::EINVAL, "invalid argument"),
            (libc::EMFILE, "process cannot open more files"),
            (libc::ENOSPC, "out of disk space"),
            (libc::EDQUOT, "disk quota exceeded"),
            (libc::EHOSTUNREACH, "host unreachable"),
            (libc::ENETUNREACH, "network unreachable"),
            (libc::ECONNRESET, "connection reset"),
            (libc::EPIPE, "broken pipe"),
            (libc::ENOEXEC, "exec format error"),
            (libc::ELOOP, "symbolic link loop"),
            (libc::ENAMETOOLONG, "file name too long"),
            (libc::ENOTDIR, "not a directory"),
            (libc::EROFS, "read-only file system"),
            (libc::EXDEV, "cross-device link"),
        ] {
            assert_eq!(errno_text(n), name, "errno {n}");
        }
        for (n, name) in [
            (libc::ENOMEM, "out of memory"),
            (libc::ETXTBSY, "text busy"),
            (libc::EIO, "input/output error"),
            (libc::EEXIST, "file already exists"),
            (libc::EINPROGRESS, "operation in progress"),
            (libc::ENXIO, "device not configured"),
            (libc::ESRCH, "no such process"),
            (libc::E2BIG, "argument list too long"),
            (libc::EBADF, "file descriptor not open"),
            (libc::ECHILD, "no child processes"),
            (libc::EDEADLK, "operation would cause deadlock"),
            (libc::EFAULT, "bad address"),
            (libc::ENOTBLK, "not a block device"),
            (libc::EBUSY, "device busy"),
            (libc::ENODEV, "device does not support operation"),
            (libc::ENFILE, "system cannot open more files"),
            (libc::ENOTTY, "not a tty"),
            (libc::EFBIG, "file too big"),
            (libc::ESPIPE, "unseekable descriptor"),
            (libc::EMLINK, "too many links"),
            (libc::EDOM, "input out of range"),
            (libc::ERANGE, "output out of range"),
            (libc::EALREADY, "operation already in progress"),
            (libc::ENOTSOCK, "not a socket"),
            (libc::EDESTADDRREQ, "destination address required"),
            (libc::EMSGSIZE, "message too long"),
            (libc::EPROTOTYPE, "incorrect protocol type"),
            (libc::ENOPROTOOPT, "protocol not available"),
            (libc::EPROTONOSUPPORT, "protocol not supported"),
            (libc::ESOCKTNOSUPPORT, "socket type not supported"),
            (libc::EOPNOTSUPP, "operation not supported"),
            (libc::EPFNOSUPPORT, "protocol family not supported"),
            (libc::EAFNOSUPPORT, "address family not supported"),
            (libc::ENETDOWN, "network down"),
            (libc::ENETRESET, "network reset"),
            (libc::ECONNABORTED, "connection aborted"),
            (libc::ENOBUFS, "out of buffer space"),
            (libc::EISCONN, "already connected"),
            (libc::ENOTCONN, "not connected"),
            (libc::ESHUTDOWN, "socket shut down"),
            (libc::ETOOMANYREFS, "too many references"),
            (libc::EHOSTDOWN, "host down"),
            (libc::ENOTEMPTY, "directory not empty"),
            (libc::EUSERS, "too many users"),
            (libc::ESTALE, "stale NFS file handle"),
            (libc::EREMOTE, "too many levels of remote in path"),
            (libc::ENOLCK, "no locks available"),
            (libc::ENOSYS, "system call not available"),
            (libc::ENOSTR, "not a stream device"),
            (libc::ETIME, "timer expired"),
            (libc::ENOSR, "out of stream resources"),
            (libc::ENOMSG, "no message of desired type"),
            (libc::EBADMSG, "bad message type"),
            (libc::EIDRM, "identifier removed"),
            (libc::ENONET, "machine not on network"),
            (libc::ENOLINK, "link severed"),
            (libc::EADV, "advertise error"),
            (libc::ESRMNT, "srmount error"),
            (libc::ECOMM, "communication error"),
            (libc::EMULTIHOP, "multihop attempted"),
            (libc::EREMCHG, "remote address changed"),
        ] {
            assert_eq!(errno_text(n), name, "errno {n}");
        }
        assert_eq!(errno_text(9999), "unknown error");
        assert_eq!(
            (ENOENT, EINVAL, EPROTO),
            (libc::ENOENT, libc::EINVAL, libc::EPROTO)
        );
        assert_eq!(ETIMEDOUT, libc::ETIMEDOUT);
    }

    #[test]
    fn errors_without_errno_read_as_protocol_errors() {
        assert_eq!(text(&io::Error::other("bad cdb")), "protocol error");
        assert_eq!(
            text(&io::Error::from_raw_os_error(2)),
            "file does not exist"
        );
    }
}
