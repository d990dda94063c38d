//! The HTTP service (axum on tokio): JSON API under `/v1`, health, metrics,
//! checkpoints. One writer thread owns appends (group commit); reads run
//! concurrently against committed state under a read lock.
//!
//! Boundary: handlers translate HTTP to library calls and back; they never
//! judge events (that is `validate`) and never hold a lock across an await.

pub mod auth;
pub mod flags;
mod head_timeout;
pub mod metrics;
pub mod pages;
pub mod writer;

use crate::error::{Code, Rejection};
use crate::ledger::{Ledger, OnRejection, Outcome};
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use metrics::Metrics;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use writer::{SubmitError, WriterHandle};

/// Largest request body: a batch of envelopes.
pub const REQUEST_BODY_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Envelopes in one batch request.
pub const BATCH_ENVELOPES_MAX: usize = 4096;
/// A request (including reading its body) must finish within this, and
/// each request head must arrive within it (`head_timeout`).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Records in one export response; ask again with `from` for more.
pub const EXPORT_RECORDS_PER_REQUEST_MAX: u64 = 1_000_000;
/// Records read from the store per streamed export chunk.
const EXPORT_CHUNK_RECORDS: u64 = 1024;
/// How often the server issues a checkpoint when the ledger grew.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(60);
/// Households the start-up warm-up decodes per turn of the read lock.
const WARM_UP_HOUSEHOLDS_PER_TURN: usize = 1000;

/// The misuse-rule policy of this server process (`serve --policy`, or
/// `policy.toml` in the data directory), set once at start-up; the built-in
/// defaults when none was given. Flags on `/audit` and `/v1/flags` use it.
static POLICY: std::sync::OnceLock<crate::policy::Policy> = std::sync::OnceLock::new();

pub fn policy() -> &'static crate::policy::Policy {
    POLICY.get_or_init(crate::policy::Policy::default)
}

/// Sets the process's policy; only before the first use.
pub fn set_policy(policy: crate::policy::Policy) -> Result<(), String> {
    POLICY.set(policy).map_err(|_| "the server's policy is already set".to_string())
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub ledger: Arc<RwLock<Ledger>>,
    pub writer: WriterHandle,
    pub metrics: Arc<Metrics>,
    pub log_key: Option<Arc<crate::keys::KeyMaterial>>,
    pub flags: Arc<flags::FlagCache>,
}

impl AppState {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Ledger> {
        self.ledger.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// An API error: `{"error": code, "message": …}` with an HTTP status.
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    index: Option<usize>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), index: None }
    }

    fn rejection(rejection: &Rejection) -> ApiError {
        ApiError::new(status_of(rejection.code), rejection.code.as_str(), rejection.message.clone())
    }

    fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    fn storage(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "storage_error", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"error": self.code, "message": self.message});
        if let Some(index) = self.index {
            body["index"] = index.into();
        }
        (self.status, Json(body)).into_response()
    }
}

/// HTTP status of each SPEC §4 code.
pub fn status_of(code: Code) -> StatusCode {
    match code {
        Code::BadEnvelope | Code::Schema => StatusCode::BAD_REQUEST,
        Code::WrongLedger | Code::UnknownReference | Code::InvalidAmount => StatusCode::UNPROCESSABLE_ENTITY,
        Code::UnknownKey | Code::RevokedKey | Code::BadSignature | Code::Forbidden | Code::DualControlRequired => {
            StatusCode::FORBIDDEN
        }
        Code::DuplicateId | Code::InsufficientFunds => StatusCode::CONFLICT,
    }
}

type ApiResult = Result<Response, ApiError>;

/// The router: every route of the service (schemas/openapi.json lists them).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .route("/v1/events", post(post_events))
        .route("/v1/events/{id}", get(get_event))
        .route("/v1/records/{seq}", get(get_record))
        .route("/v1/export", get(export))
        .route("/v1/checkpoint", get(get_checkpoint).post(post_checkpoint))
        .route("/v1/proofs/inclusion", get(proof_inclusion))
        .route("/v1/proofs/consistency", get(proof_consistency))
        .route("/v1/balances", get(balances))
        .route("/v1/offices", get(offices))
        .route("/v1/accounts/{office}/{program}", get(account))
        .route("/v1/households/{id}", get(pages::reads::household))
        .route("/v1/flags", get(pages::reads::flags))
        .route("/v1/summary", get(pages::reads::summary))
        .merge(pages::routes())
        .layer(DefaultBodyLimit::max(REQUEST_BODY_BYTES_MAX))
        .layer(axum::middleware::from_fn(timeout))
        .with_state(state)
}

