//! qmail-remote: delivers one message to one remote host by SMTP or QMTP and reports, for
//! qmail-rspawn, one record per recipient (`r` accepted, `h` refused for good, `s` refused
//! for now) and one for the message (`K` delivered, `Z` try again, `D` give up), each a
//! letter, a text and a NUL (s/qmail 3.x/4.x texts).
//!
//! The steps: read the control files; read the message; choose the route
//! ([`route`]); look up the addresses (MX, or the relay's A/AAAA); skip exchangers whose
//! preference is not better than our own; then try each address (skipping those that
//! recently timed out, see [`crate::tcpto`]) until one session ends the delivery. TLS
//! policy comes from `control/tlsdestinations` ([`tlsdest`]) and DANE ([`dane`]).

pub mod auth;
pub mod body;
pub mod conn;
pub mod dane;
pub mod qmtp;
pub mod reply;
pub mod route;
pub mod smtp;
pub mod tls;
pub mod tlsdest;

use std::collections::HashMap;
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::control::Control;
use crate::dns::{MxIp, MxIps, Resolver};
use conn::{Conn, Stream};
use route::Proto;
use tlsdest::Level;

/// qmail's preference for "not one of our addresses".
const PREF_NONE: u32 = 100_000;
/// Our preference when a relay is used (every address is tried).
const PREF_RELAY: u32 = 300_000;
/// Our preference when every recipient domain was an alias.
const PREF_ALIASES: u32 = 500_000;

/// The final record of a delivery: a letter and a text (ending in LF).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stop {
    /// `K`, `Z` or `D`.
    pub letter: u8,
    /// The text.
    pub text: Vec<u8>,
}

impl Stop {
    /// A record.
    pub fn new(letter: u8, text: impl Into<String>) -> Stop {
        Stop {
            letter,
            text: text.into().into_bytes(),
        }
    }
}

/// How a session ended.
#[derive(Debug)]
pub enum Outcome {
    /// The delivery is over.
    Done(Stop),
    /// Try the next address; report this if none is left.
    NextMx(Option<Stop>),
    /// The opportunistic TLS handshake failed: try this address again without TLS.
    RetryPlain,
}

/// What every session of one delivery shares.
#[derive(Clone, Debug, Default)]
pub struct Ctx {
    /// The host the delivery is routed to (relay or recipient domain).
    pub host: Vec<u8>,
    /// The HELO/EHLO name.
    pub helo: Vec<u8>,
    /// The envelope sender, quoted.
    pub sender: Vec<u8>,
    /// The recipients, quoted and canonicalised.
    pub recips: Vec<Vec<u8>>,
    /// The message as queued.
    pub msg: Vec<u8>,
    /// The message as SMTP DATA.
    pub data: Vec<u8>,
    /// The message has 8-bit bytes.
    pub eightbit: bool,
    /// The envelope has non-ASCII addresses.
    pub needs_utf8: bool,
    /// SMTP AUTH credentials.
    pub creds: Option<(Vec<u8>, Vec<u8>)>,
    /// Credentials may go over a plain connection (`control/authcleartext`).
    pub auth_cleartext: bool,
    /// TLS from the first byte.
    pub implicit_tls: bool,
}

impl Ctx {
    /// The routed host for reports.
    pub fn host_safe(&self) -> String {
        safe(&self.host)
    }
}

/// TLS for one server.
#[derive(Clone, Debug)]
pub struct TlsCtx {
    /// The handshake settings.
    pub setup: tls::Setup,
    /// Try STARTTLS when offered.
    pub wanted: bool,
    /// Do not go on without TLS.
    pub mandatory: bool,
    /// A pinned fingerprint as written, for reports.
    pub fingerprint_text: String,
}

/// qmail's outsafe: bytes below 33 or above 126 become `?`.
pub fn safe(b: &[u8]) -> String {
    b.iter()
        .map(|&c| {
            if (33..=126).contains(&c) {
                char::from(c)
            } else {
                '?'
            }
        })
        .collect()
}

fn z(t: &str) -> Stop {
    Stop::new(b'Z', t)
}

