//! The environment: the variables the ucspi tools read (in this one place) and the edits
//! they make for the program they run (the tcp-environ variables and rule variables).
//!
//! Edits follow ucspi-tcp's `pathexec_env`: a set replaces, an unset removes, an empty value
//! is a set variable, and a later edit of the same name wins.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::process::Command;

/// The value of a variable of this process; `None` when it is unset.
pub fn var(name: &str) -> Option<Vec<u8>> {
    std::env::var_os(name).map(OsString::into_vec)
}

/// Environment changes for the program about to run, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Edits(Vec<(Vec<u8>, Option<Vec<u8>>)>);

impl Edits {
    /// No changes.
    pub fn new() -> Edits {
        Edits::default()
    }

    /// Sets `name` to `value`, or unsets it when `value` is `None`.
    pub fn put(&mut self, name: &[u8], value: Option<&[u8]>) {
        self.0.push((name.to_vec(), value.map(<[u8]>::to_vec)));
    }

    /// Sets `name` to `value`.
    pub fn set(&mut self, name: &[u8], value: &[u8]) {
        self.put(name, Some(value));
    }

    /// The final value an edit gives `name`: `Some(None)` when it is unset, `None` when no
    /// edit touches it.
    pub fn get(&self, name: &[u8]) -> Option<Option<&[u8]>> {
        self.0
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_deref())
    }

    /// Each name edited, with its final value (`None`: unset), in the order the names were
    /// first edited.
    pub fn last_values(&self) -> Vec<(&[u8], Option<&[u8]>)> {
        let mut out: Vec<(&[u8], Option<&[u8]>)> = Vec::new();
        for (n, v) in &self.0 {
            match out.iter_mut().find(|(m, _)| *m == n.as_slice()) {
                Some(slot) => slot.1 = v.as_deref(),
                None => out.push((n, v.as_deref())),
            }
        }
        out
    }

    /// Applies the edits to a command.
    pub fn apply(&self, cmd: &mut Command) {
        for (n, v) in &self.0 {
            let n = std::ffi::OsStr::from_bytes(n);
            match v {
                Some(v) => cmd.env(n, std::ffi::OsStr::from_bytes(v)),
                None => cmd.env_remove(n),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_edits_win() {
        let mut e = Edits::new();
        e.set(b"A", b"1");
        e.put(b"B", None);
        e.set(b"A", b"");
        assert_eq!(e.get(b"A"), Some(Some(&b""[..])));
        assert_eq!(e.get(b"B"), Some(None));
        assert_eq!(e.get(b"C"), None);
        assert_eq!(
            e.last_values(),
            vec![(&b"A"[..], Some(&b""[..])), (&b"B"[..], None)]
        );
    }
}
