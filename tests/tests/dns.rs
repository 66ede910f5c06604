//! `plan_steps::dns` against a real BIND `named`: the lab's DNS server
//! (zone `lab.test.`, updates signed with its TSIG key), read back with
//! `dig`. Each test has its own lab, so they run in parallel.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use plan_core::TsigKeySource;
use plan_steps::dns::{
    capture_to_string, parse_capture, AuthFailure, DnsClient, DnsError, DnsErrorKind, RRset,
    TsigKey, WaitProgress,
};
use tests::lab::{ARecord, Lab, RECORD, ZONE};

/// Runs a test's async part, bounded (see [`tests::bounded`]).
#[track_caller]
fn block_on<F: Future>(future: F) -> F::Output {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    tests::bounded(runtime, future)
}

fn dns_lab() -> Lab {
    Lab::builder()
        .hosts(0)
        .dns()
        .start()
        .expect("the lab's named starts")
}

/// A client of the lab's server signing with the key in `key_file`.
fn client_with(lab: &Lab, zone: &str, key_file: &Path) -> DnsClient {
    let key = TsigKey::load(&TsigKeySource::File(key_file.to_owned())).expect("the key loads");
    DnsClient::new(&lab.dns().server(), zone, &key).expect("a client")
}

/// A client signing with the lab's key.
fn client(lab: &Lab) -> DnsClient {
    client_with(lab, ZONE, &lab.dns().tsig_key)
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("an address")
}

/// The A records of `name`, as dig shows them, ordered.
fn dig_a(lab: &Lab, name: &str) -> Vec<ARecord> {
    let mut records = lab.lookup(name);
    records.sort_by_key(|r| r.address);
    records
}

/// The AAAA records of `name`, as dig shows them: `(ttl, address)`.
fn dig_aaaa(lab: &Lab, name: &str) -> Vec<(u32, IpAddr)> {
    let output = lab.dig(&["+noall", "+answer", "+norecurse", name, "AAAA"]);
    assert!(output.status.success(), "dig {name} AAAA: {output:?}");
    let mut records: Vec<(u32, IpAddr)> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(
            |line| match line.split_whitespace().collect::<Vec<_>>()[..] {
                [_, ttl, "IN", "AAAA", address] => Some((ttl.parse().ok()?, address.parse().ok()?)),
                _ => None,
            },
        )
        .collect();
    records.sort();
    records
}

fn a(ttl: u32, address: &str) -> ARecord {
    ARecord {
        ttl,
        address: address.parse().expect("an IPv4 address"),
    }
}

/// The secret of a BIND key file, to look for where it must not be.
fn secret_of(key_file: &Path) -> String {
    let text = std::fs::read_to_string(key_file).expect("the key file");
    let start = text.find("secret \"").expect("a secret") + "secret \"".len();
    let end = start + text[start..].find('"').expect("a closing quote");
    text[start..end].to_owned()
}

#[track_caller]
fn assert_secret_not_shown(error: &DnsError, key_file: &Path) {
    let secret = secret_of(key_file);
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains(&secret), "the secret shows: {shown}");
    // Nor a recognisable piece of it.
    assert!(!shown.contains(&secret[..12]), "the secret shows: {shown}");
}

#[test]
fn query_reads_what_dig_shows() {
    let lab = dns_lab();
    let dns = client(&lab);
    let dug = dig_a(&lab, RECORD);
    assert_eq!(dug.len(), 1, "{dug:?}");
    let served = block_on(dns.query(RECORD)).expect("the query succeeds");
    assert_eq!(
        served,
        RRset::new(lab.dns().record_ttl, [IpAddr::V4(dug[0].address)])
    );
    assert_eq!(dug[0].ttl, lab.dns().record_ttl);
    // Without the trailing dot, in another case: the same name.
    assert_eq!(block_on(dns.query("WWW.lab.test")).unwrap(), served);
    // A name with no records is an empty RRset, not an error.
    let missing = block_on(dns.query("nothing-here.lab.test.")).expect("NXDOMAIN is an answer");
    assert!(missing.is_empty() && missing.ttl.is_none());
    // The same from the plan's settings.
    let settings = |key: &Path| plan_core::Dns {
        server: lab.dns().server(),
        zone: ZONE.into(),
        key: TsigKeySource::File(key.to_owned()),
        records: Vec::new(),
    };
    let from_plan = DnsClient::from_plan(&settings(&lab.dns().tsig_key)).expect("a client");
    assert_eq!(block_on(from_plan.query(RECORD)).unwrap(), served);
    let missing = lab.dir().join("no-such.key");
    let error = DnsClient::from_plan(&settings(&missing)).unwrap_err();
    assert!(matches!(error.kind(), DnsErrorKind::Key(_)), "{error:?}");
    assert!(
        error.to_string().contains(&format!(
            "TSIG key file {}: cannot read it",
            missing.display()
        )),
        "{error}"
    );
    // The `Resolves` check.
    assert!(block_on(dns.resolves(RECORD, IpAddr::V4(dug[0].address))).unwrap());
    assert!(!block_on(dns.resolves(RECORD, ip("192.0.2.99"))).unwrap());
}

