//! Byte-exact transcripts of the pure session, without processes or descriptors.

use super::config::{AuthMode, Config, LocalIps, TlsMode};
use super::filter::RcptHosts;
use super::policy::{NoDns, Policy};
use super::session::{Action, AuthOutcome, Session};

fn config() -> Config {
    Config {
        greeting: b"mx.test".to_vec(),
        rcpthosts: RcptHosts {
            hosts: Some(vec![b"mx.test".to_vec()]),
            more: None,
        },
        pid: 42,
        peer: super::text::Peer {
            ip: b"192.0.2.1".to_vec(),
            host: None,
            info: None,
            local: b"mx.test".to_vec(),
        },
        ..Config::default()
    }
}

fn say(s: &mut Session, line: &str) -> String {
    String::from_utf8(s.line(line.as_bytes(), &mut NoDns).reply).unwrap()
}

fn tls_vars(verify: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    [
        ("SSL_PROTOCOL", "TLSv1.3"),
        ("SSL_CIPHER", "TLS_AES_128_GCM_SHA256"),
        ("SSL_CIPHER_USEKEYSIZE", "128"),
        ("SSL_CIPHER_ALGKEYSIZE", "128"),
        ("SSL_CLIENT_S_DN", "/O=Org/CN=client.test"),
        ("SSL_CLIENT_VERIFY", verify),
    ]
    .iter()
    .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
    .collect()
}

#[test]
fn ehlo_offers_starttls_then_auth_after_tls() {
    let mut c = config();
    c.tls = TlsMode::parse(Some(b""), true);
    c.auth = AuthMode::parse(Some(b"+cram"), true, false);
    c.databytes = 5000;
    let mut s = Session::new(c, Policy::default());
    assert_eq!(
        say(&mut s, "EHLO x"),
        "250-mx.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-STARTTLS\r\n250-SMTPUTF8\r\n250 SIZE 5000\r\n"
    );
    assert_eq!(say(&mut s, "STARTTLS now"), "501 syntax error (#5.5.4)\r\n");
    let step = s.line(b"STARTTLS", &mut NoDns);
    assert_eq!(step.reply, b"220 Ready to start TLS (#5.7.0)\r\n");
    assert_eq!(step.action, Action::StartTls);
    assert_eq!(say(&mut s, "MAIL FROM:<a@b>"), "250 ok\r\n");
    s.tls_started(tls_vars("NONE"));
    assert_eq!(
        say(&mut s, "RCPT TO:<u@mx.test>"),
        "503 MAIL first (#5.5.1)\r\n"
    );
    assert_eq!(
        say(&mut s, "EHLO x"),
        "250-mx.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-AUTH LOGIN PLAIN CRAM-MD5\r\n250-SMTPUTF8\r\n250 SIZE 5000\r\n"
    );
    assert_eq!(say(&mut s, "STARTTLS"), "500 unimplemented (#5.5.1)\r\n");
    assert_eq!(s.proto(), "ESMTPS");
}

#[test]
fn client_certificate_relays_only_when_verified() {
    for (verify, relays) in [("NONE", false), ("FAILED", false), ("SUCCESS", true)] {
        let mut s = Session::new(config(), Policy::default());
        s.tls_started(tls_vars(verify));
        say(&mut s, "MAIL FROM:<a@b>");
        let r = say(&mut s, "RCPT TO:<u@far.test>");
        assert_eq!(r == "250 ok\r\n", relays, "{verify}: {r}");
        if relays {
            let log = String::from_utf8(s.take_log()).unwrap();
            assert!(log.contains("Accept::AUTH::cert P:ESMTPSA"), "{log}");
            let h = String::from_utf8(s.header("1 Jan 2000 00:00:00 -0000\n")).unwrap();
            assert!(h.contains("(client.test@192.0.2.1)\n  de/crypted with TLSv1.3: TLS_AES_128_GCM_SHA256 [128/128] DN=/O=Org/CN=client.test\n  by mx.test with ESMTPSA; "), "{h}");
        }
    }
}

#[test]
fn auth_parameter_does_not_set_the_identity() {
    let mut s = Session::new(config(), Policy::default());
    say(&mut s, "MAIL FROM:<a@b> AUTH=boss@mx.test");
    say(&mut s, "RCPT TO:<u@mx.test>");
    assert!(
        s.queue_env()
            .iter()
            .all(|(k, _)| k != b"TCPREMOTEINFO" && k != b"AUTHUSER")
    );
    let h = s.header("d\n");
    assert!(!h.windows(4).any(|w| w == b"boss"));
}

