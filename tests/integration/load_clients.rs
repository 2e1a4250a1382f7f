//! The clients of the load-and-faults run: FixMyStreet posting reports, GraphQL readers, a
//! bystander's liveness probe, and partner subscriptions that resume after a restart.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::LoadReport;

pub(super) async fn gql(client: &reqwest::Client, base: &str, token: &str, query: &str) -> Value {
    match client
        .post(format!("{base}/graphql"))
        .bearer_auth(token)
        .json(&json!({"query": query}))
        .timeout(Duration::from_secs(10))
        .send()
        .await
    {
        Ok(r) => r.json().await.unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

/// FixMyStreet sending reports at a steady rate, each with its own FixMyStreet id, and sending
/// a report again (as FixMyStreet does, every half second here) until it is answered with 200.
/// Every failed attempt counts as an error; a report is accepted once.
pub(super) async fn intake(
    base: String,
    key: String,
    per_sec: u64,
    stop: Arc<AtomicBool>,
    report: Arc<Mutex<LoadReport>>,
) {
    let client = reqwest::Client::new();
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / per_sec.max(1)));
    let mut n = 0u64;
    let mut inflight = futures::stream::FuturesUnordered::new();
    while !stop.load(Ordering::SeqCst) {
        tokio::select! {
            _ = tick.tick() => {
                n += 1;
                inflight.push(send_until_answered(client.clone(), base.clone(), key.clone(), n, report.clone()));
            }
            Some(()) = inflight.next(), if !inflight.is_empty() => {}
        }
    }
    while inflight.next().await.is_some() {}
}

async fn send_until_answered(
    client: reqwest::Client,
    base: String,
    key: String,
    n: u64,
    report: Arc<Mutex<LoadReport>>,
) {
    report.lock().await.reports_sent += 1;
    let form = [
        ("api_key", key),
        ("jurisdiction_id", "borsetshire".to_string()),
        ("service_code", "POT".to_string()),
        ("description", format!("load report {n}")),
        ("lat", "50.71".to_string()),
        ("long", "-2.44".to_string()),
        ("email", "someone@example.org".to_string()),
        ("attribute[depth_cm]", "4".to_string()),
        ("attribute[fixmystreet_id]", n.to_string()),
    ];
    for _ in 0..240 {
        let answer = client
            .post(format!("{base}/open311/v2/requests.json"))
            .form(&form)
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        if answer.is_ok_and(|r| r.status() == 200) {
            report.lock().await.reports_accepted += 1;
            return;
        }
        report.lock().await.report_errors += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

pub(super) async fn reader(
    base: String,
    token: String,
    stop: Arc<AtomicBool>,
    report: Arc<Mutex<LoadReport>>,
) {
    let client = reqwest::Client::new();
    while !stop.load(Ordering::SeqCst) {
        let body = gql(
            &client,
            &base,
            &token,
            "{ cases(first: 20) { totalCount edges { node { reference status } } } }",
        )
        .await;
        let ok = body["data"]["cases"]["totalCount"].is_u64();
        let mut r = report.lock().await;
        if ok {
            r.reads += 1;
        } else {
            r.read_errors += 1;
        }
        drop(r);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A bystander's liveness probe every 100 ms: its latency, or an error while Junction is down.
pub(super) async fn bystander(
    base: String,
    stop: Arc<AtomicBool>,
    report: Arc<Mutex<LoadReport>>,
    latencies: Arc<Mutex<Vec<f64>>>,
) {
    let client = reqwest::Client::new();
    while !stop.load(Ordering::SeqCst) {
        let started = Instant::now();
        let ok = client
            .get(format!("{base}/health/live"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200);
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let mut r = report.lock().await;
        r.bystander_checks += 1;
        if ok {
            latencies.lock().await.push(ms);
        } else {
            r.bystander_errors += 1;
        }
        drop(r);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A partner's subscription, reconnecting and resuming after the last event it heard.
pub(super) async fn subscriber(
    base: String,
    token: String,
    stop: Arc<AtomicBool>,
    heard: Arc<Mutex<(u64, u64)>>,
) {
    let mut last: Option<String> = None;
    let mut seen = HashSet::new();
    let url = format!("{}/graphql", base.replace("http://", "ws://"));
    while !stop.load(Ordering::SeqCst) {
        let mut request = url.clone().into_client_request().unwrap();
        request.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        let Ok((mut ws, _)) = tokio_tungstenite::connect_async(request).await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let init = json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {token}"), "purpose": "crime_prevention"}});
        let query = "subscription($after: ID) { sharedCaseEvents(after: $after) { id kind } }";
        let subscribe = json!({"id": "1", "type": "subscribe", "payload": {"query": query, "variables": {"after": last}}});
        if ws.send(Message::text(init.to_string())).await.is_err()
            || ws.send(Message::text(subscribe.to_string())).await.is_err()
        {
            continue;
        }
        loop {
            let frame = tokio::time::timeout(Duration::from_millis(500), ws.next()).await;
            if stop.load(Ordering::SeqCst) {
                return;
            }
            let msg = match frame {
                Err(_) => continue,
                Ok(Some(Ok(Message::Text(t)))) => {
                    serde_json::from_str::<Value>(&t).unwrap_or(Value::Null)
                }
                Ok(Some(Ok(_))) => continue,
                Ok(_) => break,
            };
            if msg["type"] != "next" {
                continue;
            }
            let Some(id) = msg["payload"]["data"]["sharedCaseEvents"]["id"].as_str() else {
                continue;
            };
            let again = !seen.insert(id.to_string());
            let mut h = heard.lock().await;
            h.0 += 1;
            h.1 += u64::from(again);
            last = Some(id.to_string());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
