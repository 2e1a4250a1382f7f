//! Email under the conformance suite: an SMTP relay on loopback that refuses, fails, hangs and
//! garbles as steered; what a message says; and TLS, never falling back to the clear.

use junction_connectors::{ConnectorKind, ConnectorParams, build};
use serde_json::json;

use super::{Peer, Subject, case, deliverer, outbound};
use crate::support::{SmtpMode, SmtpSink, init};

fn params(port: u16) -> ConnectorParams {
    ConnectorParams::parse(
        ConnectorKind::Email,
        json!({"smtp_host": "127.0.0.1", "smtp_port": port, "tls": "none",
            "from": "junction@borsetshire.example", "timeout_secs": 2}),
        &mut |_| {},
    )
    .unwrap()
}

/// The Message-ID of every message the relay took, in order.
fn message_ids(sink: &SmtpSink) -> Vec<String> {
    sink.messages()
        .iter()
        .filter_map(|m| {
            m.data
                .lines()
                .find(|l| l.to_ascii_lowercase().starts_with("message-id:"))
                .map(str::to_string)
        })
        .collect()
}

async fn subject_with(sink: SmtpSink, port: u16) -> Subject {
    let caps = build(&params(port), &|_| Ok(String::new())).unwrap();
    let steered = sink.clone();
    Subject {
        name: "email",
        connector: deliverer(caps.clone()),
        base: caps.base,
        steer: Box::new(move |p| {
            let set = |counter: &std::sync::atomic::AtomicU32, on: bool| {
                counter.store(u32::from(on), std::sync::atomic::Ordering::SeqCst)
            };
            set(&steered.refuse_next, p == Peer::Refuse);
            set(&steered.fail_next, p == Peer::Fail);
            set(&steered.hang_next, p == Peer::Hang);
            set(&steered.garble_next, p == Peer::Garble);
        }),
        nobody_at: params,
        keys_seen: Box::new(move || message_ids(&sink)),
    }
}

pub(super) async fn subject() -> Subject {
    let (sink, port) = SmtpSink::start().await;
    subject_with(sink, port).await
}

#[tokio::test]
async fn a_message_goes_to_the_routed_address_with_the_reporter_to_reply_to() {
    init();
    let (sink, port) = SmtpSink::start().await;
    let s = subject_with(sink.clone(), port).await;
    let c = case();
    let to = vec!["highways@borsetshire.example".to_string()];
    s.connector
        .deliver(&outbound(&c, &to, "0190-case:x"))
        .await
        .unwrap();
    let mails = sink.messages();
    assert_eq!(mails[0].to, ["<highways@borsetshire.example>"]);
    assert!(mails[0].data.contains("Reply-To: pat@example.org"));
    assert!(mails[0].data.contains("depth_cm: 12"));
    // The whole message, as the relay took it (its date is the only line that changes).
    insta::with_settings!({filters => vec![(r"(?m)^Date: .*$", "Date: [date]")]}, {
        insta::assert_snapshot!(mails[0].data.replace("\r\n", "\n"));
    });
}

/// Email over STARTTLS and over TLS from the first byte, to a relay whose certificate comes
/// from a private authority named by `ca_file`; and never in the clear when TLS was asked for.
#[tokio::test]
async fn email_goes_encrypted_to_relays_that_speak_tls_and_never_in_the_clear() {
    init();
    let c = case();
    let to = vec!["highways@borsetshire.example".to_string()];
    let out = outbound(&c, &to, "0190-case:tls");
    let ca = format!("{}/fixtures/tls/ca.pem", env!("CARGO_MANIFEST_DIR"));
    let email = |port: u16, tls: &str, ca: Option<&str>| {
        let mut params = json!({"smtp_host": "127.0.0.1", "smtp_port": port, "tls": tls,
            "from": "junction@borsetshire.example", "timeout_secs": 5});
        if let Some(ca) = ca {
            params["ca_file"] = json!(ca);
        }
        let p = ConnectorParams::parse(ConnectorKind::Email, params, &mut |_| {}).unwrap();
        deliverer(build(&p, &|_| Ok(String::new())).unwrap())
    };
    for (mode, tls) in [
        (SmtpMode::StartTls, "starttls"),
        (SmtpMode::ImplicitTls, "tls"),
    ] {
        let (sink, port) = SmtpSink::start_with(mode).await;
        let sent = email(port, tls, Some(&ca)).deliver(&out).await;
        assert!(sent.is_ok(), "{tls}: {:?}", sent.err().map(|e| e.error));
        let mails = sink.messages();
        assert_eq!(mails.len(), 1, "{tls}");
        assert!(mails[0].encrypted, "{tls}: the message travelled encrypted");
        assert!(mails[0].data.contains("depth_cm: 12"), "{tls}");

        // Without the private authority the relay's certificate is not trusted: nothing sent.
        let e = email(port, tls, None)
            .deliver(&out)
            .await
            .unwrap_err()
            .error;
        assert!(
            e.retriable,
            "{tls}: an untrusted certificate may be fixed: {e:?}"
        );
        assert_eq!(sink.messages().len(), 1, "{tls}: nothing more arrived");
    }
    // A relay that does not offer STARTTLS gets nothing when STARTTLS was asked for.
    let (plain, port) = SmtpSink::start_with(SmtpMode::Plain).await;
    let e = email(port, "starttls", Some(&ca))
        .deliver(&out)
        .await
        .unwrap_err()
        .error;
    assert!(e.retriable, "{e:?}");
    assert!(plain.messages().is_empty(), "never sent in the clear");
    // An unreadable `ca_file` is a configuration error naming the file.
    let p = ConnectorParams::parse(
        ConnectorKind::Email,
        json!({"smtp_host": "127.0.0.1", "tls": "tls", "from": "a@b.example", "ca_file": "/nonexistent/ca.pem"}),
        &mut |_| {},
    )
    .unwrap();
    let err = build(&p, &|_| Ok(String::new())).err().expect("refused");
    assert!(err.contains("ca_file /nonexistent/ca.pem"), "{err}");
}