/// The control files qmail-remote reads.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// `timeoutremote`.
    pub timeout: u64,
    /// `timeoutconnect`.
    pub timeout_connect: u64,
    /// `helohost` (default `me`).
    pub helo: Vec<u8>,
    /// The route tables.
    pub tables: route::Tables,
    /// `domainips`.
    pub domainips: Vec<Vec<u8>>,
    /// `tlsdestinations`.
    pub tlsdestinations: Vec<Vec<u8>>,
    /// `domaincerts`.
    pub domaincerts: Vec<Vec<u8>>,
    /// `authcleartext`.
    pub authcleartext: Vec<Vec<u8>>,
}

impl Config {
    /// Reads the control files of `home`.
    ///
    /// # Errors
    /// The report for unreadable control files.
    pub fn load(home: &Path) -> Result<Config, Stop> {
        let bad = |_| z("Unable to read control files. (#4.3.0)\n");
        let c = Control::open(home).map_err(bad)?;
        let list = |n: &str| c.list(n).map(Option::unwrap_or_default).map_err(bad);
        let helo = match c.line("helohost").map_err(bad)? {
            Some(h) => h,
            None => c
                .me()
                .map(<[u8]>::to_vec)
                .ok_or_else(|| z("Unable to read control files. (#4.3.0)\n"))?,
        };
        Ok(Config {
            timeout: c.int("timeoutremote", 1200).map_err(bad)?,
            timeout_connect: c.int("timeoutconnect", 60).map_err(bad)?,
            helo,
            tables: route::Tables {
                authsenders: list("authsenders")?,
                qmtproutes: list("qmtproutes")?,
                smtproutes: list("smtproutes")?,
            },
            domainips: list("domainips")?,
            tlsdestinations: list("tlsdestinations")?,
            domaincerts: list("domaincerts")?,
            authcleartext: list("authcleartext")?,
        })
    }
}

/// Runs qmail-remote with `args` (host, sender, recipients) and the message on `input`;
/// returns everything it prints.
pub fn run(home: &Path, args: &[Vec<u8>], input: &mut dyn Read) -> Vec<u8> {
    let mut out = Vec::new();
    let stop = match deliver(home, args, input, &mut out) {
        Ok(s) | Err(s) => s,
    };
    out.push(stop.letter);
    out.extend_from_slice(&stop.text);
    out.push(0);
    out
}

fn mangle(addr: &[u8]) -> Vec<u8> {
    if addr.is_ascii() {
        return crate::addr::quote(addr);
    }
    let at = addr.iter().rposition(|&c| c == b'@').unwrap_or(addr.len());
    let masked: Vec<u8> = addr
        .get(..at)
        .unwrap_or_default()
        .iter()
        .map(|&c| if c >= 128 { b'a' } else { c })
        .collect();
    if crate::addr::quote_needed(&masked) {
        crate::addr::quote(addr)
    } else {
        addr.to_vec()
    }
}

fn invoked_improperly() -> Stop {
    Stop::new(b'D', "qmail-remote was invoked improperly. (#5.3.5)\n")
}

/// Everything decided before the first connection.
struct Plan<'a> {
    home: &'a Path,
    cfg: Config,
    route: route::Route,
    dip: route::DomainIp,
    policy: tlsdest::Policy,
    port: u16,
    certs: Option<(PathBuf, PathBuf)>,
}

