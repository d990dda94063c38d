//! Pages for people, and the read routes that go with them:
//!
//! - `GET /notice/{office_id}` and `GET /notice/{office_id}.csv` (public):
//!   an office's notice page (公告公示, SPEC §9) as zh-CN HTML, or its
//!   rosters as CSV. The router cannot match a literal suffix after a
//!   parameter (matchit 0.8), so the route is `/notice/{file}` and the
//!   `.csv` suffix is split off here; OpenAPI documents both paths.
//! - `GET /audit` (the auditor's page: flags and fund-flow charts). Flags
//!   name households, so it is served only to requests from a loopback
//!   address that did not come through a proxy (no `Forwarded` or
//!   `X-Forwarded-For` header), or to a signed request (auth.rs) from
//!   anywhere. Browsers cannot sign: a remote auditor reaches it through an
//!   SSH tunnel, or uses the signed JSON `GET /v1/flags`.
//! - JSON (in [`reads`]): `GET /v1/households/{id}` and `GET /v1/flags`
//!   (signed requests), `GET /v1/summary` (public).
//!
//! Boundary: handlers gather data under the ledger's read lock on a
//! blocking thread and render it; what a notice shows is `notice`'s, what
//! the flags are is `rules`'s. The notice index is part of the projections.

mod audit;
mod csv;
pub mod html;
pub mod reads;

use super::{ApiError, AppState};
use crate::date::Period;
use crate::notice::{CheckpointView, NoticeQuery};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, request::Parts, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

pub use csv::{BOM, CSV_COLUMNS};

/// The suffix that asks for a notice's rosters as CSV.
pub const CSV_SUFFIX: &str = ".csv";
/// Headers that show a request came through a proxy.
const PROXY_HEADERS: [&str; 3] = ["forwarded", "x-forwarded-for", "x-real-ip"];

/// The page routes.
pub fn routes() -> Router<AppState> {
    Router::new().route("/notice/{file}", get(notice)).route("/audit", get(audit))
}

#[derive(Deserialize)]
struct NoticeParams {
    program: Option<String>,
    period: Option<String>,
}

fn html_response(status: StatusCode, page: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response()
}

/// `GET /notice/{office_id}` (HTML) and `GET /notice/{office_id}.csv`.
async fn notice(
    State(state): State<AppState>,
    Path(file): Path<String>,
    Query(params): Query<NoticeParams>,
) -> Result<Response, ApiError> {
    let (office, csv) = match file.strip_suffix(CSV_SUFFIX) {
        Some(office) => (office.to_string(), true),
        None => (file, false),
    };
    let period = match params.period.as_deref() {
        None | Some("") => None,
        Some(text) => Some(
            Period::parse(text)
                .ok_or_else(|| ApiError::bad_request(format!("period {text:?} is not YYYY, YYYY-Qn or YYYY-MM")))?,
        ),
    };
    let query = NoticeQuery { program: params.program.filter(|p| !p.is_empty()), period };
    let rendered = reads::blocking(move || {
        let ledger = state.read();
        let note = ledger.latest_checkpoint().map_err(|e| ApiError::storage(e.to_string()))?;
        let state = ledger.state();
        let checkpoint = CheckpointView::new(state, note);
        let notice = crate::notice::office_notice(state, ledger.projections(), &office, &query, checkpoint)
            .ok_or_else(|| ApiError::not_found(format!("no office {office:?}")))?;
        if csv {
            let text = csv::roster_csv(&notice).map_err(ApiError::storage)?;
            return Ok(Rendered::Csv { office, text });
        }
        let names = |id: &str| crate::notice::office_name(state, id);
        Ok(Rendered::Html(html::notice_page(&notice, &names)))
    })
    .await?;
    Ok(match rendered {
        Rendered::Csv { office, text } => {
            let disposition = format!("attachment; filename=\"notice-{office}.csv\"");
            let headers = [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (header::CONTENT_DISPOSITION, disposition),
            ];
            (headers, text).into_response()
        }
        Rendered::Html(page) => html_response(StatusCode::OK, page),
    })
}

/// A notice as the request asked for it.
enum Rendered {
    Html(String),
    /// Office ids are `[A-Za-z0-9._:-]` (SPEC §3), safe in a file name.
    Csv {
        office: String,
        text: String,
    },
}

/// Whether a request may see the auditor's page: signed by a registered
/// key, or from loopback and not through a proxy.
fn audit_access(state: &AppState, parts: &Parts) -> Result<(), String> {
    if parts.headers.contains_key(header::AUTHORIZATION) {
        return super::authenticate(state, &parts.method, &parts.uri, &parts.headers)
            .map(|_| ())
            .map_err(|e| e.message);
    }
    let peer = parts.extensions.get::<ConnectInfo<super::head_timeout::PeerAddr>>().map(|info| info.0 .0);
    let loopback = peer.is_some_and(|peer| peer.ip().is_loopback());
    if loopback && !through_proxy(&parts.headers) {
        return Ok(());
    }
    Err("审计页面列出涉及农户的疑点，只向本机（loopback）直接访问或签名请求开放。".to_string())
}

fn through_proxy(headers: &HeaderMap) -> bool {
    PROXY_HEADERS.iter().any(|name| headers.contains_key(*name))
}

#[derive(Deserialize)]
struct AuditParams {
    rule: Option<String>,
    office: Option<String>,
    severity: Option<String>,
}

/// `GET /audit?rule=&office=&severity=`.
async fn audit(
    State(state): State<AppState>,
    parts: Parts,
    Query(params): Query<AuditParams>,
) -> Result<Response, ApiError> {
    if let Err(reason) = audit_access(&state, &parts) {
        return Ok(html_response(StatusCode::FORBIDDEN, audit::refusal_page(&reason)));
    }
    let empty_is_none = |value: Option<String>| value.filter(|v| !v.is_empty());
    let filter = crate::report::FlagFilter::parse(
        empty_is_none(params.rule).as_deref(),
        empty_is_none(params.office).as_deref(),
        empty_is_none(params.severity).as_deref(),
    )
    .map_err(ApiError::bad_request)?;
    let page = reads::blocking(move || {
        let ledger = state.read();
        let all = state.flags.flags(&state.ledger, &ledger);
        let fund_offices = audit::offices_with_fund_flags(&all.flags);
        let flags = crate::report::filter_flags(&ledger, &all.flags, &filter).map_err(ApiError::bad_request)?;
        audit::audit_page(&ledger, &flags, all.size, &filter, &fund_offices).map_err(ApiError::storage)
    })
    .await?;
    Ok(html_response(StatusCode::OK, page))
}
