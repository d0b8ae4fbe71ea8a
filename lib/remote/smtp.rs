//! One SMTP session with one server, as s/qmail's qmail-remote runs it: greeting, EHLO
//! (HELO when refused), STARTTLS, AUTH, MAIL, RCPT for each recipient, DATA and the
//! message. Replies are parsed by [`super::reply`]; this module only drives the dialogue
//! and chooses the reports.

use super::auth::{self, Mechanism};
use super::conn::{Conn, LineError, Stream};
use super::reply::{Extensions, Parser, Reply};
use super::tls::{self, Trouble};
use super::{Ctx, Outcome, Stop, TlsCtx, safe};

/// A session on an open connection.
pub struct Session<'a> {
    ctx: &'a Ctx,
    tls: &'a TlsCtx,
    ip: String,
    conn: Option<Conn>,
    critical: bool,
    tls_failed_plain_ok: bool,
    /// The per-recipient records written so far.
    pub out: &'a mut Vec<u8>,
}

type Step<T> = Result<T, Outcome>;

/// Most recipients sent in one pipelined write. Their replies (some 50 bytes each) then
/// always fit in the socket buffers, so the server can never block writing them while
/// this side still blocks writing commands.
const PIPELINE_RCPTS: usize = 100;

impl<'a> Session<'a> {
    /// A session with `ip` on `conn`; `plain_ok` says whether a failed opportunistic
    /// handshake may be retried without TLS.
    pub fn new(
        ctx: &'a Ctx,
        tls: &'a TlsCtx,
        ip: String,
        conn: Conn,
        out: &'a mut Vec<u8>,
    ) -> Self {
        let plain_ok = !tls.mandatory;
        Session {
            ctx,
            tls,
            ip,
            conn: Some(conn),
            critical: false,
            tls_failed_plain_ok: plain_ok,
            out,
        }
    }

    fn conn(&mut self) -> Step<&mut Conn> {
        match &mut self.conn {
            Some(c) => Ok(c),
            None => Err(Outcome::Done(dropped(&self.ip, self.critical))),
        }
    }

    fn dropped(&self) -> Stop {
        dropped(&self.ip, self.critical)
    }

    fn malformed(&self) -> Stop {
        let dup = if self.critical {
            "Possible duplicate! "
        } else {
            ""
        };
        Stop::new(
            b'Z',
            format!(
                "Connected to {} but its SMTP reply was malformed. {dup}(#4.4.2)\n",
                self.ip
            ),
        )
    }

    /// qmail's quit(): `prepend ip append.` and the remote text.
    fn quit(&mut self, letter: u8, prepend: &str, append: &str, r: Option<&Reply>) -> Outcome {
        Outcome::Done(self.quit_stop(letter, prepend, append, r))
    }

    fn quit_stop(&mut self, letter: u8, prepend: &str, append: &str, r: Option<&Reply>) -> Stop {
        if let Some(c) = self.conn.as_mut() {
            let _ = c.send(b"QUIT\r\n");
            c.close();
        }
        let mut text = format!("{prepend}{}{append}.\n", self.ip).into_bytes();
        if let Some(r) = r {
            said(&mut text, r);
        }
        Stop { letter, text }
    }

    fn reply(&mut self) -> Step<Reply> {
        let mut p = Parser::new();
        loop {
            let line = match self.conn()?.line() {
                Ok(l) => l,
                Err(LineError::Dropped) => return Err(Outcome::Done(self.dropped())),
                Err(LineError::TooLong) => return Err(Outcome::Done(self.malformed())),
            };
            match p.line(&line) {
                Ok(Some(r)) => return Ok(r),
                Ok(None) => {}
                Err(_) => return Err(Outcome::Done(self.malformed())),
            }
        }
    }

    fn cmd(&mut self, line: &[u8]) -> Step<Reply> {
        let mut l = line.to_vec();
        l.extend_from_slice(b"\r\n");
        if self.conn()?.send(&l).is_err() {
            return Err(Outcome::Done(self.dropped()));
        }
        self.reply()
    }

    fn tls_stop(&self, t: &Trouble) -> Outcome {
        Outcome::Done(Stop::new(
            b'Z',
            tls_text(t, &self.ctx.host_safe(), &self.tls.fingerprint_text),
        ))
    }

    /// Runs the TLS handshake on the plain connection.
    fn start_tls(&mut self) -> Step<()> {
        let Some(tcp) = self.conn.take().and_then(Conn::into_plain) else {
            return Err(Outcome::Done(self.dropped()));
        };
        match tls::handshake(&self.tls.setup, tcp) {
            Ok(s) => {
                self.conn = Some(Conn::new(Stream::Tls(Box::new(s))));
                Ok(())
            }
            Err(t) if self.tls_failed_plain_ok && matches!(t, Trouble::Handshake) => {
                Err(Outcome::RetryPlain)
            }
            Err(t) => Err(self.tls_stop(&t)),
        }
    }

