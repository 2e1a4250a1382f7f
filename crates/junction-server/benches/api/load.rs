//! The API bench's load generator: a hyper client sending one target in a closed loop (back
//! to back from N callers) or an open loop (on a fixed schedule, latency measured from each
//! request's scheduled time), and the CPU placement and machine check of a pinned run.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

pub use bytes_body::full;

/// Whether the open loop's pacer may keep the load generator's core busy (it has one of its
/// own).
pub static PRECISE_PACING: AtomicBool = AtomicBool::new(false);
/// Workers sharing the open-loop schedule.
pub const CONNECTIONS: usize = 256;
pub const CLOSED_SECS: u64 = 5;
pub const OPEN_SECS: u64 = 5;

pub mod bytes_body {
    pub type Body = http_body_util::Full<axum::body::Bytes>;
    pub fn full(s: &str) -> Body {
        http_body_util::Full::new(axum::body::Bytes::copy_from_slice(s.as_bytes()))
    }
}

#[derive(Clone)]
pub struct Target {
    pub name: &'static str,
    pub url: String,
    pub body: Option<String>,
    pub token: Option<String>,
}

pub type HttpClient = Client<HttpConnector, bytes_body::Body>;

pub async fn send(client: &HttpClient, t: &Target) -> bool {
    let builder = hyper::Request::builder().uri(&t.url);
    let req = match &t.body {
        Some(b) => {
            let mut r = builder
                .method("POST")
                .header("content-type", "application/json");
            if let Some(tok) = &t.token {
                r = r.header("authorization", format!("Bearer {tok}"));
            }
            r.body(full(b)).unwrap()
        }
        None => builder.method("GET").body(full("")).unwrap(),
    };
    match client.request(req).await {
        Ok(resp) => {
            let ok = resp.status() == 200;
            let body = resp
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            ok && !body.windows(8).any(|w| w == b"\"errors\"")
        }
        Err(_) => false,
    }
}

/// Requests per second with `connections` callers sending back to back; also failures and the
/// number of requests sent.
pub async fn closed_loop(client: &HttpClient, t: &Target, connections: usize) -> (f64, u64, u64) {
    closed_loop_for(client, t, connections, CLOSED_SECS).await
}

