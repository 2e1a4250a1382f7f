//! Share notices by email carry only what the partner's agreement allows.

use super::*;

#[tokio::test]
async fn share_notices_by_email_show_only_what_the_agreement_allows() {
    let (smtp, port) = SmtpSink::start().await;
    let s = TestServer::start(&format!(
        r#"{SHARING}
[[connectors]]
id = "smtp"
kind = "email"
retry = {{ initial_secs = 1, max_delay_secs = 1, max_age_hours = 1, jitter = 0.0 }}
  [connectors.params]
  smtp_host = "127.0.0.1"
  smtp_port = {port}
  tls = "none"
  from = "junction@borsetshire.example"

[routing]
email_connector = "smtp"

[[agencies]]
id = "fire-control"
name = "Fire Control"
kind = "partner"
email = "control@fire.example"

[[agreements]]
id = "fire-control-food"
title = "Fire safety at food premises"
partner = "fire-control"
case_types = ["FOOD"]
purposes = ["fire_safety"]
lawful_basis = "Fire and Rescue Services Act 2004"
ceiling = "personal"
valid_from = 2020-01-01

[[sharing.rules]]
name = "high risk food to fire control"
agreement = "fire-control-food"
when = {{ field = "fields.risk", eq = "high" }}
notify = true
"#
    ))
    .await;
    let (case, reference) = create_food(&s, "high", "smoke from the fryer").await;
    let mail = eventually(20, "the notice to fire", || {
        let smtp = smtp.clone();
        async move {
            smtp.messages()
                .into_iter()
                .find(|m| m.to.iter().any(|t| t.contains("control@fire.example")))
        }
    })
    .await;
    // Undo quoted-printable's soft line breaks.
    let text = mail.data.replace("=\r\n", "").replace("=\n", "");
    assert!(text.contains("Shared with you"), "{text}");
    assert!(
        text.contains(&format!("Case {reference} has been shared")),
        "{text}"
    );
    assert!(text.contains("fire-control-food"), "{text}");
    // Fire's ceiling is personal: contact notes go, symptoms (sensitive) never do.
    assert!(text.contains(PERSONAL), "{text}");
    assert!(!text.contains(SENSITIVE), "{text}");
    // The police rule also asks to notify, but the police have no address: a dead notice
    // that says so, rather than silence.
    let officer = s.token(&[Role::Officer]);
    let body = eventually(20, "the police notice to be given up", || {
        let s = &s;
        let officer = officer.clone();
        let case = case.clone();
        async move {
            let (_, body) = s
                .gql(
                    Some(&officer),
                    "query($id: ID!) { case(id: $id) { deliveries { kind state agencyId lastError } } }",
                    json!({"id": case}),
                )
                .await;
            let dead = data(&body)["case"]["deliveries"]
                .as_array()?
                .iter()
                .any(|d| d["kind"] == "PARTNER_NOTICE" && d["agencyId"] == "police" && d["state"] == "DEAD");
            dead.then_some(body)
        }
    })
    .await;
    assert!(body.to_string().contains("no email address"), "{body}");
    // The personal values the email showed are on the disclosure log.
    let auditor = s.token(&[Role::Auditor]);
    let (_, body) = s
        .gql(
            Some(&auditor),
            "query($id: ID!) { disclosures(caseId: $id) { partnerAgency channel fields } }",
            json!({"id": case}),
        )
        .await;
    let list = data(&body)["disclosures"].as_array().unwrap();
    assert!(
        list.iter().any(|d| d["partnerAgency"] == "fire-control"
            && d["channel"] == "email"
            && d["fields"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f == "fields.contact_notes")),
        "{body}"
    );
    s.stop().await;
}