fn deliver(
    home: &Path,
    args: &[Vec<u8>],
    input: &mut dyn Read,
    out: &mut Vec<u8>,
) -> Result<Stop, Stop> {
    let [host, sender, recips @ ..] = args else {
        return Err(invoked_improperly());
    };
    if recips.is_empty() {
        return Err(invoked_improperly());
    }
    let cfg = Config::load(home)?;
    // Room for a typical message up front: read_to_end on an empty Vec starts with 32-byte
    // reads and doubles, a dozen system calls for a few KiB.
    let mut msg = Vec::with_capacity(64 * 1024);
    input
        .read_to_end(&mut msg)
        .map_err(|_| z("Unable to read message. (#4.3.0)\n"))?;
    let (plan, routed, implicit) = plan(home, cfg, host, sender)?;
    let data = if plan.route.proto == Proto::Smtp {
        body::encode(&msg).map_err(|_| {
            Stop::new(
                b'D',
                "SMTP cannot transfer messages with partial final lines. (#5.6.2)\n",
            )
        })?
    } else {
        Vec::new()
    };
    let mut resolver = LazyDns {
        r: None,
        routed: routed.clone(),
    };
    let (mangled, all_aliases) = canonical(recips, plan.route.relay.is_some(), &mut resolver)?;
    let ctx = Ctx {
        host: routed.clone(),
        helo: plan
            .dip
            .helo
            .clone()
            .unwrap_or_else(|| plan.cfg.helo.clone()),
        sender: mangle(sender),
        needs_utf8: !sender.is_ascii() || recips.iter().any(|r| !r.is_ascii()),
        recips: mangled,
        eightbit: body::is_8bit(&msg),
        msg,
        data,
        creds: plan.route.creds.clone(),
        auth_cleartext: plan
            .cfg
            .authcleartext
            .iter()
            .any(|l| l.as_slice() == b"*" || l.eq_ignore_ascii_case(&routed)),
        implicit_tls: implicit,
    };
    let ips = addresses(&plan.route, &routed, &mut resolver)?;
    let prefme = our_preference(&plan.route, all_aliases, &ips)?;
    if !ips.iter().any(|m| u32::from(m.pref) < prefme) {
        return Err(Stop::new(
            b'D',
            "Sorry. Although I'm listed as a best-preference MX or A for that host,\n\
             it isn't in my control/locals file, so I don't treat it as local. (#5.4.6)\n",
        ));
    }
    let usable: Vec<&MxIp> = ips.iter().filter(|m| u32::from(m.pref) < prefme).collect();
    attempts(&plan, &ctx, &usable, &mut resolver, out)
}

/// The route, local address, TLS policy and port for a delivery; also the routed host
/// and whether TLS starts with the first byte.
fn plan<'a>(
    home: &'a Path,
    cfg: Config,
    host: &[u8],
    sender: &[u8],
) -> Result<(Plan<'a>, Vec<u8>, bool), Stop> {
    let route = route::choose(&cfg.tables, host, sender).map_err(|b| {
        z(&format!(
            "Unusable route in control files: {}; the port separator is ;. (#4.3.0)\n",
            safe(b.0.as_bytes())
        ))
    })?;
    let sender_domain = sender
        .iter()
        .rposition(|&c| c == b'@')
        .and_then(|i| sender.get(i + 1..))
        .unwrap_or_default()
        .to_vec();
    let dip = route::domain_ip(&cfg.domainips, &sender_domain)
        .map_err(|_| z("Invalid ipaddr in control/domainips (#4.3.0)\n"))?
        .unwrap_or_default();
    let routed: Vec<u8> = route
        .relay
        .clone()
        .map_or_else(|| host.to_vec(), String::into_bytes);
    let routed_text = String::from_utf8_lossy(&routed).into_owned();
    let sd = String::from_utf8_lossy(&sender_domain).into_owned();
    let policy = tlsdest::lookup(&cfg.tlsdestinations, &routed_text, &sd).map_err(|_| {
        z(&format!(
            "Unusable line in control/tlsdestinations for: {}. (#4.3.0)\n",
            safe(&routed)
        ))
    })?;
    let (mut port, mut implicit) = (route.port, route.implicit_tls);
    if let (Some((p, s)), true) = (policy.port, policy.level != Level::Never) {
        port = p;
        implicit = s
            || (route.proto == Proto::Smtp && p == route::PORT_SMTPS)
            || (route.proto == Proto::Qmtp && p == route::PORT_QMTPS);
    }
    let certs = client_cert(&cfg.domaincerts, &sender_domain);
    let plan = Plan {
        home,
        cfg,
        route,
        dip,
        policy,
        port,
        certs,
    };
    Ok((plan, routed, implicit))
}