pub async fn closed_loop_for(
    client: &HttpClient,
    t: &Target,
    connections: usize,
    secs: u64,
) -> (f64, u64, u64) {
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (client, t, done, failed) = (client.clone(), t.clone(), done.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                if send(&client, &t).await {
                    done.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let (ok, bad) = (done.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    (ok as f64 / started.elapsed().as_secs_f64(), bad, ok + bad)
}

/// Latency percentiles (ms) at a fixed rate, measured from each request's scheduled time.
/// `CONNECTIONS` workers share the schedule (worker `w` takes slots `w`, `w + K`, …); a late
/// worker's delay counts against the requests that waited for it.
///
/// One pacer task keeps the schedule to within a pass of the load generator's scheduler: it
/// sleeps on tokio's timer until shortly before a slot is due and then yields until it is.
/// Tokio's timers alone tick in whole milliseconds: every request started up to 1 ms late and
/// a millisecond's worth left together, so the load tool's rounding showed up in every
/// percentile. (A pacer thread of its own cost the load generator's core a context switch per
/// wake and could not keep up with the bare endpoint's rate.) The yielding keeps the load
/// generator's core busy, so it is done only when that core is the generator's alone
/// (pinned); sharing cores with the server, the pacer keeps to tokio's timer.
pub async fn open_loop(client: &HttpClient, t: &Target, rate: f64) -> OpenLoop {
    let interval = Duration::from_secs_f64(1.0 / rate);
    let total = (rate * OPEN_SECS as f64) as u64;
    let start = Instant::now() + Duration::from_millis(50);
    let mut tasks = Vec::new();
    let mut slots = Vec::new();
    for _ in 0..CONNECTIONS {
        let (client, t) = (client.clone(), t.clone());
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
        slots.push(tx);
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
            let mut from_send = hist.clone();
            let mut failed = 0u64;
            while let Some(scheduled) = rx.recv().await {
                let sent = Instant::now();
                if !send(&client, &t).await {
                    failed += 1;
                }
                let us = |since: Instant| (since.elapsed().as_micros() as u64).max(1);
                hist.record(us(scheduled)).unwrap();
                from_send.record(us(sent)).unwrap();
            }
            (hist, from_send, failed)
        }));
    }
    let pacer = tokio::spawn(async move {
        for slot in 0..total {
            let due = start + interval.mul_f64(slot as f64);
            if !PRECISE_PACING.load(Ordering::Relaxed) {
                tokio::time::sleep_until(due.into()).await;
            } else {
                // Tokio's timer for the long stretches; the last millisecond or two by
                // yielding, which checks the clock again after every other task and the I/O
                // poll have had their turn.
                if let Some(far) = due.checked_sub(Duration::from_millis(2))
                    && far > Instant::now()
                {
                    tokio::time::sleep_until(far.into()).await;
                }
                while Instant::now() < due {
                    tokio::task::yield_now().await;
                }
            }
            let _ = slots[(slot % CONNECTIONS as u64) as usize].send(due);
        }
    });
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let mut from_send = hist.clone();
    let mut failed = 0;
    for task in tasks {
        let (h, s, f) = task.await.unwrap();
        hist.add(h).unwrap();
        from_send.add(s).unwrap();
        failed += f;
    }
    pacer.await.unwrap();
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    OpenLoop {
        p50: ms(&hist, 0.5),
        p99: ms(&hist, 0.99),
        p999: ms(&hist, 0.999),
        p99_from_send: ms(&from_send, 0.99),
        sent: total,
        failed,
    }
}

/// What an open loop measured: latency (ms) from each request's scheduled time (the method's
/// figure), the p99 from the moment each request actually left, requests sent and failures.
/// The two p99s differ by time spent in the load generator before sending: its worker still
/// waiting for an earlier response, or its core not running (on this virtual machine the
/// host stops a vCPU for milliseconds at a time).
pub struct OpenLoop {
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub p99_from_send: f64,
    pub sent: u64,
    pub failed: u64,
}

/// Pins the calling thread to `cpu` (threads it starts inherit the mask).
pub fn pin(cpu: usize) {
    if cpu == usize::MAX {
        return;
    }
    let mut set = nix::sched::CpuSet::new();
    if set.set(cpu).is_ok() {
        let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set);
    }
}

/// GET with a plain hyper client.
pub async fn reqwest_free_get(url: &str) -> String {
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let resp = client
        .request(hyper::Request::get(url).body(full("")).unwrap())
        .await
        .unwrap();
    String::from_utf8_lossy(&resp.into_body().collect().await.unwrap().to_bytes()).to_string()
}

/// The median time (µs) for a thread on one CPU to wake a thread on the other and be woken
/// back. On this kind of virtual machine it moves with the host's load (31 to 58 µs over one
/// session), and the figures of a run move with it, so each run prints it.
pub fn wake_round_trip(a: usize, b: usize) -> f64 {
    let (to_b, at_b) = std::sync::mpsc::channel::<()>();
    let (to_a, at_a) = std::sync::mpsc::channel::<()>();
    let echo = std::thread::spawn(move || {
        pin(b);
        while at_b.recv().is_ok() {
            if to_a.send(()).is_err() {
                break;
            }
        }
    });
    let mut times = std::thread::spawn(move || {
        pin(a);
        let mut times = Vec::with_capacity(2_000);
        for _ in 0..2_000 {
            let sent = Instant::now();
            to_b.send(()).unwrap();
            at_a.recv().unwrap();
            times.push(sent.elapsed());
        }
        times
    })
    .join()
    .unwrap();
    echo.join().unwrap();
    times.sort();
    times[times.len() / 2].as_secs_f64() * 1e6
}