/// Every route as (method, path) — checked against schemas/openapi.json.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/metrics"),
    ("post", "/v1/events"),
    ("get", "/v1/events/{id}"),
    ("get", "/v1/records/{seq}"),
    ("get", "/v1/export"),
    ("get", "/v1/checkpoint"),
    ("post", "/v1/checkpoint"),
    ("get", "/v1/proofs/inclusion"),
    ("get", "/v1/proofs/consistency"),
    ("get", "/v1/balances"),
    ("get", "/v1/offices"),
    ("get", "/v1/accounts/{office}/{program}"),
    ("get", "/v1/households/{id}"),
    ("get", "/v1/flags"),
    ("get", "/v1/summary"),
    ("get", "/notice/{file}"),
    ("get", "/audit"),
];

/// Routes that OpenAPI documents under other paths: `/notice/{file}` serves
/// both the HTML page and, for a `.csv` suffix, its CSV (the router cannot
/// match a literal suffix after a parameter).
pub const DOCUMENTED_AS: &[(&str, &[&str])] =
    &[("/notice/{file}", &["/notice/{office_id}", "/notice/{office_id}.csv"])];

async fn timeout(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(StatusCode::REQUEST_TIMEOUT, "timeout", "the request took too long").into_response(),
    }
}

/// `GET /healthz`: 200 `{"status":"ok"}` while the ledger takes writes;
/// 503 `{"status":"degraded","writes":"refused",…}` after a failed commit
/// (full disk, I/O error), when only reads are served until an operator
/// fixes the storage and restarts (nothing acknowledged is lost: RELIABILITY.md).
async fn healthz(State(state): State<AppState>) -> Response {
    let ledger = state.read();
    let size = ledger.head().size;
    match ledger.write_failure() {
        None => Json(json!({"status": "ok", "writes": "accepted", "size": size})).into_response(),
        Some(error) => {
            let body = json!({"status": "degraded", "writes": "refused", "size": size,
                              "reason": format!("a commit failed ({error}); reads are served, restart after fixing the storage")});
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
    }
}

async fn metrics_text(State(state): State<AppState>) -> Response {
    let (size, undecoded) = {
        let ledger = state.read();
        (ledger.head().size, ledger.projections().households.undecoded() as u64)
    };
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render(size, undecoded)).into_response()
}

#[derive(Deserialize)]
struct BatchRequest<'a> {
    #[serde(borrow)]
    envelopes: Vec<&'a serde_json::value::RawValue>,
    #[serde(default)]
    atomic: bool,
}

#[derive(Deserialize)]
struct Probe {
    envelopes: Option<serde::de::IgnoredAny>,
}

fn outcome_json(outcome: &Outcome) -> Value {
    match outcome {
        Outcome::Appended { seq, hash } | Outcome::Repeated { seq, hash } => {
            json!({"seq": seq, "hash": crate::encoding::hex(hash)})
        }
        Outcome::Rejected(rejection) => rejection.to_json(),
        Outcome::Skipped => {
            json!({"error": "skipped", "message": "not applied: another event of the atomic batch was rejected"})
        }
    }
}

async fn submit(state: &AppState, envelopes: Vec<Vec<u8>>, mode: OnRejection) -> Result<Vec<Outcome>, ApiError> {
    let receiver = state.writer.submit(envelopes, mode).map_err(|error| match error {
        SubmitError::Busy => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", "the writer queue is full; retry"),
        SubmitError::Stopped => ApiError::storage("the writer has stopped"),
    })?;
    match receiver.await {
        Ok(Ok(outcomes)) => Ok(outcomes),
        Ok(Err(error)) => Err(ApiError::storage(format!("not recorded: {error}"))),
        Err(_) => Err(ApiError::storage("the writer stopped before answering")),
    }
}