/// The recipients quoted, with their domains made canonical (CNAME) when no relay is
/// used; and whether every domain was an alias.
fn canonical(
    recips: &[Vec<u8>],
    relay: bool,
    resolver: &mut LazyDns,
) -> Result<(Vec<Vec<u8>>, bool), Stop> {
    let mut all_aliases = true;
    let mut canon: HashMap<Vec<u8>, (Vec<u8>, bool)> = HashMap::new();
    let mut mangled = Vec::new();
    for r in recips {
        let at = r.iter().rposition(|&c| c == b'@');
        let (Some(at), false) = (at, relay) else {
            all_aliases = false;
            mangled.push(mangle(r));
            continue;
        };
        let domain = r.get(at + 1..).unwrap_or_default().to_vec();
        if !canon.contains_key(&domain) {
            let d = String::from_utf8_lossy(&domain).into_owned();
            let c = if crate::dns::literal(&d).is_some() || !domain.is_ascii() {
                d.clone()
            } else {
                resolver.get()?.cname(&d).map_err(|_| {
                    z(&format!(
                        "CNAME lookup failed temporarily for: {}. (#4.4.3)\n",
                        safe(&domain)
                    ))
                })?
            };
            let alias = !c.eq_ignore_ascii_case(&d);
            let name = if alias {
                c.into_bytes()
            } else {
                domain.clone()
            };
            canon.insert(domain.clone(), (name, alias));
        }
        let (c, alias) = canon.get(&domain).cloned().unwrap_or((domain, false));
        all_aliases &= alias;
        let mut m = mangle(r.get(..at).unwrap_or_default());
        m.push(b'@');
        m.extend_from_slice(&c);
        mangled.push(m);
    }
    Ok((mangled, all_aliases))
}

/// qmail's prefme: the best preference of an exchanger that is this host.
fn our_preference(route: &route::Route, all_aliases: bool, ips: &[MxIp]) -> Result<u32, Stop> {
    if route.relay.is_some() {
        return Ok(PREF_RELAY);
    }
    if all_aliases {
        return Ok(PREF_ALIASES);
    }
    let me = crate::sys::local_addresses()
        .map_err(|_| z("System resources temporarily unavailable. (#4.3.0)\n"))?;
    Ok(ips
        .iter()
        .filter(|m| me.contains(&m.ip) || m.ip.is_unspecified())
        .map(|m| u32::from(m.pref))
        .min()
        .unwrap_or(PREF_NONE))
}

fn now() -> u64 {
    u64::try_from(crate::date::now()).unwrap_or(0)
}

/// Tries each address in turn until a session ends the delivery.
fn attempts(
    plan: &Plan<'_>,
    ctx: &Ctx,
    ips: &[&MxIp],
    resolver: &mut LazyDns,
    out: &mut Vec<u8>,
) -> Result<Stop, Stop> {
    let mut tlsa_cache: HashMap<String, TlsCtx> = HashMap::new();
    let mut last: Option<Stop> = None;
    for m in ips {
        let v4 = match m.ip {
            IpAddr::V4(a) => Some(a.octets()),
            IpAddr::V6(_) => None,
        };
        if v4.is_some_and(|o| crate::tcpto::is_down(plan.home, o, now(), std::process::id())) {
            continue;
        }
        let tctx = match tlsa_cache.get(&m.name) {
            Some(t) => t.clone(),
            None => {
                let t = tls_ctx(ctx, plan, m, resolver)?;
                tlsa_cache.insert(m.name.clone(), t.clone());
                t
            }
        };
        let mut t = tctx;
        for _ in 0..2 {
            let sock = match connect(&plan.dip, m.ip, plan.port, &plan.cfg) {
                Ok(s) => s,
                Err(Refused::Bind(stop)) => return Err(stop),
                Err(Refused::Connect(timed_out)) => {
                    if let Some(o) = v4 {
                        crate::tcpto::note(plan.home, o, timed_out, now());
                    }
                    break;
                }
            };
            if let Some(o) = v4 {
                crate::tcpto::note(plan.home, o, false, now());
            }
            let ip = m.ip.to_string();
            let outcome = if plan.route.proto == Proto::Qmtp {
                qmtp_session(ctx, &t, &ip, sock, out)
            } else {
                smtp::Session::new(ctx, &t, ip, Conn::new(Stream::Plain(sock)), out).run()
            };
            match outcome {
                Outcome::Done(s) => return Ok(s),
                Outcome::NextMx(s) => {
                    last = s.or(last);
                    break;
                }
                Outcome::RetryPlain => t.wanted = false,
            }
        }
    }
    Err(last.unwrap_or_else(|| match plan.route.proto {
        Proto::Smtp => z("Sorry, I wasn't able to establish an SMTP connection. (#4.4.1)\n"),
        Proto::Qmtp => z("Sorry, I wasn't able to establish an QMTP connection. (#4.4.1)\n"),
    }))
}

