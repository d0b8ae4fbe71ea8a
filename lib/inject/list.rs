//! Walking an RFC 822 address list the way qmail's token822_addrlist does: from right to
//! left, handing each address to a callback that may rewrite it.
//!
//! The quirks are qmail's: two words in a row are two addresses (a comma is put between
//! them), a comment in front of an address moves behind it, `<>` is an address, and a
//! colon outside a group or a `>` without its `<` is a syntax error.

use super::token::{Kind, Token};

/// Why an address list could not be walked.
#[derive(Debug, PartialEq, Eq)]
pub enum ListError<E> {
    /// The list is not an RFC 822 address list as qmail reads one.
    Syntax,
    /// The callback failed.
    Callback(E),
}

/// The state of one walk. `left` tokens remain; the current one is `tokens[left - 1]`.
struct Walk<'t, F> {
    tokens: &'t [Token],
    begin: usize,
    left: usize,
    out: Vec<Token>,
    addr: Vec<Token>,
    in_group: bool,
    word_ok: bool,
    each: F,
}

impl<E, F: FnMut(&mut Vec<Token>) -> Result<(), E>> Walk<'_, F> {
    fn current(&self) -> Option<&Token> {
        if self.left > self.begin {
            self.tokens.get(self.left - 1)
        } else {
            None
        }
    }

    /// Moves the current token to the output.
    fn keep(&mut self) {
        if let Some(t) = self.current().cloned() {
            self.out.push(t);
            self.left -= 1;
        }
    }

    /// Moves the current token into the address being collected.
    fn take(&mut self) {
        if let Some(t) = self.current().cloned() {
            self.addr.push(t);
            self.left -= 1;
        }
    }

    /// Hands the collected address (if any, or always with `force`) to the callback and
    /// moves it to the output, followed by a comma if asked.
    fn flush(&mut self, comma: bool, force: bool) -> Result<(), ListError<E>> {
        if self.addr.is_empty() && !force {
            return Ok(());
        }
        (self.each)(&mut self.addr).map_err(ListError::Callback)?;
        self.out.append(&mut self.addr);
        if comma {
            self.out.push(Token::punct(Kind::Comma));
        }
        Ok(())
    }

    /// `group: a, b;` seen from its colon: the group name goes out unchanged.
    fn group_start(&mut self) -> Result<(), ListError<E>> {
        self.flush(false, false)?;
        if !self.in_group {
            return Err(ListError::Syntax);
        }
        self.in_group = false;
        while self.current().is_some_and(|t| t.kind != Kind::Comma) {
            self.keep();
        }
        self.keep();
        self.word_ok = true;
        Ok(())
    }

    /// `phrase <route-addr>` seen from its `>`.
    fn angle(&mut self) -> Result<(), ListError<E>> {
        self.flush(true, false)?;
        self.keep();
        while self.current().is_some_and(|t| t.kind != Kind::Left) {
            self.take();
        }
        // The address is used even when empty: <>.
        self.flush(false, true)?;
        if self.current().is_none() {
            return Err(ListError::Syntax);
        }
        self.keep();
        let phrase = |t: &Token| {
            matches!(
                t.kind,
                Kind::Comment | Kind::Atom | Kind::Quote | Kind::At | Kind::Dot
            )
        };
        while self.current().is_some_and(phrase) {
            self.keep();
        }
        self.word_ok = false;
        Ok(())
    }

    fn step(&mut self, kind: Kind) -> Result<(), ListError<E>> {
        match kind {
            Kind::Semi => {
                self.flush(true, false)?;
                if self.in_group {
                    return Err(ListError::Syntax);
                }
                self.in_group = true;
                self.word_ok = true;
                self.keep();
            }
            Kind::Colon => self.group_start()?,
            Kind::Right => self.angle()?,
            Kind::Atom | Kind::Quote | Kind::Literal => {
                if !self.word_ok {
                    self.flush(true, false)?;
                }
                self.word_ok = false;
                self.take();
            }
            // A comment is lexically a space: it does not change word_ok.
            Kind::Comment => self.keep(),
            Kind::Comma => {
                self.flush(false, false)?;
                self.word_ok = true;
                self.keep();
            }
            Kind::At | Kind::Dot | Kind::Left => {
                self.word_ok = true;
                self.take();
            }
        }
        Ok(())
    }
}

/// Walks the address list after the first two tokens (a field name and its colon) from
/// right to left. Each address is handed to `each` with its tokens in reverse order; what
/// `each` leaves is put back in place. Returns the rewritten tokens.
pub fn addrlist<E>(
    tokens: &[Token],
    each: impl FnMut(&mut Vec<Token>) -> Result<(), E>,
) -> Result<Vec<Token>, ListError<E>> {
    let mut w = Walk {
        tokens,
        begin: tokens.len().min(2),
        left: tokens.len(),
        out: Vec::new(),
        addr: Vec::new(),
        in_group: false,
        word_ok: true,
        each,
    };
    while let Some(kind) = w.current().map(|t| t.kind) {
        w.step(kind)?;
    }
    w.flush(false, false)?;
    let mut out = w.out;
    out.extend(tokens.iter().take(w.left).rev().cloned());
    out.reverse();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inject::token::{parse, unparse};

    /// Rewrites every address to `[n]` where n counts the addresses from the right.
    fn numbered(field: &str) -> Result<String, ListError<()>> {
        let mut n = 0;
        let out = addrlist(&parse(field.as_bytes()).unwrap(), |a| {
            n += 1;
            *a = vec![Token::word(Kind::Atom, format!("{n}").as_bytes())];
            Ok(())
        })?;
        Ok(String::from_utf8_lossy(&unparse(&out, 0))
            .trim_end()
            .to_string())
    }

    #[test]
    fn addresses_are_found_right_to_left() {
        for (field, want) in [
            ("To: a, b", "To: 2, 1"),
            ("To: a b c", "To: 3, 2, 1"),
            ("To: Name <a@b>, c", "To: Name <2>, 1"),
            ("To: <>", "To: <1>"),
            ("To: g: a, b;, c", "To: g: 3, 2;, 1"),
            ("To: g: ;", "To: g: ;"),
            ("To: (x) a", "To: 1 (x)"),
            ("To: a.b@c.d (x), e", "To: 2 (x), 1"),
            ("To:", "To:"),
            ("To", "To"),
        ] {
            assert_eq!(numbered(field), Ok(want.to_string()), "{field:?}");
        }
        for bad in ["To: a: b", "To: a>", "To: g: a;;", "To: g: a; h: b;;"] {
            assert_eq!(numbered(bad), Err(ListError::Syntax), "{bad:?}");
        }
    }
}
