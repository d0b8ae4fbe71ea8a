//! qmail-send's state and main loop, after qmail-send.c: priority queues of messages per
//! channel, jobs (one pass over a channel file), deliveries in flight, bounces.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use super::bounce::{self, Bounce};
use super::log::{Log, safe_text};
use super::retry::next_retry;
use super::{Config, verp_sender};
use crate::envelope::ADDR_MAX;
use crate::queue::Layout;
use crate::queue::client::Queue;
use crate::sys;
use crate::sys::proc::{Ready, Signal};

const SLEEP_FUZZ: i64 = 1;
const SLEEP_FOREVER: i64 = 86_400;
const SLEEP_CLEANUP: i64 = 76_431;
const SLEEP_SYSFAIL: i64 = 123;
const OSSIFIED: i64 = 129_600;
const REPORT_MAX: usize = 10_000;
const CHAN_DIR: [&str; 2] = ["local", "remote"];
const CHAN_STATUS: [&str; 2] = [" local ", " remote "];
const TO_CHAN: [&str; 2] = [" to local ", " to remote "];

type Pq = BinaryHeap<Reverse<(i64, u64)>>;

struct Job {
    refs: usize,
    id: u64,
    channel: usize,
    retry: i64,
    sender: Vec<u8>,
    numtodo: usize,
    hiteof: bool,
    dying: bool,
}

struct Del {
    job: usize,
    delid: u64,
    mpos: u64,
    recip: Vec<u8>,
}

struct Pass {
    id: u64,
    job: usize,
    input: BufReader<File>,
    mpos: u64,
}

struct Chan {
    to: File,
    from: File,
    alive: bool,
    out: Vec<u8>,
    dels: Vec<Option<Del>>,
    used: usize,
    dline: Vec<u8>,
    pass: Option<Pass>,
    pq: Pq,
}

struct TodoLink {
    to: File,
    from: File,
    alive: bool,
    told_exit: bool,
    buf: Vec<u8>,
}

/// A running qmail-send.
pub struct Send {
    home: PathBuf,
    layout: Layout,
    cfg: Config,
    log: Log<File>,
    chans: [Chan; 2],
    jobs: Vec<Option<Job>>,
    pqdone: Pq,
    pqfail: Pq,
    masterdelid: u64,
    recent: i64,
    exitasap: bool,
    todo: TodoLink,
    clean_to: File,
    clean_from: File,
    cleanup_list: Vec<u64>,
    cleanup_time: i64,
}

fn fd(n: i32) -> io::Result<File> {
    sys::inherited_fd(n)
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("fd {n} is not open")))
}

fn now() -> i64 {
    crate::date::now()
}

fn mtime(p: &Path) -> io::Result<i64> {
    Ok(std::fs::metadata(p)?.mtime())
}

fn push(pq: &mut Pq, dt: i64, id: u64) {
    pq.push(Reverse((dt, id)));
}

fn peek(pq: &Pq) -> Option<(i64, u64)> {
    pq.peek().map(|r| r.0)
}

impl Send {
    /// Takes the inherited descriptors, reads the spawns' slot counts and the queue.
    /// Runs in the queue directory; `home` is the instance's home.
    pub fn start(home: &Path, cfg: Config) -> io::Result<Send> {
        let layout = Layout::open(home).map_err(|e| io::Error::other(e.to_string()))?;
        let mut chans = Vec::with_capacity(2);
        for c in 0..2 {
            let to = fd(1 + 2 * i32::try_from(c).unwrap_or(0))?;
            let mut from = fd(2 + 2 * i32::try_from(c).unwrap_or(0))?;
            let mut b = [0u8; 1];
            from.read_exact(&mut b)
                .map_err(|_| io::Error::other("hath the daemon spawn no fire?"))?;
            sys::proc::set_nonblocking(&to, true)?;
            let conc = cfg
                .concurrency
                .get(c)
                .copied()
                .unwrap_or(1)
                .min(usize::from(b[0]));
            let mut dels = Vec::with_capacity(conc);
            dels.resize_with(conc, || None);
            chans.push(Chan {
                to,
                from,
                alive: true,
                out: Vec::new(),
                dels,
                used: 0,
                dline: Vec::new(),
                pass: None,
                pq: Pq::new(),
            });
        }
        let numjobs = chans.iter().map(|c| c.dels.len()).sum::<usize>().max(1);
        let mut jobs = Vec::with_capacity(numjobs);
        jobs.resize_with(numjobs, || None);
        let [local, remote]: [Chan; 2] =
            chans.try_into().map_err(|_| io::Error::other("channels"))?;
        let todo = TodoLink {
            to: fd(7)?,
            from: fd(8)?,
            alive: true,
            told_exit: false,
            buf: Vec::new(),
        };
        let (clean_to, clean_from) = (fd(5)?, fd(6)?);
        // The log is taken last, so that a failure above can still be reported on it.
        let log = Log::new(fd(0)?);
        let mut s = Send {
            home: home.to_path_buf(),
            layout,
            cfg,
            log,
            chans: [local, remote],
            jobs,
            pqdone: Pq::new(),
            pqfail: Pq::new(),
            masterdelid: 1,
            recent: now(),
            exitasap: false,
            todo,
            clean_to,
            clean_from,
            cleanup_list: Vec::new(),
            cleanup_time: now(),
        };
        s.pqstart();
        s.del_status();
        Ok(s)
    }

