//! The executor a WebSocket connection runs its operations through: bounded parsing, error
//! codes, and one audit record per operation that did not record itself.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use async_graphql::{Data, Executor, Request as GqlRequest, Response as GqlResponse};
use futures::StreamExt;
use futures::stream::BoxStream;
use junction_domain::AuditEntry;
use junction_store::audit::AuditWriter;

use crate::graphql::JunctionSchema;
use crate::graphql::subscription::OperationAudited;
use crate::{ErrorCode, RequestAudit, RequestCtx};

/// Runs the schema for one connection, auditing each operation it starts.
#[derive(Clone)]
pub(super) struct AuditedExecutor {
    pub(super) schema: JunctionSchema,
    pub(super) audit: AuditWriter,
    pub(super) ctx: Arc<OnceLock<RequestCtx>>,
    /// Most fields a document may select once its fragments are expanded.
    pub(super) max_fields: usize,
}

impl AuditedExecutor {
    /// Parses the request's document within [`crate::graphql::bounds`] and hands it over
    /// parsed, so the schema does not parse it again; or gives the refusal.
    fn bounded(&self, request: GqlRequest) -> Result<GqlRequest, async_graphql::ServerError> {
        let doc = crate::graphql::bounds::parse(&request.query, self.max_fields)?;
        let mut request = request;
        request.set_parsed_query(doc);
        Ok(request)
    }
}

impl Executor for AuditedExecutor {
    async fn execute(&self, request: GqlRequest) -> GqlResponse {
        let mut response = match self.bounded(request) {
            Ok(request) => self.schema.execute(request).await,
            Err(e) => GqlResponse::from_errors(vec![e]),
        };
        crate::error::code_request_errors(&mut response.errors);
        response
    }

    fn execute_stream(
        &self,
        request: GqlRequest,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, GqlResponse> {
        let audited = OperationAudited::default();
        let flag = audited.0.clone();
        let operation_name = request.operation_name.clone();
        let variables_hash = crate::layer::variables_hash(&request.variables);
        let started = Instant::now();
        let (operation_type, inner) = match self.bounded(request) {
            Ok(mut request) => {
                let operation_type = request
                    .parsed_query()
                    .ok()
                    .and_then(|doc| {
                        crate::graphql::OperationSummary::from_document(doc)
                            .selected(operation_name.as_deref())
                    })
                    .unwrap_or("unknown");
                let stream =
                    Executor::execute_stream(&self.schema, request.data(audited), session_data);
                (operation_type, stream)
            }
            Err(e) => {
                let refused = GqlResponse::from_errors(vec![e]);
                let stream: BoxStream<'static, GqlResponse> =
                    Box::pin(futures::stream::once(async move { refused }));
                ("unknown", stream)
            }
        };
        let audit = self.audit.clone();
        let ctx = self.ctx.clone();
        let first = Arc::new(AtomicBool::new(true));
        inner
            .then(move |response| {
                let audit = audit.clone();
                let ctx = ctx.clone();
                let first = first.clone();
                let flag = flag.clone();
                let operation_name = operation_name.clone();
                let variables_hash = variables_hash.clone();
                async move {
                    let mut response = response;
                    crate::error::code_request_errors(&mut response.errors);
                    // The first response of an operation that did not audit itself records it.
                    if first.swap(false, Ordering::SeqCst) && !flag.load(Ordering::SeqCst) {
                        let code = response.errors.first().and_then(|e| {
                            match e.extensions.as_ref()?.get("code")? {
                                async_graphql::Value::String(s) => ErrorCode::parse(s),
                                _ => None,
                            }
                        });
                        // Every error carries a code by now; one that does not is internal.
                        let code = code.or_else(|| {
                            (!response.errors.is_empty()).then_some(ErrorCode::Internal)
                        });
                        let entry = RequestAudit::of(
                            ctx.get()
                                .map(|c| c.actor().entry())
                                .unwrap_or_else(|| AuditEntry::now("anonymous")),
                        )
                        .operation(operation_type, operation_name)
                        .variables(Some(variables_hash))
                        .ended(code, started.elapsed());
                        if let Err(e) = audit.record(entry).await {
                            tracing::error!(error = %e, "audit record for a WebSocket operation not written");
                            return GqlResponse::from_errors(vec![async_graphql::ServerError::new(
                                "internal error",
                                None,
                            )]);
                        }
                    }
                    response
                }
            })
            .boxed()
    }
}
