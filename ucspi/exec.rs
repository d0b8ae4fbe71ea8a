//! Running the next program the way ucspi-tcp's `pathexec` does: a name with a slash is
//! exec'd as it is; otherwise each element of `$PATH` (of this process, before any edits;
//! `/bin:/usr/bin` when unset; an empty element means `.`) is tried in turn. "Not found"
//! moves on; "access denied", "permission denied" and "is a directory" are remembered and
//! the search goes on; any other error ends it. `argv[0]` stays the name given.
//!
//! The new program starts with the default SIGPIPE action and an empty signal mask. A
//! [`Prepared`] program is built once (the candidate paths, the argument vector and this
//! process's environment as C strings), so that a child forked per connection only adds
//! the connection's variables and execs.

use std::ffi::{CStr, CString, OsString};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::environ::{self, Edits};

/// The paths tried for `file`, in order.
pub fn candidates(file: &[u8], path: Option<&[u8]>) -> Vec<Vec<u8>> {
    if file.contains(&b'/') {
        return vec![file.to_vec()];
    }
    path.unwrap_or(b"/bin:/usr/bin")
        .split(|&c| c == b':')
        .map(|dir| {
            let mut p = if dir.is_empty() {
                b".".to_vec()
            } else {
                dir.to_vec()
            };
            p.push(b'/');
            p.extend_from_slice(file);
            p
        })
        .collect()
}

/// A C string of bytes that hold no NUL (argv and environ entries never do; a rule value
/// with one is cut there, as C would read it).
fn c_string(b: &[u8]) -> CString {
    let cut = b.split(|&c| c == 0).next().unwrap_or_default();
    CString::new(cut).unwrap_or_default()
}

/// A program ready to run, with the environment of this process.
pub struct Prepared {
    paths: Vec<CString>,
    argv: Vec<CString>,
    env: Vec<(Vec<u8>, CString)>,
}

impl Prepared {
    /// Prepares `argv` (argv[0] names the program, found as described above) to run as
    /// `file`.
    pub fn new(file: &OsString, argv: &[OsString]) -> Prepared {
        let path = environ::var("PATH");
        let env = std::env::vars_os()
            .map(|(k, v)| {
                let mut kv = k.into_vec();
                let name = kv.clone();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                (name, c_string(&kv))
            })
            .collect();
        Prepared {
            paths: candidates(file.as_bytes(), path.as_deref())
                .iter()
                .map(|p| c_string(p))
                .collect(),
            argv: argv.iter().map(|a| c_string(a.as_bytes())).collect(),
            env,
        }
    }

    /// Replaces the process with the program under the environment edits. Returns only on
    /// failure, with the error to report.
    pub fn run(&self, edits: &Edits) -> io::Error {
        let added: Vec<CString> = edits
            .last_values()
            .into_iter()
            .filter_map(|(n, v)| {
                v.map(|v| {
                    let mut kv = n.to_vec();
                    kv.push(b'=');
                    kv.extend_from_slice(v);
                    c_string(&kv)
                })
            })
            .collect();
        let mut envp: Vec<&CStr> = self
            .env
            .iter()
            .filter(|(name, _)| edits.get(name).is_none())
            .map(|(_, kv)| kv.as_c_str())
            .collect();
        envp.extend(added.iter().map(CString::as_c_str));
        let argv: Vec<&CStr> = self.argv.iter().map(CString::as_c_str).collect();
        let mut saved: Option<io::Error> = None;
        for path in &self.paths {
            let e = sqmail::sys::exec(path, &argv, &envp);
            match e.kind() {
                io::ErrorKind::NotFound => {}
                io::ErrorKind::PermissionDenied | io::ErrorKind::IsADirectory => saved = Some(e),
                _ => return e,
            }
        }
        saved.unwrap_or_else(|| io::Error::from_raw_os_error(crate::errstr::ENOENT))
    }
}

/// Replaces the process with `argv` (argv[0] names the program) under the environment
/// edits. Returns only on failure, with the error to report.
pub fn run(argv: &[OsString], edits: &Edits) -> io::Error {
    match argv.first() {
        Some(file) => run_file(file, argv, edits),
        None => io::Error::from(io::ErrorKind::InvalidInput),
    }
}

/// Replaces the process with the program `file`, given the argument vector `argv`
/// (argv0's job). Returns only on failure.
pub fn run_file(file: &OsString, argv: &[OsString], edits: &Edits) -> io::Error {
    Prepared::new(file, argv).run(edits)
}

/// Starts `argv` as a child process with `sock` on its descriptors 0 and 1, searching as
/// [`run`] does; the child is left running (the caller reaps it). std starts it with
/// posix_spawn, which copies no address space.
///
/// # Errors
/// The program could not be started; the caller then runs it the slow way, which reports
/// the error as ucspi-tcp does.
pub fn spawn(argv: &[OsString], edits: &Edits, sock: &std::net::TcpStream) -> io::Result<u32> {
    let Some((file, args)) = argv.split_first() else {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    };
    let path = environ::var("PATH");
    let mut saved: Option<io::Error> = None;
    for candidate in candidates(file.as_bytes(), path.as_deref()) {
        let mut cmd = Command::new(OsString::from_vec(candidate));
        cmd.arg0(file).args(args);
        edits.apply(&mut cmd);
        cmd.stdin(std::process::Stdio::from(std::os::fd::OwnedFd::from(
            sock.try_clone()?,
        )))
        .stdout(std::process::Stdio::from(std::os::fd::OwnedFd::from(
            sock.try_clone()?,
        )));
        match cmd.spawn() {
            Ok(child) => return Ok(child.id()),
            Err(e) => match e.kind() {
                io::ErrorKind::NotFound => {}
                io::ErrorKind::PermissionDenied | io::ErrorKind::IsADirectory => saved = Some(e),
                _ => return Err(e),
            },
        }
    }
    Err(saved.unwrap_or_else(|| io::Error::from_raw_os_error(crate::errstr::ENOENT)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_search_order() {
        assert_eq!(candidates(b"./x", Some(b"/a")), vec![b"./x".to_vec()]);
        assert_eq!(
            candidates(b"prog", Some(b"/a::/b")),
            vec![b"/a/prog".to_vec(), b"./prog".to_vec(), b"/b/prog".to_vec()]
        );
        assert_eq!(
            candidates(b"prog", None),
            vec![b"/bin/prog".to_vec(), b"/usr/bin/prog".to_vec()]
        );
    }

    #[test]
    fn c_strings_stop_at_nul() {
        assert_eq!(c_string(b"A=b\0c").as_bytes(), b"A=b");
    }
}