#[test]
fn set_ttl_changes_only_the_ttl() {
    let lab = dns_lab();
    let dns = client(&lab);
    let before = dig_a(&lab, RECORD);
    let served = block_on(dns.set_ttl(RECORD, 60)).expect("the TTL changes");
    let after = dig_a(&lab, RECORD);
    assert_eq!(after, vec![a(60, &before[0].address.to_string())]);
    assert_eq!(served.ttl, Some(60));
    // A name without records has no TTL to change.
    let error = block_on(dns.set_ttl("nothing-here.lab.test.", 60)).unwrap_err();
    assert!(
        matches!(error.kind(), DnsErrorKind::NoRecords(name) if name == "nothing-here.lab.test."),
        "{error}"
    );
}

#[test]
fn set_addresses_replaces_a_and_aaaa() {
    let lab = dns_lab();
    let dns = client(&lab);
    let new = [ip("127.0.0.9"), ip("127.0.0.10"), ip("fd00::9")];
    let served = block_on(dns.set_addresses(RECORD, &new, 120)).expect("the update succeeds");
    assert_eq!(served, RRset::new(120, new));
    assert_eq!(
        dig_a(&lab, RECORD),
        vec![a(120, "127.0.0.9"), a(120, "127.0.0.10")]
    );
    assert_eq!(dig_aaaa(&lab, RECORD), vec![(120, ip("fd00::9"))]);
    assert!(block_on(dns.resolves(RECORD, ip("fd00::9"))).unwrap());

    // Back to IPv4 only: the AAAA record goes.
    block_on(dns.set_addresses(RECORD, &[ip("127.0.0.11")], 90)).expect("the update succeeds");
    assert_eq!(dig_a(&lab, RECORD), vec![a(90, "127.0.0.11")]);
    assert_eq!(dig_aaaa(&lab, RECORD), vec![]);
}

#[test]
fn restore_gives_back_exactly_the_captured_rrset() {
    let lab = dns_lab();
    let dns = client(&lab);
    let original_a = dig_a(&lab, RECORD);

    let journaled = capture_to_string(&block_on(dns.query(RECORD)).unwrap());
    block_on(dns.set_ttl(RECORD, 30)).unwrap();
    block_on(dns.set_addresses(RECORD, &[ip("127.0.0.9"), ip("fd00::9")], 30)).unwrap();
    let captured = parse_capture(&journaled).expect("the capture reads back");
    let restored = block_on(dns.restore(RECORD, &captured)).expect("the restore succeeds");
    assert_eq!(restored, captured);
    assert_eq!(dig_a(&lab, RECORD), original_a);
    assert_eq!(dig_aaaa(&lab, RECORD), vec![]);

    // A and AAAA with different TTLs come back with theirs.
    let mixed = "mixed.lab.test.";
    let output = lab.nsupdate(
        &lab.dns().tsig_key,
        &format!("update add {mixed} 300 A 127.0.0.20\nupdate add {mixed} 600 AAAA fd00::20"),
    );
    assert!(output.status.success(), "nsupdate: {output:?}");
    let captured = block_on(dns.query(mixed)).unwrap();
    assert_eq!(
        (captured.a_ttl(), captured.aaaa_ttl()),
        (Some(300), Some(600))
    );
    let journaled = capture_to_string(&captured);
    block_on(dns.set_addresses(mixed, &[ip("127.0.0.21")], 5)).unwrap();
    block_on(dns.restore(mixed, &parse_capture(&journaled).unwrap())).unwrap();
    assert_eq!(dig_a(&lab, mixed), vec![a(300, "127.0.0.20")]);
    assert_eq!(dig_aaaa(&lab, mixed), vec![(600, ip("fd00::20"))]);

    // A name that had no records has none again.
    let fresh = "fresh.lab.test.";
    let journaled = capture_to_string(&block_on(dns.query(fresh)).unwrap());
    block_on(dns.set_addresses(fresh, &[ip("127.0.0.30")], 60)).unwrap();
    assert_eq!(dig_a(&lab, fresh), vec![a(60, "127.0.0.30")]);
    block_on(dns.restore(fresh, &parse_capture(&journaled).unwrap())).unwrap();
    assert_eq!(dig_a(&lab, fresh), vec![]);
    assert!(block_on(dns.query(fresh)).unwrap().is_empty());
}

