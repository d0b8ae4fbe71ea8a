//! RFC 822 tokens as qmail's token822 sees them: splitting a header field into atoms,
//! quoted strings, domain literals, comments and punctuation, and writing tokens back with
//! qmail's folding at commas. [`super::list`] walks the address lists.
//!
//! Every quirk is qmail's: nested parentheses vanish from comment text, and an atom
//! holding a control, 8-bit, `)`, `]` or `\` byte becomes a quoted string.

/// What a token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `@`
    At,
    /// A run of atom characters.
    Atom,
    /// `:`
    Colon,
    /// `,`
    Comma,
    /// A parenthesised comment, without its parentheses.
    Comment,
    /// `.`
    Dot,
    /// `<`
    Left,
    /// A domain literal, without its brackets.
    Literal,
    /// A quoted string, without its quotes.
    Quote,
    /// `>`
    Right,
    /// `;`
    Semi,
}

/// One token: its kind and, for words and comments, its text with escapes removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// What the token is.
    pub kind: Kind,
    /// The text of an atom, quoted string, literal or comment; empty for punctuation.
    pub text: Vec<u8>,
}

impl Token {
    /// A punctuation token.
    pub fn punct(kind: Kind) -> Token {
        Token {
            kind,
            text: Vec::new(),
        }
    }

    /// A word or comment token.
    pub fn word(kind: Kind, text: &[u8]) -> Token {
        Token {
            kind,
            text: text.to_vec(),
        }
    }
}

fn atom_ok(c: u8) -> bool {
    !matches!(
        c,
        b' ' | b'\t'
            | b'\r'
            | b'\n'
            | b'('
            | b'['
            | b'"'
            | b'<'
            | b'>'
            | b';'
            | b':'
            | b'@'
            | b','
            | b'.'
    )
}

/// Reads the body of a comment, quoted string or literal starting after its opening byte
/// at `i`; returns the text and the index after the closing byte, or `None` when it is not
/// closed.
fn delimited(s: &[u8], mut i: usize, close: u8, nests: bool) -> Option<(Vec<u8>, usize)> {
    let mut text = Vec::new();
    let mut level = 1u32;
    loop {
        let c = *s.get(i)?;
        i += 1;
        match c {
            b'(' if nests => level += 1,
            b'\\' => {
                text.push(*s.get(i)?);
                i += 1;
            }
            c if c == close => {
                level -= 1;
                if level == 0 {
                    return Some((text, i));
                }
            }
            c => text.push(c),
        }
    }
}

/// Splits `s` into tokens; `None` when qmail's token822_parse refuses it (a stray `)` or
/// `]`, or an unclosed comment, quoted string or literal).
pub fn parse(s: &[u8]) -> Option<Vec<Token>> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = s.get(i) {
        let punct = match c {
            b'.' => Some(Kind::Dot),
            b',' => Some(Kind::Comma),
            b'@' => Some(Kind::At),
            b'<' => Some(Kind::Left),
            b'>' => Some(Kind::Right),
            b':' => Some(Kind::Colon),
            b';' => Some(Kind::Semi),
            _ => None,
        };
        if let Some(kind) = punct {
            out.push(Token::punct(kind));
            i += 1;
            continue;
        }
        let (kind, close, nests) = match c {
            b' ' | b'\t' | b'\r' | b'\n' => {
                i += 1;
                continue;
            }
            b')' | b']' => return None,
            b'(' => (Kind::Comment, b')', true),
            b'"' => (Kind::Quote, b'"', false),
            b'[' => (Kind::Literal, b']', false),
            _ => {
                let (t, next) = atom(s, i);
                out.push(t);
                i = next;
                continue;
            }
        };
        let (text, next) = delimited(s, i + 1, close, nests)?;
        out.push(Token { kind, text });
        i = next;
    }
    Some(out)
}