/// `POST /v1/events`: one envelope, or `{"envelopes": [...], "atomic": bool}`.
async fn post_events(
    State(state): State<AppState>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult {
    let body = body.map_err(|rejection| {
        state.metrics.rejected(Code::BadEnvelope);
        // 413 for a body over REQUEST_BODY_BYTES_MAX, 400 for one that could not be read.
        ApiError::new(
            rejection.status(),
            "bad_envelope",
            format!("{} (at most {REQUEST_BODY_BYTES_MAX} bytes)", rejection.body_text()),
        )
    })?;
    let probe: Probe = serde_json::from_slice(&body).map_err(|e| {
        state.metrics.rejected(Code::BadEnvelope);
        ApiError::new(StatusCode::BAD_REQUEST, "bad_envelope", format!("not JSON: {e}"))
    })?;
    if probe.envelopes.is_none() {
        let outcomes = submit(&state, vec![body.to_vec()], OnRejection::Stop).await?;
        return match outcomes.first() {
            Some(Outcome::Rejected(rejection)) => Err(ApiError::rejection(rejection)),
            Some(outcome) => Ok(Json(outcome_json(outcome)).into_response()),
            None => Err(ApiError::storage("no outcome")),
        };
    }
    let batch: BatchRequest<'_> =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("not a batch request: {e}")))?;
    if batch.envelopes.is_empty() || batch.envelopes.len() > BATCH_ENVELOPES_MAX {
        return Err(ApiError::bad_request(format!("a batch holds 1-{BATCH_ENVELOPES_MAX} envelopes")));
    }
    let envelopes: Vec<Vec<u8>> = batch.envelopes.iter().map(|raw| raw.get().as_bytes().to_vec()).collect();
    let mode = if batch.atomic { OnRejection::Atomic } else { OnRejection::KeepGoing };
    let outcomes = submit(&state, envelopes, mode).await?;
    if batch.atomic {
        if let Some((index, Outcome::Rejected(rejection))) =
            outcomes.iter().enumerate().find(|(_, o)| matches!(o, Outcome::Rejected(_)))
        {
            let mut error = ApiError::rejection(rejection);
            error.index = Some(index);
            return Err(error);
        }
    }
    let results: Vec<Value> = outcomes.iter().map(outcome_json).collect();
    Ok(Json(json!({"results": results})).into_response())
}

fn record_line(ledger: &Ledger, seq: u64) -> Result<Vec<u8>, ApiError> {
    let store = ledger.store();
    let record = store.record(seq).map_err(|e| ApiError::storage(e.to_string()))?;
    let record = record.ok_or_else(|| ApiError::not_found(format!("no record {seq}")))?;
    let prev = match seq {
        0 => crate::chain::GENESIS_PREV,
        _ => store.record(seq - 1).map_err(|e| ApiError::storage(e.to_string()))?.map(|r| r.hash).unwrap_or_default(),
    };
    let mut line = Vec::new();
    crate::chain::export_line(&mut line, seq, &prev, record.recorded_at_ms, &record.envelope_bytes, &record.hash);
    Ok(line)
}

fn json_bytes(bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

async fn get_record(State(state): State<AppState>, Path(seq): Path<u64>) -> ApiResult {
    Ok(json_bytes(record_line(&state.read(), seq)?))
}

async fn get_event(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let ledger = state.read();
    let event = ledger.store().event(&id).map_err(|e| ApiError::storage(e.to_string()))?;
    let event = event.ok_or_else(|| ApiError::not_found(format!("no event {id:?}")))?;
    Ok(json_bytes(record_line(&ledger, event.seq)?))
}

#[derive(Deserialize)]
struct ExportQuery {
    from: Option<u64>,
    to: Option<u64>,
}

/// `GET /v1/export?from=&to=`: JSON Lines records, streamed in chunks.
async fn export(State(state): State<AppState>, Query(query): Query<ExportQuery>) -> ApiResult {
    let size = state.read().head().size;
    let from = query.from.unwrap_or(0);
    let to = query.to.unwrap_or(size).min(size).min(from.saturating_add(EXPORT_RECORDS_PER_REQUEST_MAX));
    if from > to {
        return Err(ApiError::bad_request("from is beyond to"));
    }
    let stream = futures_util::stream::unfold(from, move |next| {
        let state = state.clone();
        async move {
            if next >= to {
                return None;
            }
            let end = (next + EXPORT_CHUNK_RECORDS).min(to);
            let chunk = tokio::task::spawn_blocking(move || export_chunk(&state, next, end)).await;
            let chunk = chunk.unwrap_or_else(|e| Err(e.to_string()));
            Some((chunk.map(Bytes::from).map_err(std::io::Error::other), end))
        }
    });
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], Body::from_stream(stream)).into_response())
}