#[test]
fn a_wrong_secret_is_an_authentication_failure() {
    let lab = dns_lab();
    let before = dig_a(&lab, RECORD);
    // The lab key's name, another secret.
    let wrong = lab.write_tsig_key("wrong-secret.key", &lab.dns().tsig_name);
    let dns = client_with(&lab, ZONE, &wrong);
    let error = block_on(dns.set_addresses(RECORD, &[ip("127.0.0.66")], 60)).unwrap_err();
    assert!(error.is_authentication(), "{error}");
    assert!(
        matches!(
            error.kind(),
            DnsErrorKind::Authentication(AuthFailure::BadSignature)
        ),
        "{error}"
    );
    assert!(error.to_string().contains("BADSIG"), "{error}");
    assert_secret_not_shown(&error, &wrong);
    assert_eq!(
        dig_a(&lab, RECORD),
        before,
        "nothing changed under a wrong key"
    );
    // Queries are signed too, so a wrong key shows before anything changes.
    let error = block_on(dns.query(RECORD)).unwrap_err();
    assert!(error.is_authentication(), "{error}");
    assert_secret_not_shown(&error, &wrong);
}

#[test]
fn an_unknown_key_name_is_an_authentication_failure() {
    let lab = dns_lab();
    let before = dig_a(&lab, RECORD);
    let stranger = lab.write_tsig_key("stranger.key", "stranger-key");
    let dns = client_with(&lab, ZONE, &stranger);
    let error = block_on(dns.set_ttl(RECORD, 5)).unwrap_err();
    assert!(
        matches!(
            error.kind(),
            DnsErrorKind::Authentication(AuthFailure::UnknownKey)
        ),
        "{error}"
    );
    assert!(error.to_string().contains("BADKEY"), "{error}");
    assert_secret_not_shown(&error, &stranger);
    let error = block_on(dns.set_addresses(RECORD, &[ip("127.0.0.66")], 5)).unwrap_err();
    assert!(error.is_authentication(), "{error}");
    assert_eq!(dig_a(&lab, RECORD), before);
}

