//! The web view: `/ui` on the HTTP port, a thin door over the task service
//! (`service.rs`) like the gRPC doors. Each handler resolves the caller
//! (a bearer header or the page's session cookie, through `auth.rs`), turns
//! the query into model types, calls the service and renders the outcome as
//! JSON; a vSphere fault becomes the HTTP status of its gRPC code with the
//! fault in the body. No rule, privilege check or retry lives here: a caller
//! without `System.View` gets the service's `NoPermission`, a cancel without
//! `Global.CancelTask` the model's.
//!
//! - `GET /ui` (and `/ui/app.js`, `/ui/app.css`): the page, embedded in the
//!   binary (no build step).
//! - `GET /ui/api/session`: who calls, with which privileges (the page hides
//!   what the caller may not do); `POST` logs in with a token (set as an
//!   HttpOnly, SameSite=Strict cookie, `Secure` on TLS), `DELETE` logs out.
//! - `GET /ui/api/tasks`: one page of ListTasks (`state`, `entity`,
//!   `initiator`, `pageSize`, `pageToken`); `GET /ui/api/tasks/KEY`,
//!   `/ui/api/tasks/KEY/history`; `POST /ui/api/tasks/KEY/cancel`.
//! - `GET /ui/api/watch`: WatchTasks as Server-Sent Events (`task=KEY`, or
//!   the `entity` / `initiator` filter, from revision `from`); every change
//!   event's id is its revision, so a browser that reconnects (to this node
//!   or, after a restart, the same URL) sends `Last-Event-ID` and resumes at
//!   the next revision, which is the same on every replica.
//! - `GET /ui/api/cluster`: Cluster.Status (needs no credentials, as on gRPC;
//!   the state digest only with `digest=1`).
//!
//! Cross-site requests: every mutating request (login, logout, cancel) must
//! carry the `x-vtask-csrf: 1` header, which a cross-site form cannot send
//! and a cross-site script cannot send without a CORS preflight this port
//! never approves; an `Origin` or `Sec-Fetch-Site` header, when present, must
//! name this origin. The cookie is `SameSite=Strict` as well.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::{Stream, StreamExt};
use serde_json::{json, Value};
use tokio::sync::watch;
use vtask_model::{
    Caller, Command, FilterByEntity, FilterByUsername, MethodFault, MoRef, Privilege,
    State as TaskState, TaskFilterSpec,
};

use crate::service::{Consistency, EventKind, Role, ServiceError, TaskService, WatchTarget};

/// The session cookie: the caller's token, readable by no script.
pub const COOKIE: &str = "vtask_token";
/// The header every mutating request of the page carries (see the module docs).
pub const CSRF_HEADER: &str = "x-vtask-csrf";
/// How long a browser waits before it reconnects a broken event stream.
const RECONNECT: Duration = Duration::from_millis(1000);
/// A comment on an idle event stream, so proxies and the browser see it live.
const KEEP_ALIVE: Duration = Duration::from_secs(10);

const INDEX_HTML: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const APP_CSS: &str = include_str!("../assets/app.css");

/// The page's Content-Security-Policy: its own scripts, styles and
/// connections only, in no frame.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// What the web view's handlers share.
#[derive(Clone)]
pub struct Ui {
    tasks: TaskService,
    node_id: u64,
    /// The page is served over TLS (the cookie is `Secure`).
    tls: bool,
    /// Becomes true when the node stops: open event streams end.
    stopping: watch::Receiver<bool>,
}

impl Ui {
    pub fn new(tasks: TaskService, node_id: u64, tls: bool, stopping: watch::Receiver<bool>) -> Ui {
        Ui {
            tasks,
            node_id,
            tls,
            stopping,
        }
    }

    fn caller(&self, headers: &HeaderMap) -> Caller {
        let cookie = cookie_token(headers);
        self.tasks.auth().http_caller(headers, cookie.as_deref())
    }
}