fn export_chunk(state: &AppState, from: u64, to: u64) -> Result<Vec<u8>, String> {
    let ledger = state.read();
    let store = ledger.store();
    let mut prev = match from {
        0 => crate::chain::GENESIS_PREV,
        _ => store.record(from - 1).map_err(|e| e.to_string())?.map(|r| r.hash).unwrap_or_default(),
    };
    let mut out = Vec::new();
    for record in store.records_from(from).take((to - from) as usize) {
        let record = record.map_err(|e| e.to_string())?;
        crate::chain::export_line(
            &mut out,
            record.seq,
            &prev,
            record.recorded_at_ms,
            &record.envelope_bytes,
            &record.hash,
        );
        out.push(b'\n');
        prev = record.hash;
    }
    Ok(out)
}

async fn get_checkpoint(State(state): State<AppState>) -> ApiResult {
    let note = state.read().latest_checkpoint().map_err(|e| ApiError::storage(e.to_string()))?;
    let note = note.ok_or_else(|| ApiError::not_found("no checkpoint issued yet"))?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], note).into_response())
}

/// `POST /v1/checkpoint`: issue one now (signed request: any registered key).
async fn post_checkpoint(State(state): State<AppState>, method: Method, uri: Uri, headers: HeaderMap) -> ApiResult {
    authenticate(&state, &method, &uri, &headers)?;
    let note = issue_checkpoint(&state).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], note).into_response())
}

/// Issues a checkpoint of the current tree (the write lock is taken off the async threads).
pub async fn issue_checkpoint(state: &AppState) -> Result<String, ApiError> {
    let key = state.log_key.clone().ok_or_else(|| ApiError::storage("the server has no log key"))?;
    let state = state.clone();
    let issued = tokio::task::spawn_blocking(move || {
        let mut ledger = writer::write_lock(&state.ledger, &state.flags);
        let signing = key.signing_key()?;
        let note = ledger.issue_checkpoint(&key.key_id, signing)?;
        state.metrics.checkpoint();
        Ok::<String, String>(note)
    })
    .await
    .map_err(|e| ApiError::storage(e.to_string()))?;
    issued.map_err(ApiError::storage)
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Checks a signed read request; returns the key id.
pub fn authenticate(state: &AppState, method: &Method, uri: &Uri, headers: &HeaderMap) -> Result<String, ApiError> {
    let header = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let ledger = state.read();
    auth::authenticate(header, method.as_str(), path, now_ms(), ledger.state())
        .map_err(|message| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message))
}

#[derive(Deserialize)]
struct InclusionQuery {
    seq: u64,
    size: Option<u64>,
}

fn proof_error(error: crate::ledger::ProofRequestError) -> ApiError {
    match error {
        crate::ledger::ProofRequestError::OutOfRange(message) => ApiError::bad_request(message),
        crate::ledger::ProofRequestError::Storage(error) => ApiError::storage(error.to_string()),
    }
}

fn hexes(hashes: &[[u8; 32]]) -> Vec<String> {
    hashes.iter().map(|h| crate::encoding::hex(h)).collect()
}

async fn proof_inclusion(State(state): State<AppState>, Query(query): Query<InclusionQuery>) -> ApiResult {
    let ledger = state.read();
    let size = query.size.unwrap_or(ledger.head().size);
    let proof = ledger.inclusion_proof(query.seq, size).map_err(proof_error)?;
    let root = ledger.root_at(size).map_err(proof_error)?;
    let leaf = ledger.store().record(query.seq).map_err(|e| ApiError::storage(e.to_string()))?.map(|r| r.hash);
    Ok(Json(json!({"index": query.seq, "size": size, "proof": hexes(&proof),
        "leaf": crate::encoding::hex(&leaf.unwrap_or_default()), "root": crate::encoding::hex(&root)}))
    .into_response())
}