#[test]
fn refusals_are_reported_as_refusals_not_authentication_failures() {
    let lab = dns_lab();
    let key = &lab.dns().tsig_key;
    // A zone this server does not serve: it refuses to answer for it.
    let elsewhere = client_with(&lab, "example.org.", key);
    let error = block_on(elsewhere.query("www.example.org.")).unwrap_err();
    assert!(matches!(error.kind(), DnsErrorKind::Refused), "{error:?}");
    assert!(!error.is_authentication());
    assert!(error.to_string().contains("REFUSED"), "{error}");
    // ... and is not authoritative for its updates (NOTAUTH, signed: not an
    // authentication failure).
    let error =
        block_on(elsewhere.set_addresses("www.example.org.", &[ip("127.0.0.66")], 60)).unwrap_err();
    assert!(
        matches!(error.kind(), DnsErrorKind::NotAuthoritative { zone } if zone == "example.org."),
        "{error:?}"
    );
    assert!(!error.is_authentication());
    // A name outside the client's zone is never sent.
    let dns = client(&lab);
    let error =
        block_on(dns.set_addresses("www.example.org.", &[ip("127.0.0.66")], 60)).unwrap_err();
    assert!(
        matches!(error.kind(), DnsErrorKind::OutsideZone { .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "DNS update of www.example.org. at {}: www.example.org. is not in zone lab.test.",
            lab.dns().server()
        )
    );
}

#[test]
fn an_update_the_server_ignores_is_not_taken_for_done() {
    let lab = dns_lab();
    let dns = client(&lab);
    // RFC 2136 3.4.2.2: addresses at a CNAME are silently ignored.
    let output = lab.nsupdate(
        &lab.dns().tsig_key,
        &format!("update add alias.lab.test. 60 CNAME {RECORD}"),
    );
    assert!(output.status.success(), "nsupdate: {output:?}");
    let error =
        block_on(dns.set_addresses("alias.lab.test.", &[ip("127.0.0.66")], 60)).unwrap_err();
    assert!(
        matches!(error.kind(), DnsErrorKind::NotApplied { served, .. } if served.is_empty()),
        "{error:?}"
    );
}

#[test]
fn wait_ttl_waits_out_the_previous_ttl_and_confirms_the_records() {
    let lab = dns_lab();
    let dns = client(&lab);
    let changed_at = SystemTime::now();
    let served = block_on(dns.set_ttl(RECORD, 1)).unwrap();

    // The previous TTL (2 s) runs out 2 s after the change.
    let mut reports: Vec<WaitProgress> = Vec::new();
    let started = Instant::now();
    let waited = block_on(dns.wait_ttl(
        RECORD,
        2,
        changed_at,
        Some(&served),
        std::future::pending(),
        |p| reports.push(p),
    ))
    .expect("the wait succeeds");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert_eq!(waited.served, served);
    assert!(reports.len() >= 2, "{reports:?}");
    assert!(
        reports[0].remaining > Duration::from_millis(1500),
        "{reports:?}"
    );
    assert_eq!(reports.last().map(|p| p.remaining), Some(Duration::ZERO));

    // Long since changed: nothing to wait for.
    let long_ago = SystemTime::now() - Duration::from_secs(3600);
    let waited =
        block_on(dns.wait_ttl(RECORD, 300, long_ago, None, std::future::pending(), |_| {}))
            .unwrap();
    assert!(waited.waited < Duration::from_secs(1), "{waited:?}");

    // Not what the change should have left: the wait proves nothing.
    let other = RRset::new(1, [ip("192.0.2.1")]);
    let error = block_on(dns.wait_ttl(
        RECORD,
        300,
        long_ago,
        Some(&other),
        std::future::pending(),
        |_| {},
    ))
    .unwrap_err();
    assert!(
        matches!(error.kind(), DnsErrorKind::NotApplied { .. }),
        "{error:?}"
    );
}

#[test]
fn wait_ttl_is_cancellable_and_notices_changes() {
    let lab = dns_lab();
    let dns = client(&lab);
    let started = Instant::now();
    let error = block_on(dns.wait_ttl(
        RECORD,
        3600,
        SystemTime::now(),
        None,
        // Lazily: the timer needs the runtime `block_on` starts.
        async { tokio::time::sleep(Duration::from_millis(300)).await },
        |_| {},
    ))
    .unwrap_err();
    assert!(matches!(error.kind(), DnsErrorKind::Cancelled), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(3));

    // Someone changes the record during the wait.
    let changer = client(&lab);
    let error = block_on(async {
        let change = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            changer
                .set_addresses(RECORD, &[ip("127.0.0.77")], 60)
                .await
                .expect("the concurrent change");
            std::future::pending::<()>().await;
        };
        tokio::select! {
            result = dns.wait_ttl(RECORD, 2, SystemTime::now(), None, std::future::pending(), |_| {}) => result,
            () = change => unreachable!(),
        }
    })
    .unwrap_err();
    assert!(
        matches!(error.kind(), DnsErrorKind::ChangedDuringWait { after, .. } if after.contains(ip("127.0.0.77"))),
        "{error:?}"
    );
}

#[test]
fn a_silent_server_times_out_and_a_closed_port_is_a_network_error() {
    let key = TsigKey::new("k", "hmac-sha256", vec![7; 32]).expect("a key");
    // Accepts connections, never answers.
    let silent = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("a listener");
    let server = silent.local_addr().expect("its address").to_string();
    let dns = DnsClient::new(&server, ZONE, &key)
        .expect("a client")
        .with_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let error = block_on(dns.set_ttl(RECORD, 60)).unwrap_err();
    assert!(
        matches!(error.kind(), DnsErrorKind::Timeout { after } if *after == Duration::from_millis(300)),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(
        error.to_string().ends_with("no answer within 300 ms"),
        "{error}"
    );

    // Nothing listens there any more.
    drop(silent);
    let error = block_on(dns.query(RECORD)).unwrap_err();
    assert!(
        matches!(error.kind(), DnsErrorKind::Network(_)),
        "{error:?}"
    );
    assert!(!error.is_authentication());
}