    /// The whole dialogue; returns how it ended.
    pub fn run(mut self) -> Outcome {
        match self.dialogue() {
            Ok(o) | Err(o) => o,
        }
    }

    fn greeting(&mut self) -> Step<()> {
        if self.ctx.implicit_tls {
            self.start_tls()?;
        }
        let r = self.reply()?;
        if r.code >= 500 {
            let s = self.quit_stop(b'D', "Connected to ", " but sender was rejected", Some(&r));
            return Err(Outcome::NextMx(Some(s)));
        }
        if r.code == 421 || r.code == 450 {
            return Err(self.quit(b'Z', "Connected to ", " but greylisted", Some(&r)));
        }
        if r.code >= 400 {
            let s = self.quit_stop(b'Z', "Connected to ", " but greeting failed", Some(&r));
            return Err(Outcome::NextMx(Some(s)));
        }
        if r.code != 220 {
            return Err(self.quit(b'Z', "Connected to ", " but greeting failed", Some(&r)));
        }
        Ok(())
    }

    fn ehlo(&mut self) -> Step<Extensions> {
        let mut line = b"EHLO ".to_vec();
        line.extend_from_slice(&self.ctx.helo);
        let r = self.cmd(&line)?;
        if r.code == 250 {
            return Ok(Extensions::parse(&r));
        }
        line.splice(..4, *b"HELO");
        let r = self.cmd(&line)?;
        if r.code >= 500 {
            return Err(self.quit(b'D', "Connected to ", " but my name was rejected", Some(&r)));
        }
        if r.code != 250 {
            return Err(self.quit(b'Z', "Connected to ", " but my name was rejected", Some(&r)));
        }
        Ok(Extensions::default())
    }

    fn starttls(&mut self, ext: Extensions) -> Step<Extensions> {
        let t = self.tls;
        if self.conn()?.is_tls() || !t.wanted {
            return Ok(ext);
        }
        if !ext.starttls {
            if t.mandatory {
                let h = self.ctx.host_safe();
                return Err(Outcome::Done(Stop::new(
                    b'Z',
                    format!(" I wasn't able to negotiate a TLS connection with: {h}. (#4.4.1)\n"),
                )));
            }
            return Ok(ext);
        }
        let r = self.cmd(b"STARTTLS")?;
        if r.code != 220 {
            if self.tls.mandatory {
                return Err(self.quit(
                    b'Z',
                    "Connected to ",
                    " but STARTTLS was rejected",
                    Some(&r),
                ));
            }
            return Ok(ext);
        }
        self.start_tls()?;
        self.ehlo()
    }

    fn auth(&mut self, ext: &Extensions) -> Step<Option<Vec<u8>>> {
        let Some((user, pass)) = self.ctx.creds.clone() else {
            return Ok(None);
        };
        if !self.conn()?.is_tls() && !self.ctx.auth_cleartext {
            return Err(Outcome::Done(Stop::new(
                b'Z',
                format!(
                    "Connected to {} but I will not send AUTH credentials without TLS. (#4.7.0)\n",
                    self.ip
                ),
            )));
        }
        let Some(m) = auth::choose(&ext.auth) else {
            return Ok(None);
        };
        let r = self.cmd(format!("AUTH {}", m.name()).as_bytes())?;
        let first = format!(" but authentication was rejected (AUTH {})", m.name());
        if r.code != 334 {
            return Err(self.quit(b'Z', "Connected to ", &first, Some(&r)));
        }
        let r = match m {
            Mechanism::Plain => self.cmd(&auth::plain(&self.ctx.sender, &user, &pass))?,
            Mechanism::Login => {
                let r = self.cmd(&auth::b64(&user))?;
                if r.code != 334 {
                    return Err(self.quit(
                        b'Z',
                        "Connected to ",
                        " but authentication was rejected (username)",
                        Some(&r),
                    ));
                }
                self.cmd(&auth::b64(&pass))?
            }
            Mechanism::CramMd5 => {
                let challenge = r.lines.first().cloned().unwrap_or_default();
                let Some(resp) = auth::cram(&user, &pass, &challenge) else {
                    return Err(self.quit(
                        b'Z',
                        "Connected to ",
                        " but unable to base64decode challenge",
                        Some(&r),
                    ));
                };
                self.cmd(&resp)?
            }
        };
        match r.code {
            235 => Ok(Some(auth::xtext(&user))),
            432 => Err(self.quit(b'D', "Connected to ", " but password expired", Some(&r))),
            534 => Err(self.quit(
                b'Z',
                "Connected to ",
                &format!(" but authentication mechanism too weak ({})", m.short()),
                Some(&r),
            )),
            _ => Err(self.quit(
                b'Z',
                "Connected to ",
                &format!(" but authentication was rejected ({})", m.short()),
                Some(&r),
            )),
        }
    }

