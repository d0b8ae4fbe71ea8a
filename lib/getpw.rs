//! qmail-getpw: the default mapping from a local part to an account, used when
//! users/assign says nothing. `user` and `user-ext` go to that account (case-insensitive,
//! shorter than 32 bytes, not root, home directory owned by it); anything else goes to the
//! alias account with the whole local part as extension.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;

use crate::sys;

/// Longest account name considered (qmail's GETPW_USERLEN, including the NUL).
pub const USER_MAX: usize = 32;
/// The extension separator (s/qmail's conf-break).
pub const BREAK: u8 = b'-';

/// qmail-getpw's answer: `user\0uid\0gid\0home\0dash\0ext\0`, or the exit code for
/// failure (115 temporary trouble with a home directory, 116 no alias account).
pub fn getpw(local: &[u8], alias: &[u8]) -> Result<Vec<u8>, u8> {
    let mut end = local.len();
    loop {
        let at_break = end == local.len() || local.get(end) == Some(&BREAK);
        if end < USER_MAX && at_break {
            let name = local.get(..end).unwrap_or_default().to_ascii_lowercase();
            if let Some(a) = sys::account(&name).map_err(|_| 118u8)?
                && a.uid != 0
            {
                match std::fs::metadata(std::ffi::OsStr::from_bytes(&a.home)) {
                    Ok(m) if m.uid() == a.uid => {
                        let (dash, ext): (&[u8], &[u8]) = if end == local.len() {
                            (b"", b"")
                        } else {
                            (b"-", local.get(end + 1..).unwrap_or_default())
                        };
                        return Ok(answer(&a, dash, ext));
                    }
                    Ok(_) => {}
                    Err(e) if crate::fail::is_temp(&e) => return Err(115),
                    Err(_) => {}
                }
            }
        }
        if end == 0 {
            break;
        }
        end -= 1;
    }
    match sys::account(alias) {
        Ok(Some(a)) => Ok(answer(&a, b"-", local)),
        _ => Err(116),
    }
}

fn answer(a: &sys::Account, dash: &[u8], ext: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + a.home.len() + ext.len());
    for f in [
        &a.name[..],
        a.uid.to_string().as_bytes(),
        a.gid.to_string().as_bytes(),
        &a.home,
        dash,
        ext,
    ] {
        out.extend_from_slice(f);
        out.push(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_local_parts_go_to_the_alias_account() {
        // root is never a delivery account; "nobody" has no home it owns.
        let a = getpw(b"root-x", b"root").unwrap();
        assert_eq!(a, b"root\x000\x000\x00/root\x00-\x00root-x\x00");
        assert_eq!(getpw(b"zzz", b"no-such-alias-account"), Err(116));
    }
}
