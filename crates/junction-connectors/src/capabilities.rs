//! The capabilities beyond delivering a case, one trait each, with what they take and give.
//! Their shapes are fixed here so that update polling, imports, category sync, CSV feeds and
//! look-ups plug into one pipeline; each kind that offers one implements it in its own folder
//! and sets it in its [`Capabilities`](crate::Capabilities).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
pub use junction_domain::InboundUpdate;
use junction_domain::{Case, CaseUpdate};
use serde_json::Value;

use crate::{Accepted, ConnectorError, Refused};

/// A time window `[from, to]`, as Open311's `start_date`/`end_date`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// A status change or comment going to a back-end that holds the case as `external_ref`.
#[derive(Debug, Clone, Copy)]
pub struct OutboundUpdate<'a> {
    pub case: &'a Case,
    /// The back-end's own reference for the case.
    pub external_ref: &'a str,
    pub update: &'a CaseUpdate,
    /// The same on every attempt: the back-end de-duplicates on it.
    pub idempotency_key: &'a str,
}

/// A case a back-end holds, as it reported it, for import.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundRequest {
    pub external_ref: String,
    pub service_code: String,
    pub status: Option<String>,
    pub description: String,
    pub lat: Option<f64>,
    pub long: Option<f64>,
    pub address: Option<String>,
    /// Junction's id, where the case started in Junction and the back-end echoes it.
    pub our_id: Option<String>,
    pub attributes: BTreeMap<String, Vec<String>>,
    pub media_urls: Vec<String>,
    pub requested_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// A category a back-end offers (an Open311 service).
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceDef {
    pub code: String,
    pub name: String,
    pub group: Option<String>,
    pub description: String,
    pub keywords: Vec<String>,
}

/// One file of a regular export, as read.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedFile {
    /// Its name in the directory or URL it came from.
    pub name: String,
    /// SHA-256 of its bytes: a file is processed once.
    pub sha256: String,
    pub bytes: Vec<u8>,
}

/// Sends an update on a case the back-end holds.
#[async_trait::async_trait]
pub trait DeliverUpdate: Send + Sync {
    async fn deliver_update(&self, out: &OutboundUpdate<'_>) -> Result<Accepted, Refused>;
}

/// Reads the updates a back-end made in a window, every page of them.
#[async_trait::async_trait]
pub trait PollUpdates: Send + Sync {
    async fn poll_updates(&self, window: Window) -> Result<Vec<InboundUpdate>, ConnectorError>;
}

/// Reads the cases a back-end holds that changed in a window.
#[async_trait::async_trait]
pub trait FetchRequests: Send + Sync {
    async fn fetch_requests(&self, window: Window) -> Result<Vec<InboundRequest>, ConnectorError>;
}

/// Reads a back-end's categories.
#[async_trait::async_trait]
pub trait FetchServices: Send + Sync {
    async fn fetch_services(&self) -> Result<Vec<ServiceDef>, ConnectorError>;
}

/// Reads the files of a regular export that are there now.
#[async_trait::async_trait]
pub trait ReadFeed: Send + Sync {
    async fn read_feed(&self) -> Result<Vec<FeedFile>, ConnectorError>;
}

/// Answers a question while a person waits: typed inputs in, typed outputs back, by name.
#[async_trait::async_trait]
pub trait LookUp: Send + Sync {
    async fn look_up(
        &self,
        input: &BTreeMap<String, Value>,
    ) -> Result<BTreeMap<String, Value>, ConnectorError>;
}