    /// The MAIL command for this message, with the parameters the server offered.
    fn mail_line(&mut self, ext: &Extensions, auth_as: Option<Vec<u8>>) -> Step<Vec<u8>> {
        let c = self.ctx;
        if c.needs_utf8 && !ext.smtputf8 {
            return Err(self.quit(
                b'D',
                "Connected to ",
                " but it does not support SMTPUTF8, which this message needs (#5.6.7)",
                None,
            ));
        }
        let mut line = b"MAIL FROM:<".to_vec();
        line.extend_from_slice(&c.sender);
        line.push(b'>');
        if let Some(a) = auth_as {
            line.extend_from_slice(b" AUTH=");
            line.extend_from_slice(&a);
        }
        if ext.size {
            line.extend_from_slice(format!(" SIZE={}", c.data.len()).as_bytes());
        }
        if ext.eightbit && c.eightbit {
            line.extend_from_slice(b" BODY=8BITMIME");
        }
        if c.needs_utf8 {
            line.extend_from_slice(b" SMTPUTF8");
        }
        Ok(line)
    }

    fn mail_verdict(&mut self, r: &Reply) -> Step<()> {
        if r.code >= 500 {
            return Err(self.quit(b'D', "Connected to ", " but sender was rejected", Some(r)));
        }
        if r.code >= 400 {
            return Err(self.quit(b'Z', "Connected to ", " but sender was greylisted", Some(r)));
        }
        Ok(())
    }

    fn rcpt_line(rcpt: &[u8]) -> Vec<u8> {
        let mut line = b"RCPT TO:<".to_vec();
        line.extend_from_slice(rcpt);
        line.push(b'>');
        line
    }

    /// Records one recipient's result for qmail-rspawn; true when it was accepted.
    fn rcpt_verdict(&mut self, r: &Reply) -> bool {
        let (letter, why) = match r.code {
            500.. => (b'h', "does not like recipient"),
            421 | 450 => (b's', "probably greylisting"),
            400..=499 => (b's', "does not like recipient"),
            _ => {
                self.out.extend_from_slice(b"r\0");
                return true;
            }
        };
        self.out.push(letter);
        let mut text = format!("{} {why}.\n", self.ip).into_bytes();
        said(&mut text, r);
        self.out.extend_from_slice(&text);
        self.out.push(0);
        false
    }

    fn data_verdict(&mut self, r: &Reply) -> Step<()> {
        if r.code >= 500 {
            return Err(self.quit(b'D', "", " failed on DATA command", Some(r)));
        }
        if r.code == 451 {
            return Err(self.quit(b'Z', "", " message was greylisted", Some(r)));
        }
        if r.code >= 400 {
            return Err(self.quit(b'Z', "", " failed on DATA command", Some(r)));
        }
        Ok(())
    }

    /// MAIL, RCPT and DATA one at a time, each waiting for its reply.
    fn envelope_lockstep(&mut self, mail: &[u8]) -> Step<()> {
        let r = self.cmd(mail)?;
        self.mail_verdict(&r)?;
        let mut any = false;
        let ctx = self.ctx;
        for rcpt in &ctx.recips {
            let r = self.cmd(&Self::rcpt_line(rcpt))?;
            any |= self.rcpt_verdict(&r);
        }
        if !any {
            return Err(self.quit(b'D', "Giving up on ", "", None));
        }
        let r = self.cmd(b"DATA")?;
        self.data_verdict(&r)
    }