    fn logl(&mut self, pieces: &[&[u8]]) {
        self.log.line(pieces);
    }

    fn rel(&self, dir: &str, id: u64) -> PathBuf {
        self.layout.rel(dir, id)
    }

    // ------------------------------------------------------------------ queue scan

    fn pqadd(&mut self, id: u64) {
        let info = self.rel("info", id);
        match std::fs::metadata(&info) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return,
            Err(_) => return self.pqfail_add(&info, id),
        }
        let todo = self.rel("todo", id);
        match std::fs::metadata(&todo) {
            Ok(_) => return,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(_) => return self.pqfail_add(&todo, id),
        }
        let mut found = [None, None];
        for (c, slot) in found.iter_mut().enumerate() {
            let p = self.rel(CHAN_DIR[c], id);
            match mtime(&p) {
                Ok(t) => *slot = Some(t),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(_) => return self.pqfail_add(&p, id),
            }
        }
        for (c, t) in found.iter().enumerate() {
            if let Some(t) = t {
                push(&mut self.chans[c].pq, *t, id);
            }
        }
        if found.iter().all(Option::is_none) {
            push(&mut self.pqdone, now(), id);
        }
    }

    fn pqfail_add(&mut self, p: &Path, id: u64) {
        let msg = format!(
            "warning: unable to stat {}; will try again later\n",
            p.display()
        );
        self.logl(&[msg.as_bytes()]);
        push(&mut self.pqfail, now() + SLEEP_SYSFAIL, id);
    }

    fn pqstart(&mut self) {
        let mut ids = Vec::new();
        for n in 0..self.layout.split {
            let Ok(dir) = std::fs::read_dir(format!("info/{n}")) else {
                self.logl(
                    &[format!("alert: unable to opendir info/{n}, sleeping...\n").as_bytes()],
                );
                std::thread::sleep(Duration::from_secs(10));
                continue;
            };
            for e in dir.flatten() {
                if let Some(id) = e.file_name().to_str().and_then(|s| s.parse::<u64>().ok()) {
                    ids.push(id);
                }
            }
        }
        for id in ids {
            self.pqadd(id);
        }
    }

    fn pqfinish(&mut self) {
        #[allow(clippy::needless_range_loop)]
        for c in 0..2 {
            while let Some(Reverse((dt, id))) = self.chans[c].pq.pop() {
                let p = self.rel(CHAN_DIR[c], id);
                let t = UNIX_EPOCH + Duration::from_secs(u64::try_from(dt).unwrap_or(0));
                let ok = File::options()
                    .write(true)
                    .open(&p)
                    .and_then(|f| f.set_modified(t))
                    .is_ok();
                if !ok {
                    let msg = format!(
                        "warning: unable to utime {}; message will be retried too soon\n",
                        p.display()
                    );
                    self.logl(&[msg.as_bytes()]);
                }
            }
        }
    }

    fn pqrun(&mut self) {
        let recent = self.recent;
        for c in &mut self.chans {
            let all: Vec<u64> = c.pq.drain().map(|r| r.0.1).collect();
            for id in all {
                push(&mut c.pq, recent, id);
            }
        }
    }

    // ------------------------------------------------------------------ jobs

    fn job_avail(&self) -> bool {
        self.jobs.iter().any(Option::is_none)
    }

    fn job_open(
        &mut self,
        id: u64,
        channel: usize,
        retry: i64,
        dying: bool,
        sender: Vec<u8>,
    ) -> Option<usize> {
        let j = self.jobs.iter().position(Option::is_none)?;
        self.jobs[j] = Some(Job {
            refs: 1,
            id,
            channel,
            retry,
            sender,
            numtodo: 0,
            hiteof: false,
            dying,
        });
        Some(j)
    }

    fn job_close(&mut self, j: usize) {
        let Some(job) = self.jobs.get_mut(j).and_then(Option::as_mut) else {
            return;
        };
        job.refs -= 1;
        if job.refs > 0 {
            return;
        }
        let Some(job) = self.jobs.get_mut(j).and_then(Option::take) else {
            return;
        };
        let mut dt = job.retry;
        if job.hiteof && job.numtodo == 0 {
            let p = self.rel(CHAN_DIR[job.channel], job.id);
            if std::fs::remove_file(&p).is_err() {
                let msg = format!(
                    "warning: unable to unlink {}; will try again later\n",
                    p.display()
                );
                self.logl(&[msg.as_bytes()]);
                dt = now() + SLEEP_SYSFAIL;
            } else {
                let other = self.rel(CHAN_DIR[1 - job.channel], job.id);
                match std::fs::metadata(&other) {
                    Ok(_) => return,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(_) => {
                        let msg = format!("warning: unable to stat {}\n", other.display());
                        self.logl(&[msg.as_bytes()]);
                    }
                }
                push(&mut self.pqdone, now(), job.id);
                return;
            }
        }
        push(&mut self.chans[job.channel].pq, dt, job.id);
    }

    // ------------------------------------------------------------------ deliveries

    fn del_status(&mut self) {
        let mut l = b"status:".to_vec();
        for (c, ch) in self.chans.iter().enumerate() {
            l.extend_from_slice(
                format!("{}{}/{}", CHAN_STATUS[c], ch.used, ch.dels.len()).as_bytes(),
            );
        }
        if self.exitasap {
            l.extend_from_slice(b" exitasap");
        }
        l.push(b'\n');
        self.logl(&[&l]);
    }

    fn del_canexit(&self) -> bool {
        self.chans.iter().all(|c| !c.alive || c.used == 0)
    }

    fn del_avail(&self, c: usize) -> bool {
        let ch = &self.chans[c];
        ch.alive && ch.out.is_empty() && ch.used < ch.dels.len()
    }

    fn del_start(&mut self, j: usize, mpos: u64, recip: &[u8]) {
        let Some(job) = self.jobs.get(j).and_then(Option::as_ref) else {
            return;
        };
        let (c, id) = (job.channel, job.id);
        let request = {
            let mut r = Vec::with_capacity(64 + recip.len() + job.sender.len());
            let Some(slot) = self.chans[c].dels.iter().position(Option::is_none) else {
                return;
            };
            r.push(u8::try_from(slot).unwrap_or(0));
            r.extend_from_slice(format!("{}/{id}\0", id % self.layout.split).as_bytes());
            r.extend_from_slice(&verp_sender(&job.sender, recip));
            r.push(0);
            r.extend_from_slice(recip);
            r.push(0);
            (slot, r)
        };
        if !self.del_avail(c) {
            return;
        }
        let (slot, r) = request;
        let delid = self.masterdelid;
        self.masterdelid += 1;
        if let Some(job) = self.jobs.get_mut(j).and_then(Option::as_mut) {
            job.refs += 1;
        }
        let ch = &mut self.chans[c];
        ch.dels[slot] = Some(Del {
            job: j,
            delid,
            mpos,
            recip: recip.to_vec(),
        });
        ch.used += 1;
        ch.out = r;
        self.logl(&[
            format!("starting delivery {delid}: msg {id}{}", TO_CHAN[c]).as_bytes(),
            &safe_text(recip),
            b"\n",
        ]);
        self.del_status();
    }

    fn markdone(&mut self, c: usize, id: u64, pos: u64) {
        let p = self.rel(CHAN_DIR[c], id);
        let ok = OpenOptions::new()
            .write(true)
            .open(&p)
            .and_then(|mut f| f.seek(SeekFrom::Start(pos)).and_then(|_| f.write_all(b"D")));
        if ok.is_err() {
            let msg = format!(
                "warning: trouble marking {}; message will be delivered twice!\n",
                p.display()
            );
            self.logl(&[msg.as_bytes()]);
        }
    }

    fn addbounce(&mut self, id: u64, recip: &[u8], report: &[u8]) {
        let rw = &self.cfg.rewrite;
        let vdom = |k: &[u8]| rw.virtual_prefix(k).map(<[u8]>::to_vec);
        let text = bounce::paragraph(bounce::strip_virtual(recip, &vdom), report);
        let p = PathBuf::from(format!("bounce/{id}"));
        loop {
            let r = OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o600)
                .open(&p)
                .and_then(|mut f| f.write_all(&text).and_then(|()| f.sync_all()));
            if r.is_ok() {
                return;
            }
            self.logl(&[b"alert: unable to append to bounce message; HELP! sleeping...\n"]);
            std::thread::sleep(Duration::from_secs(10));
        }
    }

    fn report(&mut self, c: usize) {
        let mut line = std::mem::take(&mut self.chans[c].dline);
        let delnum = usize::from(line.first().copied().unwrap_or(0));
        let Some(del) = self.chans[c].dels.get_mut(delnum).and_then(Option::take) else {
            self.logl(&[b"warning: internal error: delivery report out of range\n"]);
            return;
        };
        let (j, delid) = (del.job, del.delid);
        let (jid, dying) = self
            .jobs
            .get(j)
            .and_then(Option::as_ref)
            .map_or((0, false), |jb| (jb.id, jb.dying));
        line.pop(); // the NUL
        if line.get(1) == Some(&b'Z') && dying {
            line[1] = b'D';
            line.extend_from_slice(
                b"I'm not going to try again; this message has been in the queue too long.\n",
            );
        }
        let text: Vec<u8> = line
            .get(2..)
            .unwrap_or_default()
            .iter()
            .copied()
            .take_while(|&b| b != 0)
            .collect();
        let head = format!("delivery {delid}: ");
        match line.get(1) {
            Some(b'K') => {
                self.logl(&[head.as_bytes(), b"success: ", &safe_text(&text), b"\n"]);
                self.markdone(c, jid, del.mpos);
                self.done_one(j);
            }
            Some(b'Z') => self.logl(&[head.as_bytes(), b"deferral: ", &safe_text(&text), b"\n"]),
            Some(b'D') => {
                self.logl(&[head.as_bytes(), b"failure: ", &safe_text(&text), b"\n"]);
                self.addbounce(jid, &del.recip, &text);
                self.markdone(c, jid, del.mpos);
                self.done_one(j);
            }
            _ => self.logl(&[head.as_bytes(), b"report mangled, will defer\n"]),
        }
        self.job_close(j);
        self.chans[c].used -= 1;
        self.del_status();
    }

    fn done_one(&mut self, j: usize) {
        if let Some(job) = self.jobs.get_mut(j).and_then(Option::as_mut) {
            job.numtodo = job.numtodo.saturating_sub(1);
        }
    }

    fn del_do(&mut self, c: usize) {
        let mut buf = [0u8; 2048];
        let r = match self.chans[c].from.read(&mut buf) {
            Ok(r) => r,
            Err(_) => return,
        };
        if r == 0 {
            self.logl(&[b"alert: oh no! lost spawn connection! dying...\n"]);
            self.chans[c].alive = false;
            self.exitasap = true;
            return;
        }
        for &b in buf.get(..r).unwrap_or_default() {
            let dl = &mut self.chans[c].dline;
            if dl.len() < REPORT_MAX {
                dl.push(b);
            } else if let Some(last) = dl.last_mut() {
                *last = b;
            }
            // The slot number itself may be a NUL: a report needs at least two bytes.
            if b == 0 && self.chans[c].dline.len() > 1 {
                self.report(c);
            }
        }
    }

    fn comm_do(&mut self, c: usize) {
        let ch = &mut self.chans[c];
        match ch.to.write(&ch.out) {
            Ok(w) => {
                ch.out.drain(..w);
            }
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.logl(&[b"alert: oh no! lost spawn connection! dying...\n"]);
                self.chans[c].alive = false;
                self.exitasap = true;
            }
            Err(_) => {}
        }
    }

    // ------------------------------------------------------------------ passes

    fn pass_wakeup(&self, wakeup: &mut i64) {
        if self.exitasap {
            return;
        }
        for c in 0..2 {
            if self.chans[c].pass.is_some() && self.del_avail(c) {
                *wakeup = 0;
                return;
            }
        }
        if self.job_avail() {
            for c in 0..2 {
                if self.chans[c].pass.is_none()
                    && let Some((dt, _)) = peek(&self.chans[c].pq)
                {
                    *wakeup = (*wakeup).min(dt);
                }
            }
        }
        for pq in [&self.pqfail, &self.pqdone] {
            if let Some((dt, _)) = peek(pq) {
                *wakeup = (*wakeup).min(dt);
            }
        }
    }

    fn getinfo(&self, id: u64) -> Option<(Vec<u8>, i64)> {
        let p = self.rel("info", id);
        let f = File::open(&p).ok()?;
        let birth = f.metadata().ok()?.mtime();
        let mut line = Vec::new();
        BufReader::new(f)
            .take(ADDR_MAX as u64 + 2)
            .read_until(0, &mut line)
            .ok()?;
        if line.first() != Some(&b'F') || line.last() != Some(&0) {
            return None;
        }
        Some((
            line.get(1..line.len() - 1).unwrap_or_default().to_vec(),
            birth,
        ))
    }

    fn pass_chan(&mut self, c: usize) {
        if self.exitasap {
            return;
        }
        if self.chans[c].pass.is_none() {
            if !self.job_avail() {
                return;
            }
            let Some((dt, id)) = peek(&self.chans[c].pq) else {
                return;
            };
            if dt > self.recent {
                return;
            }
            self.chans[c].pq.pop();
            let p = self.rel(CHAN_DIR[c], id);
            let opened = File::open(&p)
                .ok()
                .and_then(|f| self.getinfo(id).map(|i| (f, i)));
            let Some((f, (sender, birth))) = opened else {
                let msg = format!(
                    "warning: trouble opening {}; will try again later\n",
                    p.display()
                );
                self.logl(&[msg.as_bytes()]);
                push(&mut self.chans[c].pq, self.recent + SLEEP_SYSFAIL, id);
                return;
            };
            let retry = next_retry(birth, self.recent, c);
            let dying = self.recent > birth.saturating_add(self.cfg.lifetime);
            let Some(j) = self.job_open(id, c, retry, dying, sender) else {
                return;
            };
            self.chans[c].pass = Some(Pass {
                id,
                job: j,
                input: BufReader::new(f),
                mpos: 0,
            });
        }
        if !self.del_avail(c) {
            return;
        }
        let Some(pass) = self.chans[c].pass.as_mut() else {
            return;
        };
        let mut line = Vec::with_capacity(128);
        let read = (&mut pass.input)
            .take(ADDR_MAX as u64 + 2)
            .read_until(0, &mut line);
        let (j, id, mpos) = (pass.job, pass.id, pass.mpos);
        match read {
            Err(_) => {
                let msg = format!(
                    "warning: trouble reading {}; will try again later\n",
                    self.rel(CHAN_DIR[c], id).display()
                );
                self.logl(&[msg.as_bytes()]);
                self.chans[c].pass = None;
                self.job_close(j);
            }
            // A record that fills the whole bound is corrupt, not the end of the file:
            // taking it for the end would drop the recipients after it.
            Ok(n) if n as u64 == ADDR_MAX as u64 + 2 && line.last() != Some(&0) => {
                let msg = format!(
                    "warning: record too long in {}; will try again later\n",
                    self.rel(CHAN_DIR[c], id).display()
                );
                self.logl(&[msg.as_bytes()]);
                self.chans[c].pass = None;
                self.job_close(j);
            }
            Ok(_) if line.last() != Some(&0) => {
                self.chans[c].pass = None;
                if let Some(job) = self.jobs.get_mut(j).and_then(Option::as_mut) {
                    job.hiteof = true;
                }
                self.job_close(j);
            }
            Ok(n) => {
                match line.first() {
                    Some(b'T') => {
                        if let Some(job) = self.jobs.get_mut(j).and_then(Option::as_mut) {
                            job.numtodo += 1;
                        }
                        let recip = line.get(1..line.len() - 1).unwrap_or_default().to_vec();
                        self.del_start(j, mpos, &recip);
                    }
                    Some(b'D') => {}
                    _ => {
                        let msg = format!(
                            "warning: unknown record type in {}!\n",
                            self.rel(CHAN_DIR[c], id).display()
                        );
                        self.logl(&[msg.as_bytes()]);
                        self.chans[c].pass = None;
                        self.job_close(j);
                        return;
                    }
                }
                if let Some(p) = self.chans[c].pass.as_mut() {
                    p.mpos += n as u64;
                }
            }
        }
    }

    fn pass_do(&mut self) {
        for c in 0..2 {
            self.pass_chan(c);
        }
        if let Some((dt, id)) = peek(&self.pqfail)
            && dt <= self.recent
        {
            self.pqfail.pop();
            self.pqadd(id);
        }
        if let Some((dt, id)) = peek(&self.pqdone)
            && dt <= self.recent
        {
            self.pqdone.pop();
            self.messdone(id);
        }
    }

    // ------------------------------------------------------------------ finishing

    fn exists(&mut self, p: &Path) -> Option<bool> {
        match std::fs::metadata(p) {
            Ok(_) => Some(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Some(false),
            Err(_) => {
                let msg = format!(
                    "warning: unable to stat {}; will try again later\n",
                    p.display()
                );
                self.logl(&[msg.as_bytes()]);
                None
            }
        }
    }

    fn messdone(&mut self, id: u64) {
        let fail = |s: &mut Send| push(&mut s.pqdone, now() + SLEEP_SYSFAIL, id);
        for p in [
            self.rel("local", id),
            self.rel("remote", id),
            self.rel("todo", id),
        ] {
            match self.exists(&p) {
                Some(true) => return,
                Some(false) => {}
                None => return fail(self),
            }
        }
        match self.exists(&self.rel("info", id)) {
            Some(true) => {}
            Some(false) => return,
            None => return fail(self),
        }
        if !self.injectbounce(id) {
            return fail(self);
        }
        self.logl(&[format!("end msg {id}\n").as_bytes()]);
        // The message file goes first and info/ last: if qmail-send dies in between, the
        // info file brings the message back to this point at the next start, where qmail
        // would have left a message file nothing refers to until its 36-hour cleanup.
        if !self.clean(id) {
            return fail(self);
        }
        let info = self.rel("info", id);
        if std::fs::remove_file(&info).is_err() {
            let msg = format!(
                "warning: unable to unlink {}; will try again later\n",
                info.display()
            );
            self.logl(&[msg.as_bytes()]);
            fail(self);
        }
    }

    /// Has qmail-clean remove a message's `intd` and `mess` files; true when done.
    fn clean(&mut self, id: u64) -> bool {
        let mut ans = [0u8; 1];
        let ok = self
            .clean_to
            .write_all(format!("foop/{id}\0").as_bytes())
            .is_ok()
            && self.clean_from.read_exact(&mut ans).is_ok();
        if !ok {
            self.logl(&[b"alert: oh no! lost qmail-clean connection! dying...\n"]);
            self.exitasap = true;
            return false;
        }
        if ans[0] != b'+' {
            self.logl(&[format!("warning: qmail-clean unable to clean up foop/{id}\n").as_bytes()]);
            return false;
        }
        true
    }

    fn injectbounce(&mut self, id: u64) -> bool {
        let Some((mut sender, _)) = self.getinfo(id) else {
            return false;
        };
        // owner-@host-@[] (VERP) bounces to owner-@host.
        if sender.ends_with(b"-@[]") {
            sender.truncate(sender.len() - 4);
        }
        let bpath = PathBuf::from(format!("bounce/{id}"));
        match self.exists(&bpath) {
            Some(true) => {}
            Some(false) => return true,
            None => return false,
        }
        let double = sender.is_empty();
        if sender == b"#@[]" {
            self.logl(&[format!("triple bounce: discarding bounce/{id}\n").as_bytes()]);
        } else if double && self.cfg.doublebounceto.is_empty() {
            self.logl(&[format!("double bounce: discarding bounce/{id}\n").as_bytes()]);
        } else if !self.send_bounce(id, &sender, &bpath) {
            return false;
        }
        if std::fs::remove_file(&bpath).is_err() {
            self.logl(&[format!("warning: unable to unlink bounce/{id}\n").as_bytes()]);
            return false;
        }
        true
    }

    fn send_bounce(&mut self, id: u64, sender: &[u8], bpath: &Path) -> bool {
        let dbto = [
            &self.cfg.doublebounceto[..],
            b"@",
            &self.cfg.doublebouncehost,
        ]
        .concat();
        let (bsender, brecip): (&[u8], Vec<u8>) = if sender.is_empty() {
            (b"#@[]", dbto)
        } else {
            (b"", sender.to_vec())
        };
        let mut qq = match Queue::open(&self.home) {
            Ok(q) => q,
            Err(_) => {
                self.logl(&[b"warning: unable to start qmail-queue, will try later\n"]);
                return false;
            }
        };
        let qp = qq.pid();
        let b = Bounce {
            from: &self.cfg.bouncefrom,
            host: &self.cfg.bouncehost,
            to: &brecip,
            sender,
            now: now(),
            max_bytes: self.cfg.bouncemaxbytes,
        };
        qq.put(&b.head());
        let mut failed = match std::fs::read(bpath) {
            Ok(t) => {
                qq.put(&t);
                false
            }
            Err(_) => true,
        };
        qq.put(&b.middle());
        let mess = self.rel("mess", id);
        failed |= b.copy(&mess, &mut |chunk| qq.put(chunk)).is_err();
        if failed {
            drop(qq);
            self.logl(&[b"warning: trouble injecting bounce message, will try later\n"]);
            return false;
        }
        if qq.close(bsender, &[brecip]).is_err() {
            self.logl(&[b"warning: trouble injecting bounce message, will try later\n"]);
            return false;
        }
        self.logl(&[format!("bounce msg {id} qp {qp}\n").as_bytes()]);
        true
    }

    // ------------------------------------------------------------------ cleanup

    fn cleanup_do(&mut self) {
        if self.cleanup_list.is_empty() {
            if self.recent < self.cleanup_time {
                return;
            }
            for n in 0..self.layout.split {
                if let Ok(dir) = std::fs::read_dir(format!("mess/{n}")) {
                    for e in dir.flatten() {
                        if let Some(id) = e.file_name().to_str().and_then(|s| s.parse::<u64>().ok())
                        {
                            self.cleanup_list.push(id);
                        }
                    }
                }
            }
            self.cleanup_time = self.recent + SLEEP_CLEANUP;
            return;
        }
        let Some(id) = self.cleanup_list.pop() else {
            return;
        };
        let Ok(m) = std::fs::metadata(self.rel("mess", id)) else {
            return;
        };
        if self.recent <= m.atime() + OSSIFIED {
            return;
        }
        for p in [self.rel("info", id), self.rel("todo", id)] {
            match std::fs::metadata(&p) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                _ => return,
            }
        }
        let _ = self.clean(id);
    }

    // ------------------------------------------------------------------ qmail-todo

    fn todo_do(&mut self) {
        let mut buf = [0u8; 4096];
        let r = match self.todo.from.read(&mut buf) {
            Ok(r) => r,
            Err(_) => return,
        };
        if r == 0 {
            self.todo.alive = false;
            if !self.exitasap {
                self.logl(&[b"alert: oh no! lost qmail-todo connection! dying...\n"]);
                self.exitasap = true;
            }
            return;
        }
        self.todo
            .buf
            .extend_from_slice(buf.get(..r).unwrap_or_default());
        while let Some(end) = self.todo.buf.iter().position(|&b| b == 0) {
            let rec: Vec<u8> = self.todo.buf.drain(..=end).collect();
            let body = rec.get(..rec.len() - 1).unwrap_or_default();
            match body.first() {
                Some(b'D') => {
                    let which = body.get(1).copied().unwrap_or(b'X');
                    let id = std::str::from_utf8(body.get(2..).unwrap_or_default())
                        .ok()
                        .and_then(|s| s.parse::<u64>().ok());
                    let Some(id) = id else { continue };
                    let t = now();
                    match which {
                        b'L' => push(&mut self.chans[0].pq, t, id),
                        b'R' => push(&mut self.chans[1].pq, t, id),
                        b'B' => {
                            push(&mut self.chans[0].pq, t, id);
                            push(&mut self.chans[1].pq, t, id);
                        }
                        _ => push(&mut self.pqdone, t, id),
                    }
                }
                Some(b'L') => {
                    let text = body.get(1..).unwrap_or_default().to_vec();
                    self.logl(&[&text]);
                }
                Some(b'X') => self.todo.alive = false,
                _ => self.logl(&[b"warning: qmail-todo speaks an obscure dialect\n"]),
            }
        }
        if self.todo.buf.len() > REPORT_MAX {
            self.todo.buf.clear();
        }
    }

    fn tell_todo(&mut self, b: u8) {
        if self.todo.alive && self.todo.to.write_all(&[b]).is_err() {
            self.todo.alive = false;
        }
    }

    fn reread(&mut self) {
        match Config::load(&self.home) {
            Ok(c) => {
                let conc = self.cfg.concurrency;
                self.cfg = Config {
                    concurrency: conc,
                    ..c
                };
            }
            Err(_) => self.logl(&[b"alert: unable to reread controls\n"]),
        }
        self.tell_todo(b'H');
    }

    /// The main loop; returns when told to stop and nothing is in flight.
    pub fn run(mut self) {
        while !self.exitasap || !self.del_canexit() || self.todo.alive {
            self.recent = now();
            if sys::proc::take(Signal::Terminate) && !self.exitasap {
                self.exitasap = true;
                self.del_status();
            }
            if self.exitasap {
                if !self.todo.told_exit {
                    self.todo.told_exit = true;
                    self.tell_todo(b'X');
                }
                // Telling qmail-todo may have found it gone: then nothing is left to wait
                // for, and polling now would sleep until a timeout.
                if self.del_canexit() && !self.todo.alive {
                    break;
                }
            }
            if sys::proc::take(Signal::Alarm) {
                self.pqrun();
            }
            if sys::proc::take(Signal::Hangup) {
                self.reread();
            }
            let mut wakeup = self.recent + SLEEP_FOREVER;
            self.pass_wakeup(&mut wakeup);
            if !self.cleanup_list.is_empty() {
                wakeup = 0;
            }
            wakeup = wakeup.min(self.cleanup_time);
            let mut fds = Vec::with_capacity(5);
            for c in 0..2 {
                let ch = &self.chans[c];
                if ch.alive {
                    fds.push((
                        ch.from.as_raw_fd(),
                        Ready {
                            read: true,
                            write: false,
                        },
                    ));
                    if !ch.out.is_empty() {
                        fds.push((
                            ch.to.as_raw_fd(),
                            Ready {
                                read: false,
                                write: true,
                            },
                        ));
                    }
                }
            }
            if self.todo.alive {
                fds.push((
                    self.todo.from.as_raw_fd(),
                    Ready {
                        read: true,
                        write: false,
                    },
                ));
            }
            let timeout = if wakeup <= self.recent {
                0
            } else {
                (wakeup - self.recent + SLEEP_FUZZ).min(SLEEP_FOREVER) * 1000
            };
            let ready = match sys::proc::poll(&fds, i32::try_from(timeout).unwrap_or(i32::MAX)) {
                Ok(r) => r,
                Err(_) => {
                    self.logl(&[b"warning: trouble in select\n"]);
                    continue;
                }
            };
            self.recent = now();
            let is = |fd: i32, want_write: bool| {
                fds.iter()
                    .zip(&ready)
                    .any(|((f, w), r)| *f == fd && w.write == want_write && (r.read || r.write))
            };
            for c in 0..2 {
                if self.chans[c].alive
                    && !self.chans[c].out.is_empty()
                    && is(self.chans[c].to.as_raw_fd(), true)
                {
                    self.comm_do(c);
                }
            }
            for c in 0..2 {
                if self.chans[c].alive && is(self.chans[c].from.as_raw_fd(), false) {
                    self.del_do(c);
                }
            }
            if self.todo.alive && is(self.todo.from.as_raw_fd(), false) {
                self.todo_do();
            }
            self.pass_do();
            self.cleanup_do();
        }
        self.pqfinish();
        self.logl(&[b"status: exiting\n"]);
    }
}
