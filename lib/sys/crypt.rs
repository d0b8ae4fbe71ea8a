//! System accounts for password checks: the passwd entry with its shell, the hash from the
//! shadow file, crypt(3) from libcrypt (libxcrypt on Debian: yescrypt, SHA-512 `$6$`,
//! SHA-256 `$5$`, MD5 `$1$`, bcrypt `$2b$`, traditional DES), and the effective-uid switches
//! a setuid program needs to hold root only while it reads the shadow file.

use std::ffi::{CStr, CString};
use std::io;

use super::pw_string as cstr;

#[link(name = "crypt")]
unsafe extern "C" {
    fn crypt_rn(
        phrase: *const libc::c_char,
        setting: *const libc::c_char,
        data: *mut libc::c_void,
        size: libc::c_int,
    ) -> *mut libc::c_char;
}

/// The size of libxcrypt's `struct crypt_data` (crypt.h: 384 + 384 + 512 + 767 + 1 + 30720).
const CRYPT_DATA_SIZE: usize = 32768;

/// Hashes `phrase` with the method and salt of `setting` (a stored hash). `None` when libcrypt
/// refuses: an unknown or disabled method, a malformed setting, a NUL in either argument, or
/// the failure token (a string starting with `*`) that some versions return instead of NULL.
pub fn crypt(phrase: &[u8], setting: &[u8]) -> Option<Vec<u8>> {
    let p = CString::new(phrase).ok()?;
    let s = CString::new(setting).ok()?;
    let mut data = vec![0u8; CRYPT_DATA_SIZE];
    let size = libc::c_int::try_from(data.len()).ok()?;
    // SAFETY: both strings are NUL-terminated and live across the call; data is a zeroed
    // buffer of the size passed, as crypt_rn requires.
    let out = unsafe { crypt_rn(p.as_ptr(), s.as_ptr(), data.as_mut_ptr().cast(), size) };
    if out.is_null() {
        return None;
    }
    // SAFETY: a non-NULL result points to a NUL-terminated string inside data.
    let h = unsafe { CStr::from_ptr(out) }.to_bytes().to_vec();
    data.fill(0);
    if h.first() == Some(&b'*') || h.is_empty() {
        return None;
    }
    Some(h)
}

/// A system account as a password check needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemUser {
    /// The login name.
    pub name: Vec<u8>,
    /// The user id.
    pub uid: u32,
    /// The primary group id.
    pub gid: u32,
    /// The home directory.
    pub home: Vec<u8>,
    /// The login shell.
    pub shell: Vec<u8>,
    /// The stored hash: from the shadow file when it has the account, else from passwd.
    pub hash: Vec<u8>,
}

/// Looks an account up through the C library (passwd, then shadow for the hash). `Ok(None)`
/// when there is no such account; an error is worth retrying (ETXTBSY, EIO and friends).
/// Reading the shadow file needs root; without it the passwd field is used.
pub fn system_user(name: &[u8]) -> io::Result<Option<SystemUser>> {
    let cname = CString::new(name).map_err(|_| io::ErrorKind::InvalidInput)?;
    let found = super::passwd_lookup(
        |pw, buf, out| {
            // SAFETY: every pointer refers to live memory of the stated size.
            unsafe { libc::getpwnam_r(cname.as_ptr(), pw, buf.as_mut_ptr().cast(), buf.len(), out) }
        },
        |pw| SystemUser {
            name: cstr(pw.pw_name),
            uid: pw.pw_uid,
            gid: pw.pw_gid,
            home: cstr(pw.pw_dir),
            shell: cstr(pw.pw_shell),
            hash: cstr(pw.pw_passwd),
        },
    )?;
    let Some(mut user) = found else {
        return Ok(None);
    };
    if let Some(h) = shadow_hash(&cname)? {
        user.hash = h;
    }
    Ok(Some(user))
}

fn shadow_hash(name: &CStr) -> io::Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: a zeroed spwd is a valid out-parameter.
        let mut sp: libc::spwd = unsafe { std::mem::zeroed() };
        let mut out: *mut libc::spwd = std::ptr::null_mut();
        // SAFETY: every pointer refers to live memory of the stated size.
        let rc = unsafe {
            libc::getspnam_r(
                name.as_ptr(),
                &mut sp,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut out,
            )
        };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc == libc::EACCES || rc == libc::ENOENT || (rc == 0 && out.is_null()) {
            return Ok(None);
        }
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        let h = cstr(sp.sp_pwdp);
        buf.fill(0);
        return Ok(Some(h));
    }
}

/// Makes the caller's real user and group the effective ones, keeping root as the saved
/// ids so that [`regain_root`] can take it back (a setuid-root program's resting state).
/// Does nothing when the program was not started with more privileges than its caller.
pub fn rest_privileges() -> io::Result<()> {
    // SAFETY: plain integer queries.
    let (ruid, rgid) = unsafe { (libc::getuid(), libc::getgid()) };
    // SAFETY: as above.
    let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
    if egid != rgid {
        // SAFETY: setresgid takes plain integers; -1 leaves a field unchanged.
        if unsafe { libc::setresgid(u32::MAX, rgid, egid) } == -1 {
            return Err(io::Error::last_os_error());
        }
    }
    if euid != ruid {
        // SAFETY: as above.
        if unsafe { libc::setresuid(u32::MAX, ruid, euid) } == -1 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Takes root back as the effective user after [`rest_privileges`]; fails (EPERM) when the
/// saved user id is not root.
pub fn regain_root() -> io::Result<()> {
    // SAFETY: seteuid takes a plain integer.
    if unsafe { libc::seteuid(0) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Gives up every privilege for good: real, effective and saved ids all become the caller's
/// real user and group, and the supplementary groups are cleared when that is allowed.
pub fn drop_privileges() -> io::Result<()> {
    // SAFETY: plain integer queries.
    let (ruid, rgid) = unsafe { (libc::getuid(), libc::getgid()) };
    // SAFETY: as above.
    let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
    if euid == ruid && egid == rgid {
        let (mut r, mut e, mut s) = (0, 0, 0);
        // SAFETY: three out-parameters of the right type.
        unsafe { libc::getresuid(&mut r, &mut e, &mut s) };
        if s == ruid {
            return Ok(());
        }
    }
    if ruid != 0 {
        // Root (effective or saved) may clear the groups; without it this fails harmlessly.
        let _ = regain_root();
        let groups = [rgid];
        // SAFETY: groups is a valid array of one gid_t.
        unsafe { libc::setgroups(1, groups.as_ptr()) };
    }
    // SAFETY: setresgid and setresuid take plain integers.
    if unsafe { libc::setresgid(rgid, rgid, rgid) } == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::setresuid(ruid, ruid, ruid) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crypt_reproduces_known_hashes_and_refuses_garbage() {
        // glibc's documented SHA-512 example: "Hello world!" with salt "saltstring".
        let h = crypt(b"Hello world!", b"$6$saltstring").unwrap();
        assert_eq!(
            h,
            b"$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1".to_vec()
        );
        assert_eq!(crypt(b"Hello world!", &h).unwrap(), h);
        assert_eq!(crypt(b"x", b"$99$nonsense"), None);
        assert_eq!(crypt(b"x", b"!"), None);
        assert_eq!(crypt(b"x", b""), None);
        assert_eq!(crypt(b"a\0b", b"$6$salt"), None);
    }

    #[test]
    fn root_has_an_account_and_strangers_do_not() {
        let root = system_user(b"root").unwrap().unwrap();
        assert_eq!(root.uid, 0);
        assert_eq!(system_user(b"no-such-user-for-sqmail-tests").unwrap(), None);
    }
}