#[derive(Deserialize)]
struct ConsistencyQuery {
    from: u64,
    to: Option<u64>,
}

async fn proof_consistency(State(state): State<AppState>, Query(query): Query<ConsistencyQuery>) -> ApiResult {
    let ledger = state.read();
    let to = query.to.unwrap_or(ledger.head().size);
    let proof = ledger.consistency_proof(query.from, to).map_err(proof_error)?;
    let from_root = ledger.root_at(query.from).map_err(proof_error)?;
    let to_root = ledger.root_at(to).map_err(proof_error)?;
    Ok(Json(json!({"from": query.from, "to": to, "proof": hexes(&proof),
        "from_root": crate::encoding::hex(&from_root), "to_root": crate::encoding::hex(&to_root)}))
    .into_response())
}

async fn balances(State(state): State<AppState>) -> ApiResult {
    Ok(Json(crate::cli::balances_json(state.read().state())).into_response())
}

async fn offices(State(state): State<AppState>) -> ApiResult {
    let ledger = state.read();
    let mut offices: Vec<Value> = ledger
        .state()
        .offices
        .iter()
        .map(|(id, o)| {
            json!({"office_id": id, "name": o.name, "level": o.level, "parent": o.parent,
            "region_code": o.region_code, "contact": o.contact})
        })
        .collect();
    offices.sort_by(|a, b| a["office_id"].as_str().cmp(&b["office_id"].as_str()));
    Ok(Json(json!({"offices": offices})).into_response())
}

/// `GET /v1/accounts/{office}/{program}`: balance, FIFO lots with their ages, and flows.
async fn account(State(state): State<AppState>, Path((office, program)): Path<(String, String)>) -> ApiResult {
    let ledger = state.read();
    let account = crate::state::account_id(&office, &program);
    if !ledger.state().balances.contains_key(&account) {
        return Err(ApiError::not_found(format!("no fund account {account}")));
    }
    let view = crate::report::account_view(ledger.projections(), ledger.state(), &account)
        .unwrap_or_else(|| json!({"account": account, "balance_fen": ledger.state().balance(&account)}));
    Ok(Json(view).into_response())
}