fn atom(s: &[u8], mut i: usize) -> (Token, usize) {
    let mut text = Vec::new();
    while let Some(&c) = s.get(i) {
        let c = if c == b'\\' {
            i += 1;
            match s.get(i) {
                Some(&e) => e,
                None => break,
            }
        } else {
            c
        };
        text.push(c);
        i += 1;
        if !s.get(i).is_some_and(|&n| atom_ok(n)) {
            break;
        }
    }
    let quote = text
        .iter()
        .any(|&c| !(32..=126).contains(&c) || matches!(c, b')' | b']' | b'\\'));
    (
        Token {
            kind: if quote { Kind::Quote } else { Kind::Atom },
            text,
        },
        i,
    )
}

fn needs_space(last: Option<Kind>, next: &Token) -> bool {
    let Some(last) = last else { return false };
    if matches!(last, Kind::Colon | Kind::Comma) || next.kind == Kind::Left {
        return true;
    }
    let word = |k| matches!(k, Kind::Atom | Kind::Literal | Kind::Quote | Kind::Comment);
    word(last) && word(next.kind)
}

/// Where the last line of the output starts and where its tentative break sits.
struct Fold {
    line_start: usize,
    brk: Option<usize>,
}

impl Fold {
    /// qmail's break rule, applied at every comma and at the end: put a tentative `\n `
    /// here, and drop the previous one if the line it would join still fits.
    fn mark(&mut self, out: &mut Vec<u8>, width: usize) {
        let fits = width == 0 || out.len().saturating_sub(self.line_start) <= width;
        match self.brk {
            Some(b) if fits => {
                out.extend_from_slice(b"\n ");
                out.drain(b..b + 2);
                self.brk = Some(out.len() - 2);
            }
            _ => {
                if let Some(b) = self.brk {
                    self.line_start = b + 1;
                }
                self.brk = Some(out.len());
                out.extend_from_slice(b"\n ");
            }
        }
    }
}

/// Writes tokens back as header text ending in a newline, folding after commas so that
/// lines stay within `width` bytes where qmail's rule can (0: never fold).
pub fn unparse(tokens: &[Token], width: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut fold = Fold {
        line_start: 0,
        brk: None,
    };
    let mut last = None;
    for t in tokens {
        if needs_space(last, t) {
            out.push(b' ');
        }
        last = Some(t.kind);
        match t.kind {
            Kind::Comma => {
                out.push(b',');
                fold.mark(&mut out, width);
            }
            Kind::At => out.push(b'@'),
            Kind::Dot => out.push(b'.'),
            Kind::Left => out.push(b'<'),
            Kind::Right => out.push(b'>'),
            Kind::Semi => out.push(b';'),
            Kind::Colon => out.push(b':'),
            Kind::Atom | Kind::Quote | Kind::Literal | Kind::Comment => {
                let (open, close) = match t.kind {
                    Kind::Quote => (Some(b'"'), Some(b'"')),
                    Kind::Literal => (Some(b'['), Some(b']')),
                    Kind::Comment => (Some(b'('), Some(b')')),
                    _ => (None, None),
                };
                out.extend(open);
                for &c in &t.text {
                    if matches!(c, b'"' | b'[' | b']' | b'(' | b')' | b'\\' | b'\r' | b'\n') {
                        out.push(b'\\');
                    }
                    out.push(c);
                }
                out.extend(close);
            }
        }
    }
    fold.mark(&mut out, width);
    out.pop();
    out
}

/// The plain text of tokens, as an envelope address: words without quoting, literals in
/// brackets, comments dropped.
pub fn unquote(tokens: &[Token]) -> Vec<u8> {
    let mut out = Vec::new();
    for t in tokens {
        match t.kind {
            Kind::Comma => out.push(b','),
            Kind::At => out.push(b'@'),
            Kind::Dot => out.push(b'.'),
            Kind::Left => out.push(b'<'),
            Kind::Right => out.push(b'>'),
            Kind::Semi => out.push(b';'),
            Kind::Colon => out.push(b':'),
            Kind::Literal => {
                out.push(b'[');
                out.extend_from_slice(&t.text);
                out.push(b']');
            }
            Kind::Atom | Kind::Quote => out.extend_from_slice(&t.text),
            Kind::Comment => {}
        }
    }
    out
}