#[test]
fn auth_success_makes_a_relay_client() {
    let mut c = config();
    c.auth = AuthMode::parse(Some(b""), true, true);
    let mut s = Session::new(c, Policy::default());
    let step = s.line(b"AUTH PLAIN AGpvZQBzZWNyZXQ=", &mut NoDns);
    let Action::Auth(cred) = step.action else {
        panic!("{step:?}")
    };
    let step = s.auth_result(&cred, AuthOutcome::Refused);
    assert_eq!(step.reply, b"535 authentication failed (#5.7.1)\r\n");
    assert_eq!(step.delay, super::AUTH_FAIL_DELAY_SECS);
    assert_eq!(say(&mut s, "MAIL FROM:<a@b>"), "250 ok\r\n");
    assert!(say(&mut s, "RCPT TO:<u@far.test>").starts_with("553 "));
    say(&mut s, "RSET");
    let step = s.auth_result(&cred, AuthOutcome::Accepted);
    assert_eq!(step.reply, b"235 ok, go ahead (#2.0.0)\r\n");
    say(&mut s, "MAIL FROM:<a@b>");
    assert_eq!(say(&mut s, "RCPT TO:<u@far.test>"), "250 ok\r\n");
    let env = s.queue_env();
    for (k, v) in [
        ("AUTHUSER", "joe"),
        ("AUTHPROTOCOL", "plain"),
        ("TCPREMOTEINFO", "joe"),
    ] {
        assert!(
            env.contains(&(k.as_bytes().to_vec(), v.as_bytes().to_vec())),
            "{k}"
        );
    }
    assert_eq!(s.proto(), "ESMTPA");
}

#[test]
fn tarpit_delays_after_the_count() {
    let mut c = config();
    c.tarpitcount = 1;
    c.tarpitdelay = 3;
    let mut s = Session::new(c, Policy::default());
    say(&mut s, "MAIL FROM:<a@b>");
    assert_eq!(s.line(b"RCPT TO:<a@mx.test>", &mut NoDns).delay, 0);
    let step = s.line(b"RCPT TO:<b@mx.test>", &mut NoDns);
    assert_eq!((step.reply.as_slice(), step.delay), (&b"250 ok\r\n"[..], 3));
}

#[test]
fn tarpit_delay_zero_stops_after_refused_recipients() {
    let mut c = config();
    c.tarpitcount = 2;
    let mut s = Session::new(c, Policy::default());
    say(&mut s, "MAIL FROM:<a@b>");
    assert_eq!(say(&mut s, "RCPT TO:<a@mx.test>"), "250 ok\r\n");
    assert!(say(&mut s, "RCPT TO:<a@far.test>").starts_with("553 "));
    assert_eq!(say(&mut s, "RCPT TO:<b@mx.test>"), "250 ok\r\n");
    assert!(say(&mut s, "RCPT TO:<b@far.test>").starts_with("553 "));
    assert_eq!(
        say(&mut s, "RCPT TO:<c@mx.test>"),
        "452 sorry, too many recipients (#4.5.3)\r\n"
    );
}

#[test]
fn localmfcheck_judges_relay_senders_at_rcpt() {
    for (mode, info, from, ok) in [
        ("", None, "a@mx.test", true),
        ("", None, "a@far.test", false),
        ("", None, "local", true),
        ("far.test", None, "a@FAR.test", true),
        ("far.test", None, "a@mx.test", true),
        ("far.test", None, "a@x.far.test", false),
        ("=", Some("joe@far.test"), "JOE@far.test", true),
        ("=", Some("joe@far.test"), "bob@far.test", false),
        ("=", None, "joe@far.test", false),
        ("?", None, "joe@mx.test", false),
        // Without the database, `!` is the rcpthosts check.
        ("!", None, "a@mx.test", true),
        ("!", None, "a@far.test", false),
    ] {
        let mut c = config();
        c.relayclient = Some(Vec::new());
        c.localmfcheck = Some(mode.as_bytes().to_vec());
        c.peer.info = info.map(|i| i.as_bytes().to_vec());
        let mut s = Session::new(c, Policy::default());
        assert_eq!(say(&mut s, &format!("MAIL FROM:<{from}>")), "250 ok\r\n");
        assert_eq!(
            s.proto(),
            if ok { "ESMTPM" } else { "ESMTP" },
            "{mode} {from}"
        );
        let r = say(&mut s, "RCPT TO:<u@elsewhere.test>");
        let log = String::from_utf8(s.take_log()).unwrap();
        if ok {
            assert_eq!(r, "250 ok\r\n", "{mode} {from}");
            assert!(
                log.contains(" Accept::ORIG::Local_Sender P:ESMTPM "),
                "{log}"
            );
        } else {
            assert_eq!(
                r, "553 sorry, invalid sender address specified (#5.7.1)\r\n",
                "{mode} {from}"
            );
            assert!(
                log.contains(" Reject::ORIG::Invalid_Mailfrom P:ESMTP "),
                "{log}"
            );
        }
        say(&mut s, "RSET");
        assert_eq!(s.proto(), "ESMTP", "M belongs to the transaction");
    }
}