    /// MAIL, every RCPT and DATA in one write (RFC 2920), then their replies in order.
    /// The replies are judged exactly as one at a time; a server that answers DATA with
    /// 354 although it took no recipient gets an empty message ended at once.
    fn envelope_pipelined(&mut self, mail: &[u8]) -> Step<()> {
        let mut batch = mail.to_vec();
        batch.extend_from_slice(b"\r\n");
        for rcpt in &self.ctx.recips {
            batch.extend_from_slice(&Self::rcpt_line(rcpt));
            batch.extend_from_slice(b"\r\n");
        }
        batch.extend_from_slice(b"DATA\r\n");
        if self.conn()?.send(&batch).is_err() {
            return Err(Outcome::Done(self.dropped()));
        }
        let r = self.reply()?;
        self.mail_verdict(&r)?;
        let mut any = false;
        for _ in 0..self.ctx.recips.len() {
            let r = self.reply()?;
            any |= self.rcpt_verdict(&r);
        }
        let r = self.reply()?;
        if !any {
            // No recipient took it: whatever becomes of the empty message, the report is
            // the recipients' own, as when sent one at a time.
            if r.code == 354 && self.conn()?.send(b".\r\n").is_ok() {
                let _ = self.reply();
            }
            return Err(self.quit(b'D', "Giving up on ", "", None));
        }
        self.data_verdict(&r)
    }

    fn dialogue(&mut self) -> Step<Outcome> {
        self.greeting()?;
        let ext = self.ehlo()?;
        let ext = self.starttls(ext)?;
        let auth_as = self.auth(&ext)?;
        let mail = self.mail_line(&ext, auth_as)?;
        if ext.pipelining && self.ctx.recips.len() <= PIPELINE_RCPTS {
            self.envelope_pipelined(&mail)?;
        } else {
            self.envelope_lockstep(&mail)?;
        }
        let data = &self.ctx.data;
        let (body, end) = data.split_at(data.len().saturating_sub(3));
        if self.conn()?.send(body).is_err() {
            return Err(Outcome::Done(self.dropped()));
        }
        self.critical = true;
        if self.conn()?.send(end).is_err() {
            return Err(Outcome::Done(self.dropped()));
        }
        let r = self.reply()?;
        self.critical = false;
        if r.code >= 500 {
            return Ok(self.quit(b'D', "", " failed after I sent the message", Some(&r)));
        }
        if r.code >= 400 {
            return Ok(self.quit(b'Z', "", " failed after I sent the message", Some(&r)));
        }
        let how = if self.conn()?.is_tls() {
            " TLS transmitted message accepted"
        } else {
            " accepted message"
        };
        Ok(self.quit(b'K', "", how, Some(&r)))
    }
}

/// qmail's dropped(): the connection died (after the message was sent: a possible
/// duplicate).
pub fn dropped(ip: &str, critical: bool) -> Stop {
    let dup = if critical { "Possible duplicate! " } else { "" };
    Stop::new(
        b'Z',
        format!("Connected to {ip} but connection died. {dup}(#4.4.2)\n"),
    )
}

/// Appends qmail's `Remote host said: ` and the reply, NULs made `?`.
pub fn said(text: &mut Vec<u8>, r: &Reply) {
    if r.text.is_empty() {
        return;
    }
    text.extend_from_slice(b"Remote host said: ");
    text.extend(r.text.iter().map(|&b| if b == 0 { b'?' } else { b }));
}

/// s/qmail's texts for TLS trouble (without the letter).
pub fn tls_text(t: &Trouble, host: &str, fingerprint: &str) -> String {
    let p = |f: &std::path::Path| safe(f.display().to_string().as_bytes());
    match t {
        Trouble::Cert(f) => format!(" Can't load X.509 certificate: {}. (#4.4.1)\n", p(f)),
        Trouble::Key(f) => format!(" Can't load X.509 private key: {}. (#4.4.1)\n", p(f)),
        Trouble::KeyMismatch(f) => {
            format!(
                " Keyfile does not match X.509 certificate: {}. (#4.4.1)\n",
                p(f)
            )
        }
        Trouble::Ca(file, dir) => format!(
            " I wasn't able to set up CAFILE: {} or CADIR: {} for TLS. (#4.4.1)\n",
            safe(file.as_bytes()),
            safe(dir.as_bytes())
        ),
        Trouble::Context => format!(" I wasn't able to create TLS context for: {host}. (#4.4.1)\n"),
        Trouble::Handshake => {
            format!(" TLS connection/protocol error for host: {host}. (#4.4.1)\n")
        }
        Trouble::Verify => format!(" Unable to verify X.500 certificate from: {host}. (#4.4.1)\n"),
        Trouble::Name => {
            format!(" Unable to validate X.500 certificate Subject for: {host}. (#4.4.1)\n")
        }
        Trouble::Fingerprint => format!(
            " Received X.509 certificate from: {host} does not match fingerprint: {}. (#4.4.1)\n",
            safe(fingerprint.as_bytes())
        ),
        Trouble::Digest => format!(" Invalid digest length provided for: {host}. (#4.4.1)\n"),
        Trouble::Dane => {
            format!(" No TLSA record matches the X.509 certificate from: {host}. (#4.7.5)\n")
        }
    }
}
