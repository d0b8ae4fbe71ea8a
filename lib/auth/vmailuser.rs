//! qmail-vmailuser: does a virtual user of VMailMgr or vpopmail exist? A recipient check
//! run from `control/recipients` with `address\0\0\0` on descriptor 3.
//!
//! The domain of the address is looked up in `control/virtualusers` (lines `domain:vuser`,
//! as s/qmail 4 documents); when that file does not exist, in `control/virtualdomains`,
//! the file qmail-send reads (as the 2017 s/qmail code does). The user exists when
//! `homedir/vuser/users/user` (VMailMgr) or `homedir/vpopmail/domains/vuser/user`
//! (vpopmail) is a directory; dots in the user part become colons, and the address is
//! lower-cased unless `-C` is given.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::Refusal;
use crate::sys;

/// The most input read from descriptor 3 (s/qmail's 128-byte buffer).
pub const INPUT_MAX: usize = 128;

/// The home directory of the virtual users unless the command line names another.
pub const DEFAULT_HOMEDIR: &str = "/home";

/// The command line: `qmail-vmailuser [homedir] [-C]`.
#[derive(Debug, PartialEq, Eq)]
pub struct Args {
    /// Where the virtual users' directories are.
    pub homedir: PathBuf,
    /// `-C`: keep the case of the user part.
    pub respect_case: bool,
}

/// Parses the arguments after the program name.
pub fn parse_args(args: &[std::ffi::OsString]) -> Result<Args, Refusal> {
    let mut out = Args {
        homedir: PathBuf::from(DEFAULT_HOMEDIR),
        respect_case: false,
    };
    for (i, a) in args.iter().enumerate() {
        if a.eq_ignore_ascii_case("-C") {
            out.respect_case = true;
        } else if i == 0 {
            out.homedir = PathBuf::from(a);
        } else {
            return Err(Refusal::Misuse);
        }
    }
    Ok(out)
}

/// Finds the virtual user (the value) of `domain` in a `domain:value` control file.
pub fn vuser_of(list: &[u8], domain: &[u8]) -> Option<Vec<u8>> {
    list.split(|&b| b == b'\n').find_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let i = line.iter().position(|&b| b == b':')?;
        let (d, v) = (line.get(..i)?, line.get(i + 1..)?);
        let v = v.trim_ascii_end();
        (!line.starts_with(b"#") && d.eq_ignore_ascii_case(domain) && !v.is_empty())
            .then(|| v.to_vec())
    })
}

/// The directories that prove the user exists, in the order they are tried. `None` when the
/// address has no user or domain part or names a path outside the user directories.
pub fn candidates(
    homedir: &Path,
    vuser: &[u8],
    address: &[u8],
    respect_case: bool,
) -> Option<Vec<PathBuf>> {
    let at = address.iter().rposition(|&b| b == b'@')?;
    let user = address.get(..at)?;
    if user.is_empty() || user.contains(&b'/') || vuser.contains(&b'/') || vuser == b".." {
        return None;
    }
    let mut user: Vec<u8> = user
        .iter()
        .map(|&b| if b == b'.' { b':' } else { b })
        .collect();
    if !respect_case {
        user.make_ascii_lowercase();
    }
    let os =
        |b: &[u8]| PathBuf::from(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b));
    let user = os(&user);
    let vuser = os(vuser);
    Some(vec![
        homedir.join(&vuser).join("users").join(&user),
        homedir.join("vpopmail/domains").join(&vuser).join(&user),
    ])
}

fn read_list(home: &Path) -> Result<Vec<u8>, Refusal> {
    for name in ["control/virtualusers", "control/virtualdomains"] {
        match std::fs::read(home.join(name)) {
            Ok(t) => return Ok(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(_) => return Err(Refusal::Temporary),
        }
    }
    Ok(Vec::new())
}

/// Runs the check: `Ok(())` when the user exists.
pub fn run(args: &[std::ffi::OsString], home: &Path) -> Result<(), Refusal> {
    sys::crypt::rest_privileges().map_err(|_| Refusal::Temporary)?;
    let args = parse_args(args)?;
    let mut fd3 = sys::inherited_fd(3).ok_or(Refusal::Misuse)?;
    let mut buf = Vec::with_capacity(INPUT_MAX + 1);
    (&mut fd3)
        .take(INPUT_MAX as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|_| Refusal::Temporary)?;
    drop(fd3);
    if buf.len() > INPUT_MAX {
        return Err(Refusal::Misuse);
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let mut address = buf.get(..end).unwrap_or_default().to_vec();
    let at = address
        .iter()
        .rposition(|&b| b == b'@')
        .ok_or(Refusal::Credentials)?;
    if !args.respect_case {
        address.make_ascii_lowercase();
    }
    let domain = address
        .get(at + 1..)
        .unwrap_or_default()
        .to_ascii_lowercase();
    let list = read_list(home)?;
    let vuser = vuser_of(&list, &domain).ok_or(Refusal::Credentials)?;
    let dirs = candidates(&args.homedir, &vuser, &address, args.respect_case)
        .ok_or(Refusal::Credentials)?;
    // vpopmail's directories belong to vpopmail; a setuid install takes root back to look.
    let _ = sys::crypt::regain_root();
    let mut trouble = false;
    let mut found = false;
    for d in dirs {
        match std::fs::metadata(&d) {
            Ok(m) if m.is_dir() => {
                found = true;
                break;
            }
            Ok(_) => {}
            Err(e) if crate::fail::is_temp(&e) => trouble = true,
            Err(_) => {}
        }
    }
    let _ = sys::crypt::drop_privileges();
    match (found, trouble) {
        (true, _) => Ok(()),
        (false, true) => Err(Refusal::Temporary),
        (false, false) => Err(Refusal::Credentials),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_domain_names_the_virtual_user() {
        let list = b"# c\nexample.com:vuser\nOther.Example:other\n";
        assert_eq!(vuser_of(list, b"example.com"), Some(b"vuser".to_vec()));
        assert_eq!(vuser_of(list, b"other.example"), Some(b"other".to_vec()));
        assert_eq!(vuser_of(list, b"none.example"), None);
    }

    #[test]
    fn candidate_paths() {
        let c = candidates(Path::new("/home"), b"vu", b"Joe.Doe@x", false).unwrap();
        assert_eq!(
            c,
            vec![
                PathBuf::from("/home/vu/users/joe:doe"),
                PathBuf::from("/home/vpopmail/domains/vu/joe:doe")
            ]
        );
        let c = candidates(Path::new("/home"), b"vu", b"Joe@x", true).unwrap();
        assert_eq!(c[0], PathBuf::from("/home/vu/users/Joe"));
        assert_eq!(candidates(Path::new("/h"), b"vu", b"a/b@x", false), None);
        assert_eq!(candidates(Path::new("/h"), b"vu", b"@x", false), None);
        assert_eq!(candidates(Path::new("/h"), b"..", b"a@x", false), None);
    }

    #[test]
    fn arguments() {
        let a = parse_args(&[]).unwrap();
        assert_eq!(a.homedir, PathBuf::from("/home"));
        let a = parse_args(&["/srv".into(), "-C".into()]).unwrap();
        assert!(a.respect_case);
        assert_eq!(a.homedir, PathBuf::from("/srv"));
        assert!(parse_args(&["-C".into()]).unwrap().respect_case);
        assert_eq!(
            parse_args(&["/a".into(), "/b".into()]),
            Err(Refusal::Misuse)
        );
    }
}