#[test]
fn certificate_email_comes_from_its_variable_or_the_dn() {
    for (vars, from, ok) in [
        (
            vec![("SSL_CLIENT_S_DN_Email", "joe@mx.test")],
            "Joe@mx.test",
            true,
        ),
        (
            vec![("SSL_CLIENT_S_DN", "/O=Org/CN=joe/emailAddress=joe@dn.test")],
            "joe@dn.test",
            true,
        ),
        (
            vec![("SSL_CLIENT_S_DN", "CN=joe, emailAddress=joe@dn.test")],
            "joe@dn.test",
            true,
        ),
        (vec![], "client.test", false),
    ] {
        let mut c = config();
        c.localmfcheck = Some(b"?".to_vec());
        let mut s = Session::new(c, Policy::default());
        let mut t = tls_vars("SUCCESS");
        for (k, v) in vars {
            t.retain(|(n, _)| n.as_slice() != k.as_bytes());
            t.push((k.as_bytes().to_vec(), v.as_bytes().to_vec()));
        }
        s.tls_started(t);
        say(&mut s, &format!("MAIL FROM:<{from}>"));
        let r = say(&mut s, "RCPT TO:<u@far.test>");
        assert_eq!(r == "250 ok\r\n", ok, "{from}: {r}");
        assert_eq!(s.proto(), if ok { "ESMTPSAM" } else { "ESMTPSA" });
    }
}

#[test]
fn rcpt_checks_the_client_side_before_the_common_filters() {
    let mut c = config();
    c.badmailfrom = vec![b"bad@b.test".to_vec()];
    c.tarpitcount = 1;
    c.tarpitdelay = 999;
    let mut s = Session::new(c, Policy::default());
    say(&mut s, "MAIL FROM:<bad@b.test>");
    // A stranger sending to a foreign domain hears about rcpthosts first, as in s/qmail.
    assert!(say(&mut s, "RCPT TO:<u@far.test>").starts_with("553 sorry, that domain"));
    let log = String::from_utf8(s.take_log()).unwrap();
    assert!(log.contains(" Reject::SNDR::Invalid_Relay "), "{log}");
    // The tarpit is for strangers only.
    let mut c = config();
    c.tarpitcount = 1;
    c.tarpitdelay = 999;
    c.relayclient = Some(Vec::new());
    let mut s = Session::new(c, Policy::default());
    say(&mut s, "MAIL FROM:<a@b.test>");
    for r in ["a@far.test", "b@far.test", "c@far.test"] {
        assert_eq!(say(&mut s, &format!("RCPT TO:<{r}>")), "250 ok\r\n");
    }
    assert_eq!(say(&mut s, "DATA"), "354 go ahead\r\n");
}

#[test]
fn an_address_literal_of_ours_is_the_local_host() {
    let mut c = config();
    c.localiphost = b"mx.test".to_vec();
    c.local_ips = LocalIps::new(None, || Ok(vec!["192.0.2.9".parse().unwrap()]));
    let mut s = Session::new(c, Policy::default());
    assert_eq!(say(&mut s, "HELO x"), "250 mx.test\r\n");
    assert_eq!(say(&mut s, "MAIL FROM:<a@b>"), "250 ok\r\n");
    assert_eq!(say(&mut s, "RCPT TO:<box@[192.0.2.9]>"), "250 ok\r\n");
    assert!(say(&mut s, "RCPT TO:<box@[192.0.2.10]>").starts_with("553 "));
    let mut c = config();
    c.localiphost = b"mx.test".to_vec();
    c.local_ips = LocalIps::new(Some(b"192.0.2.7".to_vec()), || {
        Err(std::io::Error::other("TCPLOCALIP alone answers"))
    });
    let mut s = Session::new(c, Policy::default());
    assert_eq!(say(&mut s, "HELO x"), "250 mx.test\r\n");
    assert_eq!(say(&mut s, "MAIL FROM:<a@b>"), "250 ok\r\n");
    assert_eq!(say(&mut s, "RCPT TO:<box@[192.0.2.7]>"), "250 ok\r\n");
}

#[test]
fn unreadable_interfaces_end_the_session_with_421_at_the_first_literal() {
    let mut c = config();
    c.local_ips = LocalIps::new(None, || Err(std::io::Error::other("no netlink")));
    let mut s = Session::new(c, Policy::default());
    assert_eq!(say(&mut s, "HELO x"), "250 mx.test\r\n");
    assert_eq!(say(&mut s, "MAIL FROM:<a@b>"), "250 ok\r\n");
    assert_eq!(say(&mut s, "RCPT TO:<box@mx.test>"), "250 ok\r\n");
    let step = s.line(b"RCPT TO:<box@[192.0.2.9]>", &mut NoDns);
    assert_eq!(
        step.reply,
        b"421 unable to figure out my IP addresses (#4.3.0)\r\n"
    );
    assert_eq!(step.action, Action::Hangup);
}