/// Opens the ledger and serves until Ctrl-C or SIGTERM; the writer drains
/// and a state snapshot is saved before exit.
pub fn serve(data: &std::path::Path, log_key: Option<crate::keys::KeyMaterial>, addr: &str) -> Result<(), String> {
    let ledger = Ledger::open(data).map_err(|e| e.to_string())?;
    if let (Some(key), Some((log_id, log_public))) = (&log_key, ledger.state().log_key.clone()) {
        if key.key_id != log_id || key.public_key != log_public {
            return Err(format!("--log-key is {}, but this ledger's log key is {log_id}", key.key_id));
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(serve_async(ledger, log_key, addr, None, None))
}

/// Runs the service on an already-open ledger. `ready` receives the bound
/// address (tests bind port 0); `stop`, when given, replaces the signals.
pub async fn serve_async(
    ledger: Ledger,
    log_key: Option<crate::keys::KeyMaterial>,
    addr: &str,
    ready: Option<tokio::sync::oneshot::Sender<std::net::SocketAddr>>,
    stop: Option<tokio::sync::oneshot::Receiver<()>>,
) -> Result<(), String> {
    serve_async_with(ledger, log_key, addr, ready, stop, flags::FlagCache::default()).await
}

/// `serve_async` with a given flag cache (tests choose when it evaluates in
/// the background).
pub async fn serve_async_with(
    ledger: Ledger,
    log_key: Option<crate::keys::KeyMaterial>,
    addr: &str,
    ready: Option<tokio::sync::oneshot::Sender<std::net::SocketAddr>>,
    stop: Option<tokio::sync::oneshot::Receiver<()>>,
    flags_cache: flags::FlagCache,
) -> Result<(), String> {
    let ledger = Arc::new(RwLock::new(ledger));
    let metrics = Arc::new(Metrics::default());
    let flags = Arc::new(flags_cache);
    let (writer, writer_thread) = writer::start(ledger.clone(), metrics.clone(), flags.clone());
    let state = AppState { ledger, writer, metrics, log_key: log_key.map(Arc::new), flags };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    let listener = head_timeout::HeadTimeoutListener::new(listener, REQUEST_TIMEOUT);
    tracing::info!(%bound, "sunledger serving");
    if let Some(ready) = ready {
        let _ = ready.send(bound);
    }
    let checkpoints = tokio::spawn(periodic_checkpoints(state.clone()));
    let stop_warm_up = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let warm_up = {
        let (ledger, stop, flags) = (state.ledger.clone(), stop_warm_up.clone(), state.flags.clone());
        std::thread::Builder::new()
            .name("warm-up".into())
            .spawn(move || {
                if warm_up(&ledger, &stop) {
                    // A ledger opened from a large snapshot: its flags are
                    // evaluated now, not by the first read that needs them.
                    flags.start_refresh(&ledger);
                }
            })
            .map_err(|e| format!("cannot start the warm-up thread: {e}"))?
    };
    let app = router(state.clone());
    let shutdown = async move {
        match stop {
            Some(stop) => {
                let _ = stop.await;
            }
            None => shutdown_signal().await,
        }
    };
    // Peer addresses let /audit tell loopback requests from others.
    let app = app.into_make_service_with_connect_info::<head_timeout::PeerAddr>();
    let served = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
    checkpoints.abort();
    stop_warm_up.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = tokio::task::spawn_blocking(move || warm_up.join()).await;
    drop(state);
    let _ = tokio::task::spawn_blocking(move || writer_thread.join()).await;
    served.map_err(|e| e.to_string())
}

/// Decodes, in the background, what a reopen left encoded in the mapped
/// snapshot (`crate::households`): every household, then the card and person
/// groups, a turn of the read lock per `WARM_UP_HOUSEHOLDS_PER_TURN`
/// households, so the writer is held up at most one turn at a time (7–8 ms:
/// decoding all 360,000 households of the 10 M ledger took 2.5–2.8 s).
/// The server answers from the start; until the warm-up reaches a village,
/// its first page also pays for decoding its households (BENCHMARKS.md).
///
/// Returns whether it decoded anything and finished.
fn warm_up(ledger: &RwLock<Ledger>, stop: &std::sync::atomic::AtomicBool) -> bool {
    let read = || ledger.read().unwrap_or_else(|poisoned| poisoned.into_inner());
    let started = std::time::Instant::now();
    let ids: Vec<crate::sym::Sym> = {
        let ledger = read();
        let households = &ledger.projections().households;
        if households.undecoded() == 0 {
            return false;
        }
        households.keys().copied().collect()
    };
    for turn in ids.chunks(WARM_UP_HOUSEHOLDS_PER_TURN) {
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            return false;
        }
        let ledger = read();
        for id in turn {
            let _ = ledger.projections().households.get(id);
        }
    }
    let ledger = read();
    let _ = (ledger.projections().cards.get(), ledger.projections().persons.get());
    tracing::info!(households = ids.len(), ms = started.elapsed().as_millis() as u64, "warm-up: decoded the snapshot");
    true
}

async fn periodic_checkpoints(state: AppState) {
    let mut interval = tokio::time::interval(CHECKPOINT_INTERVAL);
    // The first tick is immediate: a ledger that grew while the server was
    // down (an import) gets its checkpoint at start, one already covered by
    // its latest checkpoint gets none.
    let mut last_size = latest_checkpoint_size(&state).unwrap_or(u64::MAX);
    loop {
        interval.tick().await;
        let size = state.read().head().size;
        if size == 0 || size == last_size || state.log_key.is_none() {
            continue;
        }
        match issue_checkpoint(&state).await {
            Ok(_) => last_size = size,
            Err(error) => tracing::warn!(message = %error.message, "periodic checkpoint failed"),
        }
    }
}

/// The size stated by the latest stored checkpoint, if it can be read.
fn latest_checkpoint_size(state: &AppState) -> Option<u64> {
    let text = state.read().latest_checkpoint().ok()??;
    let note = crate::checkpoint::Note::parse(&text).ok()?;
    crate::checkpoint::parse_checkpoint(&note.body).ok().map(|checkpoint| checkpoint.size)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: draining the writer");
}