/// The routes of the web view.
pub fn routes(ui: Ui) -> Router {
    Router::new()
        .route("/ui", get(index))
        .route("/ui/", get(index))
        .route("/ui/app.js", get(app_js))
        .route("/ui/app.css", get(app_css))
        .route("/ui/api/session", get(session).post(login).delete(logout))
        .route("/ui/api/tasks", get(list_tasks))
        .route("/ui/api/tasks/:key", get(get_task))
        .route("/ui/api/tasks/:key/history", get(task_history))
        .route("/ui/api/tasks/:key/cancel", post(cancel_task))
        .route("/ui/api/watch", get(watch_tasks))
        .route("/ui/api/cluster", get(cluster))
        .with_state(ui)
}

/// On a TLS node's plain-text connections: the page and its API are served
/// over TLS only (a token must not cross plain text), so a browser is sent
/// to the same address over https and anything else is refused, saying so.
/// `/health`, `/metrics` and `/status` stay plain for probes.
pub async fn tls_only(headers: HeaderMap, uri: axum::http::Uri) -> Response {
    let path = uri.path();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()));
    let message = "this node serves the web view over TLS only: open it with https:// on this port (/health, /metrics and /status are served in plain HTTP too)\n";
    match host {
        Some(host) if path == "/ui" || path == "/ui/" => (
            StatusCode::PERMANENT_REDIRECT,
            [(header::LOCATION, format!("https://{host}/ui"))],
            message,
        )
            .into_response(),
        _ if path.starts_with("/ui") => (StatusCode::FORBIDDEN, message).into_response(),
        _ if path.starts_with("/sdk") => (
            StatusCode::FORBIDDEN,
            "this node serves the vSphere SOAP API over TLS only: connect with https:// on this port\n",
        )
            .into_response(),
        _ => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}

// ---------------------------------------------------------------------------
// Static assets

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

async fn index() -> Response {
    let mut response = asset("text/html; charset=utf-8", INDEX_HTML);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

async fn app_js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

async fn app_css() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}

// ---------------------------------------------------------------------------
// Errors

/// A refusal or failure, rendered as JSON: `{"message": ..., "fault": ...}`.
pub struct ApiError {
    status: StatusCode,
    message: String,
    fault: Option<MethodFault>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            fault: None,
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> ApiError {
        match error {
            ServiceError::Fault(fault) => ApiError {
                status: http_status(vtask_proto::convert::fault_code(&fault.kind)),
                message: fault.message(),
                fault: Some(fault),
            },
            ServiceError::Unavailable(message) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
            }
            ServiceError::Exhausted(message) => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, message)
            }
            ServiceError::Internal(message) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
            }
        }
    }
}

impl From<MethodFault> for ApiError {
    fn from(fault: MethodFault) -> ApiError {
        ServiceError::Fault(fault).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"message": self.message, "fault": self.fault});
        (self.status, no_store(), Json(body)).into_response()
    }
}

/// The HTTP status of a gRPC code, as `google.rpc.Code` documents it.
fn http_status(code: tonic::Code) -> StatusCode {
    use tonic::Code;
    match code {
        Code::Ok => StatusCode::OK,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        // 499 Client Closed Request, as google.rpc.Code maps CANCELLED.
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::Internal | Code::Unknown | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn no_store() -> [(header::HeaderName, &'static str); 1] {
    [(header::CACHE_CONTROL, "no-store")]
}

type ApiResult = Result<Response, ApiError>;

fn ok(body: Value) -> ApiResult {
    Ok((no_store(), Json(body)).into_response())
}

// ---------------------------------------------------------------------------
// Cross-site requests and the session cookie

/// Refuses a mutating request that may come from another site (see the
/// module docs).
fn same_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let header = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if header(CSRF_HEADER) != Some("1") {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("refused: a request that changes something must carry the {CSRF_HEADER}: 1 header (the web view's page sends it; another site cannot)"),
        ));
    }
    if let Some(site) = header("sec-fetch-site") {
        if site != "same-origin" {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("refused: a cross-site request (Sec-Fetch-Site: {site})"),
            ));
        }
    }
    if let Some(origin) = header(header::ORIGIN.as_str()) {
        let host = header(header::HOST.as_str()).unwrap_or_default();
        let origin_host = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"));
        if origin_host != Some(host) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "refused: the request's Origin is not this node's",
            ));
        }
    }
    Ok(())
}

/// Characters kept as they are in the cookie's value; everything else is
/// percent-encoded, so any token is a valid cookie value.
const COOKIE_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The token in the page's session cookie, if there is one.
fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .and_then(|(_, value)| {
            percent_encoding::percent_decode_str(value)
                .decode_utf8()
                .ok()
                .map(|v| v.into_owned())
        })
}