fn qmtp_session(
    ctx: &Ctx,
    t: &TlsCtx,
    ip: &str,
    sock: std::net::TcpStream,
    out: &mut Vec<u8>,
) -> Outcome {
    let conn = if ctx.implicit_tls {
        match tls::handshake(&t.setup, sock) {
            Ok(s) => Conn::new(Stream::Tls(Box::new(s))),
            Err(e) => {
                return Outcome::Done(Stop::new(
                    b'Z',
                    smtp::tls_text(&e, &ctx.host_safe(), &t.fingerprint_text),
                ));
            }
        }
    } else {
        Conn::new(Stream::Plain(sock))
    };
    qmtp::run(ctx, ip, conn, out)
}

/// The resolver, built on first use (routes to address literals need none).
struct LazyDns {
    r: Option<Resolver>,
    routed: Vec<u8>,
}

impl LazyDns {
    fn get(&mut self) -> Result<&Resolver, Stop> {
        if self.r.is_none() {
            self.r = Some(Resolver::from_env().map_err(|_| {
                z(&format!(
                    "Sorry, I couldn't find any host named: {}. (#4.1.2)\n",
                    safe(&self.routed)
                ))
            })?);
        }
        self.r
            .as_ref()
            .ok_or_else(|| z("System resources temporarily unavailable. (#4.3.0)\n"))
    }
}

fn addresses(
    route: &route::Route,
    routed: &[u8],
    resolver: &mut LazyDns,
) -> Result<Vec<MxIp>, Stop> {
    let name = String::from_utf8_lossy(routed).into_owned();
    let perm_dns = || {
        Stop::new(
            b'D',
            format!(
                "Sorry, I couldn't find any host named {}. (#5.1.2)\n",
                safe(routed)
            ),
        )
    };
    let temp_dns = || {
        z(&format!(
            "Sorry, I couldn't find any host named: {}. (#4.1.2)\n",
            safe(routed)
        ))
    };
    let nomx = || {
        Stop::new(
            b'D',
            "Sorry, I couldn't find a mail exchanger or IP address. (#5.4.4)\n",
        )
    };
    let direct = crate::dns::literal(&name).or_else(|| name.parse::<IpAddr>().ok());
    let ips = if let Some(ip) = direct {
        vec![MxIp {
            pref: 0,
            name: name.clone(),
            ip,
        }]
    } else if route.relay.is_some() {
        match resolver.get()?.ip(&name).map_err(|_| temp_dns())? {
            None => return Err(perm_dns()),
            Some(v) => v
                .into_iter()
                .map(|ip| MxIp {
                    pref: 0,
                    name: crate::dns::plain_name(&name),
                    ip,
                })
                .collect(),
        }
    } else {
        match resolver
            .get()?
            .mxip(&name, crate::dnstools::random())
            .map_err(|_| temp_dns())?
        {
            MxIps::NoSuchDomain => return Err(perm_dns()),
            MxIps::Found(v) => v,
        }
    };
    if ips.is_empty() {
        return Err(nomx());
    }
    Ok(ips)
}

fn client_cert(lines: &[Vec<u8>], sender_domain: &[u8]) -> Option<(PathBuf, PathBuf)> {
    let v = route::lookup_suffixes(lines, sender_domain, false)
        .filter(|_| !sender_domain.is_empty())
        .or_else(|| route::lookup(lines, b"*"))?;
    let text = String::from_utf8_lossy(v).into_owned();
    let mut f = text.split('|');
    let cert = f.next().filter(|c| !c.is_empty())?;
    let key = f.next().filter(|k| !k.is_empty()).unwrap_or(cert);
    Some((PathBuf::from(cert), PathBuf::from(key)))
}

