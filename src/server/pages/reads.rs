//! JSON read routes over the projections.
//!
//! - `GET /v1/households/{id}` and `GET /v1/flags?rule=&office=&severity=`
//!   carry personal data (masked names with keyed digests; flags name
//!   households): signed requests only (auth.rs), else 401.
//! - `GET /v1/summary?office=`: the public fund-flow summary per office and
//!   program (fen), as `sunledger summary --json` gives it.
//!
//! Boundary: the views are `report`'s; flags use the default policy (the
//! server takes no policy file yet).

use super::super::{authenticate, ApiError, AppState};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

type ReadResult = Result<Response, ApiError>;

/// Runs `work` on a blocking thread (handlers take the ledger's lock there).
pub(super) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| ApiError::storage(e.to_string()))?
}

/// `GET /v1/households/{id}` (signed).
pub async fn household(
    State(state): State<AppState>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> ReadResult {
    authenticate(&state, &method, &uri, &headers)?;
    let view = blocking(move || {
        let ledger = state.read();
        let flags = state.flags.flags(&state.ledger, &ledger);
        let mut view = crate::report::household_view(ledger.projections(), &id, &flags.flags)
            .ok_or_else(|| ApiError::not_found(format!("no household {id:?}")))?;
        view["flags_as_of_size"] = flags.size.into();
        Ok(view)
    })
    .await?;
    Ok(Json(view).into_response())
}

#[derive(Deserialize)]
pub struct FlagParams {
    rule: Option<String>,
    office: Option<String>,
    severity: Option<String>,
}

/// `GET /v1/flags?rule=&office=&severity=` (signed): SPEC §7 flags with
/// their latest reviews.
pub async fn flags(
    State(state): State<AppState>,
    Query(params): Query<FlagParams>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> ReadResult {
    authenticate(&state, &method, &uri, &headers)?;
    let filter =
        crate::report::FlagFilter::parse(params.rule.as_deref(), params.office.as_deref(), params.severity.as_deref())
            .map_err(ApiError::bad_request)?;
    let body = blocking(move || {
        let ledger = state.read();
        let all = state.flags.flags(&state.ledger, &ledger);
        let flags = crate::report::filter_flags(&ledger, &all.flags, &filter).map_err(ApiError::bad_request)?;
        Ok(json!({"as_of": ledger.state().clock, "size": ledger.head().size, "flags_as_of_size": all.size,
            "count": flags.len(), "flags": flags}))
    })
    .await?;
    Ok(Json(body).into_response())
}

#[derive(Deserialize)]
pub struct SummaryParams {
    office: Option<String>,
}

/// `GET /v1/summary?office=` (public).
pub async fn summary(State(state): State<AppState>, Query(params): Query<SummaryParams>) -> ReadResult {
    let body = blocking(move || {
        let ledger = state.read();
        let office = params.office.as_deref().filter(|o| !o.is_empty());
        let rows =
            crate::report::summary_rows(ledger.state(), ledger.projections(), office).map_err(ApiError::not_found)?;
        Ok(json!({"as_of": ledger.state().clock, "office": office, "accounts": rows}))
    })
    .await?;
    Ok(Json(body).into_response())
}