fn session_cookie(value: &str, tls: bool, max_age: Option<u32>) -> String {
    let mut cookie = format!(
        "{COOKIE}={}; Path=/ui; HttpOnly; SameSite=Strict",
        percent_encoding::utf8_percent_encode(value, COOKIE_VALUE)
    );
    if tls {
        cookie.push_str("; Secure");
    }
    if let Some(age) = max_age {
        cookie.push_str(&format!("; Max-Age={age}"));
    }
    cookie
}

fn privileges(caller: &Caller) -> Vec<&'static str> {
    Privilege::ALL
        .into_iter()
        .filter(|p| match caller {
            Caller::User { privileges, .. } => privileges.contains(*p),
            Caller::System => true,
            Caller::Anonymous => false,
        })
        .map(Privilege::id)
        .collect()
}

fn session_body(ui: &Ui, caller: &Caller) -> Value {
    json!({
        "nodeId": ui.node_id,
        "tls": ui.tls,
        "authRequired": ui.tasks.auth().needs_token(),
        "authenticated": *caller != Caller::Anonymous,
        "user": caller.name(),
        "privileges": privileges(caller),
    })
}

async fn session(State(ui): State<Ui>, headers: HeaderMap) -> ApiResult {
    ok(session_body(&ui, &ui.caller(&headers)))
}

#[derive(serde::Deserialize)]
struct Login {
    token: String,
}

async fn login(State(ui): State<Ui>, headers: HeaderMap, Json(login): Json<Login>) -> ApiResult {
    same_origin(&headers)?;
    let caller = ui
        .tasks
        .auth()
        .http_caller(&HeaderMap::new(), Some(login.token.trim()));
    if caller == Caller::Anonymous {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "this token is not known to this node",
        ));
    }
    let body = session_body(&ui, &caller);
    if !ui.tasks.auth().needs_token() {
        return ok(body);
    }
    let cookie = session_cookie(login.token.trim(), ui.tls, None);
    Ok((no_store(), [(header::SET_COOKIE, cookie)], Json(body)).into_response())
}

async fn logout(State(ui): State<Ui>, headers: HeaderMap) -> ApiResult {
    same_origin(&headers)?;
    let cookie = session_cookie("", ui.tls, Some(0));
    Ok((
        no_store(),
        [(header::SET_COOKIE, cookie)],
        Json(session_body(&ui, &Caller::Anonymous)),
    )
        .into_response())
}

// ---------------------------------------------------------------------------
// Queries

/// The decoded `name=value` pairs of a query string.
fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    query
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
        .collect()
}

struct Query(Vec<(String, String)>);

impl Query {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.trim())
    }

    /// A comma-separated list.
    fn list(&self, name: &str) -> Vec<String> {
        self.get(name)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn number<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, MethodFault> {
        self.get(name)
            .map(|v| {
                v.parse().map_err(|_| {
                    MethodFault::invalid_argument(
                        name,
                        format!("A specified parameter was not correct: {name} must be a number"),
                    )
                })
            })
            .transpose()
    }

    /// The filter of a list or a watch: `entity` (TYPE:VALUE), `initiator`
    /// (user names) and, when `with_state`, `state` (queued, running, ...).
    fn filter(&self, with_state: bool) -> Result<TaskFilterSpec, MethodFault> {
        let mut spec = TaskFilterSpec::default();
        if let Some(entity) = self.get("entity") {
            let entity = MoRef::parse(entity).ok_or_else(|| {
                MethodFault::invalid_argument(
                    "entity",
                    "A specified parameter was not correct: entity is TYPE:VALUE, e.g. VirtualMachine:vm-42",
                )
            })?;
            spec.entity = Some(FilterByEntity::itself(entity));
        }
        let users = self.list("initiator");
        if !users.is_empty() {
            spec.user_name = Some(FilterByUsername::users(users));
        }
        if with_state {
            for state in self.list("state") {
                spec.state.push(TaskState::parse(&state).ok_or_else(|| {
                    MethodFault::invalid_argument(
                        "state",
                        format!("A specified parameter was not correct: {state:?} is not a state (queued, running, success, error)"),
                    )
                })?);
            }
        }
        Ok(spec)
    }
}