fn tls_ctx(ctx: &Ctx, plan: &Plan<'_>, m: &MxIp, resolver: &mut LazyDns) -> Result<TlsCtx, Stop> {
    let (policy, route, port) = (&plan.policy, &plan.route, plan.port);
    let client = plan.certs.clone();
    let creds_need_tls = ctx.creds.is_some() && !ctx.auth_cleartext;
    let mut wanted = policy.level != Level::Never || ctx.implicit_tls || creds_need_tls;
    let mut mandatory = policy.level.mandatory() || ctx.implicit_tls || creds_need_tls;
    let mut check = match policy.level {
        Level::Chain => tls::Check::Chain,
        Level::Name => tls::Check::Name,
        Level::ExactName => tls::Check::ExactName,
        Level::Pinned => tls::Check::Pin(policy.fingerprint.clone().unwrap_or_default()),
        _ => tls::Check::Nothing,
    };
    let is_name = crate::dns::literal(&m.name).is_none() && m.name.parse::<IpAddr>().is_err();
    // QMTP has no STARTTLS: there TLS (and so DANE) means QMTPS.
    let tls_possible = ctx.implicit_tls || (wanted && route.proto == Proto::Smtp);
    if tls_possible && is_name && policy.level != Level::Pinned {
        let owner = crate::dnstools::tlsa_name(&m.name, &port.to_string());
        let a = resolver.get()?.tlsa(&owner).map_err(|_| {
            z(&format!(
                "TLSA lookup failed temporarily for: {}. (#4.4.3)\n",
                safe(owner.as_bytes())
            ))
        })?;
        if a.authenticated && !a.records.is_empty() {
            wanted = true;
            mandatory = true;
            let usable = dane::usable_records(&a.records);
            check = if usable.is_empty() {
                tls::Check::Nothing
            } else {
                tls::Check::Dane(usable)
            };
        }
    }
    Ok(TlsCtx {
        setup: tls::Setup {
            check,
            roots: policy.roots.clone(),
            host: String::from_utf8_lossy(&ctx.host).into_owned(),
            sni: is_name.then(|| m.name.clone()),
            dane_names: vec![
                m.name.clone(),
                String::from_utf8_lossy(&ctx.host).into_owned(),
            ],
            client,
        },
        wanted,
        mandatory,
        fingerprint_text: policy.fingerprint_text.clone(),
    })
}

/// Why no connection was made.
enum Refused {
    /// The local address could not be bound: the delivery stops.
    Bind(Stop),
    /// The server could not be reached; true when it timed out or refused (qmail notes
    /// those in tcpto).
    Connect(bool),
}

/// Connects to `ip:port` from the domainips address (when it has the same family).
fn connect(
    dip: &route::DomainIp,
    ip: IpAddr,
    port: u16,
    cfg: &Config,
) -> Result<std::net::TcpStream, Refused> {
    let cant_bind = || {
        Refused::Bind(z(&format!(
            "Can't bind to local ip address: {}. (#4.3.0)\n",
            dip.ip.map(|i| i.to_string()).unwrap_or_default()
        )))
    };
    let same_family = dip.ip.filter(|l| l.is_ipv4() == ip.is_ipv4());
    let local = match (same_family, dip.interface.as_deref()) {
        (None, _) => None,
        // `%ifname` gives the address its scope: a link-local source needs one, and the
        // kernel then sends to a link-local destination through that interface.
        (Some(IpAddr::V6(l)), Some(name)) => {
            let scope = crate::sys::interface_index(name).ok_or_else(cant_bind)?;
            Some(SocketAddr::V6(std::net::SocketAddrV6::new(l, 0, 0, scope)))
        }
        (Some(l), _) => Some(SocketAddr::new(l, 0)),
    };
    let remote = SocketAddr::new(ip, port);
    let s = crate::sys::tcp_connect(
        local.as_ref(),
        &remote,
        Duration::from_secs(cfg.timeout_connect),
    )
    .map_err(|e| match e.kind() {
        std::io::ErrorKind::AddrNotAvailable => cant_bind(),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::ConnectionRefused => {
            Refused::Connect(true)
        }
        _ => Refused::Connect(false),
    })?;
    let t = Some(Duration::from_secs(cfg.timeout.max(1)));
    // Commands and the end of the data are small writes waiting for a reply: without
    // this, Nagle's algorithm and delayed ACKs cost 40 ms per message.
    let _ = s.set_nodelay(true);
    let _ = s.set_read_timeout(t);
    let _ = s.set_write_timeout(t);
    Ok(s)
}
