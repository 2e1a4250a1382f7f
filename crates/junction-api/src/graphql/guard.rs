//! The guard every field and mutation names: `#[graphql(guard = "Can(Action::…)")]`.

use async_graphql::{Context, Guard};
use junction_domain::{Action, authorise};

use crate::{ApiError, RequestCtx};

/// Allows the field only when [`authorise`] allows the action for the request's principal.
pub struct Can(pub Action);

impl Guard for Can {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        let request = ctx
            .data::<RequestCtx>()
            .map_err(|_| ApiError::Internal("request context missing".into()))?;
        authorise(&request.principal, self.0).map_err(|denied| ApiError::Forbidden(denied).into())
    }
}