// ---------------------------------------------------------------------------
// Tasks

async fn list_tasks(
    State(ui): State<Ui>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let caller = ui.caller(&headers);
    let query = Query(query_pairs(query.as_deref()));
    let page = ui
        .tasks
        .list_tasks(
            &caller,
            query.filter(true)?,
            query.number("pageSize")?.unwrap_or(0),
            query.get("pageToken").unwrap_or_default(),
            Consistency::Linearizable,
        )
        .await?;
    ok(json!({
        "tasks": page.tasks,
        "nextPageToken": page.next_page_token,
        "revision": page.revision,
    }))
}

async fn get_task(State(ui): State<Ui>, headers: HeaderMap, Path(key): Path<String>) -> ApiResult {
    let caller = ui.caller(&headers);
    let (info, revision) = ui
        .tasks
        .get_task(&caller, &key, Consistency::Linearizable)
        .await?;
    ok(json!({"info": info, "revision": revision}))
}

async fn task_history(
    State(ui): State<Ui>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> ApiResult {
    let caller = ui.caller(&headers);
    let changes = ui
        .tasks
        .task_history(&caller, &key, Consistency::Linearizable)
        .await?;
    ok(json!({ "changes": changes }))
}

async fn cancel_task(
    State(ui): State<Ui>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> ApiResult {
    same_origin(&headers)?;
    let caller = ui.caller(&headers);
    let done = ui
        .tasks
        .submit_task(
            "CancelTask",
            caller,
            None,
            Command::CancelTask { task: key },
        )
        .await?;
    ok(json!({"info": done.reply, "leader": done.leader}))
}

// ---------------------------------------------------------------------------
// Live changes

fn kind_name(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Current => "current",
        EventKind::Synced => "synced",
        EventKind::Created => "created",
        EventKind::Updated => "updated",
        EventKind::Removed => "removed",
        EventKind::Resync => "resync",
    }
}

/// Where a watch starts: after the `Last-Event-ID` a reconnecting browser
/// sends, else at `from` (0: the current tasks first).
fn start_revision(headers: &HeaderMap, query: &Query) -> Result<u64, MethodFault> {
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match last {
        Some(last) => Ok(last + 1),
        None => Ok(query.number("from")?.unwrap_or(0)),
    }
}

async fn watch_tasks(
    State(ui): State<Ui>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let caller = ui.caller(&headers);
    let query = Query(query_pairs(query.as_deref()));
    let from = start_revision(&headers, &query)?;
    let target = match query.get("task") {
        Some(key) => WatchTarget::Task(key.to_string()),
        None => {
            // No state filter: a task that leaves the state it was listed
            // in must still reach the page, which filters by state itself.
            let filter = query.filter(false)?;
            if filter == TaskFilterSpec::default() {
                WatchTarget::All
            } else {
                WatchTarget::Filter(filter)
            }
        }
    };
    let events = ui.tasks.watch(&caller, target, from).await?;
    let mut stopping = ui.stopping.clone();
    let opened = Event::default()
        .retry(RECONNECT)
        .comment(format!("node {} watching from revision {from}", ui.node_id));
    let changes = tokio_stream::wrappers::ReceiverStream::new(events).map(|event| {
        Ok(match event {
            Ok(event) => {
                let body = json!({
                    "revision": event.revision,
                    "kind": kind_name(event.kind),
                    "info": event.info,
                });
                let sse = Event::default().event("change").data(body.to_string());
                match event.kind {
                    // Only a revision the stream is complete through is an id
                    // to resume after: not one of the current tasks (more may
                    // follow at the same revision), nor a resync.
                    EventKind::Current | EventKind::Resync => sse,
                    EventKind::Synced
                    | EventKind::Created
                    | EventKind::Updated
                    | EventKind::Removed => sse.id(event.revision.to_string()),
                }
            }
            Err(error) => {
                let error = ApiError::from(error);
                Event::default().event("failure").data(
                    json!({"status": error.status.as_u16(), "message": error.message}).to_string(),
                )
            }
        })
    });
    let stream = futures::stream::once(async move { Ok(opened) })
        .chain(changes)
        .take_until(async move {
            let _ = stopping.wait_for(|stop| *stop).await;
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

// ---------------------------------------------------------------------------
// The cluster

/// Cluster.Status; the state digest (which reads the whole state) only
/// with `digest=1`, so the page can poll the rest every second.
async fn cluster(State(ui): State<Ui>, RawQuery(query): RawQuery) -> ApiResult {
    let query = Query(query_pairs(query.as_deref()));
    let status = match query.get("digest") {
        Some("1") => ui.tasks.status().await?,
        _ => ui.tasks.status_without_digest(),
    };
    let members: Vec<Value> = status
        .members
        .iter()
        .map(|m| {
            json!({
                "nodeId": m.node_id,
                "address": m.address,
                "role": match m.role {
                    Role::Leader => "leader",
                    Role::Candidate => "candidate",
                    Role::Follower => "follower",
                    Role::Learner => "learner",
                },
                "matchedIndex": m.matched_index,
                // Entries the leader has that this member has not (known on the leader only).
                "lag": m.lag,
            })
        })
        .collect();
    ok(json!({
        "nodeId": status.node_id,
        "leaderId": status.leader_id,
        "term": status.term,
        "lastLogIndex": status.last_log_index,
        "committedIndex": status.committed_index,
        "appliedIndex": status.applied_index,
        "stateDigest": (!status.state_digest.is_empty()).then_some(status.state_digest),
        "members": members,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn queries_decode_and_filters_follow_them() {
        let query = Query(query_pairs(Some(
            "state=running,queued&entity=VirtualMachine%3Avm-42&initiator=alice+b&pageSize=5&x",
        )));
        let spec = query.filter(true).unwrap();
        assert_eq!(spec.state, vec![TaskState::Running, TaskState::Queued]);
        assert_eq!(
            spec.entity.unwrap().entity,
            MoRef::new("VirtualMachine", "vm-42")
        );
        assert_eq!(spec.user_name.unwrap().user_list, vec!["alice b"]);
        assert_eq!(query.number::<u32>("pageSize").unwrap(), Some(5));
        assert!(query.filter(false).unwrap().state.is_empty());
        assert!(Query(query_pairs(Some("state=done"))).filter(true).is_err());
        assert!(Query(query_pairs(Some("entity=vm"))).filter(true).is_err());
        assert!(Query(query_pairs(Some("pageSize=x")))
            .number::<u32>("pageSize")
            .is_err());
    }

    #[test]
    fn the_cookie_carries_any_token_and_is_found_among_others() {
        let token = "a b;c=d%e";
        let cookie = session_cookie(token, true, None);
        assert!(cookie.ends_with("; Path=/ui; HttpOnly; SameSite=Strict; Secure"));
        let value = cookie.split(';').next().unwrap();
        let found = cookie_token(&headers(&[("cookie", &format!("other=1; {value}; x=y"))]));
        assert_eq!(found.as_deref(), Some(token));
        assert_eq!(cookie_token(&headers(&[("cookie", "other=1")])), None);
        assert!(!session_cookie("t", false, Some(0)).contains("Secure"));
    }

    #[test]
    fn mutations_need_the_header_and_this_origin() {
        assert!(same_origin(&headers(&[])).is_err());
        assert!(same_origin(&headers(&[(CSRF_HEADER, "1")])).is_ok());
        assert!(same_origin(&headers(&[
            (CSRF_HEADER, "1"),
            ("host", "127.0.0.1:9001"),
            ("origin", "https://127.0.0.1:9001"),
            ("sec-fetch-site", "same-origin"),
        ]))
        .is_ok());
        assert!(same_origin(&headers(&[
            (CSRF_HEADER, "1"),
            ("host", "127.0.0.1:9001"),
            ("origin", "https://evil.example"),
        ]))
        .is_err());
        assert!(same_origin(&headers(&[
            (CSRF_HEADER, "1"),
            ("sec-fetch-site", "cross-site")
        ]))
        .is_err());
    }

    #[test]
    fn a_reconnect_resumes_after_its_last_event() {
        let query = Query(query_pairs(Some("from=7")));
        assert_eq!(start_revision(&headers(&[]), &query).unwrap(), 7);
        assert_eq!(
            start_revision(&headers(&[("last-event-id", "41")]), &query).unwrap(),
            42
        );
    }
}
