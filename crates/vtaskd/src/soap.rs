//! The vSphere door: vim25 SOAP at `/sdk` on the HTTP port, so pyVmomi and
//! govmomi run their task code against vtask unchanged. A thin adapter over
//! the task service (`service.rs`), like the gRPC doors: it decodes with
//! `vtask-vsphere`, resolves the caller from the session once, calls the
//! service in model types and encodes the outcome. No rule, privilege check
//! or retry lives here.
//!
//! **Sessions.** `Login` answers a `vmware_soap_session` cookie that
//! validates itself: `hex(user).expiry.id.mac`, where `mac` is an
//! HMAC-SHA256 over the user, the expiry (Unix seconds) and the session id,
//! keyed by `--session-key-file` (the same file on every node, so a session
//! is valid on every node). The cookie holds no token and no token hash: a
//! leaked users file mints no session, a leaked cookie is one session until
//! its expiry. Each call refreshes the expiry (30 minutes idle, as
//! vCenter's default), and the caller's privileges are read from the users
//! file on every call ([`Auth::session_caller`]), so a user removed by a
//! reload loses its sessions. `Logout` forgets the session's filters; the
//! cookie itself stays valid until it expires (there is no replicated
//! session table to revoke it in). On an insecure node the MAC is not
//! checked, since anyone may log in as anyone there.
//!
//! **Filters.** PropertyCollector filters and `CancelWaitForUpdates` are
//! held by the node that created them, per session. An `UpdateSet`'s
//! `version` is the replicated watch revision, so a client that asks
//! another node with its version gets `InvalidCollectorVersion` (no filters
//! there), makes its filter again (pyVim does) and misses no change.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use vtask_model::{Caller, FaultKind, MethodFault, MoRef, TaskInfo, TaskKey, Timestamp};
use vtask_vsphere::encode::{
    self, About, FilterUpdate, ObjectContent, ObjectUpdate, Returns, UpdateKind, UpdateSet,
    UserSession,
};
use vtask_vsphere::request::{self, FilterSpec, Method, Request, MAX_REQUEST_BYTES};
use vtask_vsphere::Val;

use crate::auth::Auth;
use crate::service::{Consistency, EventKind, ServiceError, TaskService, WatchTarget};

const COOKIE: &str = "vmware_soap_session";
/// A session ends after this long without a call.
const SESSION_IDLE: Duration = Duration::from_secs(30 * 60);
/// Sessions whose filters one node keeps; past it, idle ones are dropped.
const MAX_SESSIONS: usize = 4096;
/// Filters one session may hold on one node.
const MAX_FILTERS: usize = 64;
const PROPERTY_FILTER: &str = "PropertyFilter";

type HmacSha256 = Hmac<Sha256>;

/// The door's state: the service, the session key and the node-local
/// filters of each session.
#[derive(Clone)]
pub struct Soap {
    tasks: TaskService,
    key: Arc<[u8; 32]>,
    about: Arc<About>,
    sessions: Arc<Mutex<HashMap<String, SessionState>>>,
}

#[derive(Default)]
struct SessionState {
    filters: BTreeMap<u64, FilterSpec>,
    next_filter: u64,
    cancel: Arc<tokio::sync::Notify>,
    touched: Option<Instant>,
}

/// A session a request's cookie proves.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Session {
    user: String,
    id: String,
}

/// The session key: SHA-256 of the key file, or random for this node alone.
pub fn session_key(file: Option<&std::path::Path>) -> anyhow::Result<[u8; 32]> {
    match file {
        Some(path) => {
            let secret = std::fs::read(path).map_err(|e| {
                anyhow::anyhow!("reading the session key file {}: {e}", path.display())
            })?;
            let secret = secret.trim_ascii();
            if secret.len() < 32 {
                anyhow::bail!(
                    "the session key file {} holds {} bytes; it needs 32 or more (`vtaskd new-token` prints a key)",
                    path.display(),
                    secret.len()
                );
            }
            Ok(crate::auth::sha256_bytes(secret))
        }
        None => {
            let token = crate::auth::random_token()?;
            Ok(crate::auth::sha256(&token))
        }
    }
}

/// The `ServiceContent.about` of a cluster: the same on every member.
pub fn about(initial_cluster: &BTreeMap<u64, String>) -> About {
    let members: Vec<String> = initial_cluster
        .iter()
        .map(|(id, a)| format!("{id}={a}"))
        .collect();
    let h = crate::auth::to_hex(&crate::auth::sha256(&members.join(",")));
    About {
        version: env!("CARGO_PKG_VERSION").into(),
        build: "0".into(),
        api_version: encode::VERSIONS[0].into(),
        instance_uuid: format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        ),
    }
}

/// The `/sdk` routes.
pub fn router(tasks: TaskService, key: [u8; 32], about: About) -> Router {
    let soap = Soap {
        tasks,
        key: Arc::new(key),
        about: Arc::new(about),
        sessions: Arc::default(),
    };
    Router::new()
        .route("/sdk", post(handle))
        .route("/sdk/vimServiceVersions.xml", get(versions))
        .with_state(soap)
}

async fn versions() -> Response {
    xml(StatusCode::OK, encode::service_versions())
}

fn xml(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

fn now() -> Timestamp {
    crate::proposer::wall_clock()
}

fn unix_secs() -> u64 {
    (crate::proposer::wall_clock().as_micros() / 1_000_000).max(0) as u64
}

/// A fault the door itself answers with.
fn fault(type_name: &str, message: impl Into<String>) -> ServiceError {
    ServiceError::Fault(MethodFault::with_message(
        FaultKind::from_type_name(type_name),
        message,
    ))
}

fn not_authenticated() -> ServiceError {
    ServiceError::Fault(MethodFault::new(FaultKind::NotAuthenticated))
}

fn object_not_found(obj: &MoRef) -> ServiceError {
    ServiceError::Fault(MethodFault::new(FaultKind::ManagedObjectNotFound {
        obj: obj.clone(),
    }))
}

/// The one place a service error becomes a SOAP fault.
fn fault_response(error: ServiceError) -> Response {
    let fault = match error {
        ServiceError::Fault(fault) => fault.localized(),
        ServiceError::Unavailable(message)
        | ServiceError::Exhausted(message)
        | ServiceError::Internal(message) => {
            MethodFault::new(FaultKind::SystemError { reason: message })
        }
    };
    xml(StatusCode::INTERNAL_SERVER_ERROR, encode::fault(&fault))
}

/// The value of `vmware_soap_session` in a Cookie header. pyVmomi sends
/// back the whole Set-Cookie value, attributes and quotes included.
fn cookie_value(headers: &HeaderMap) -> Option<String> {
    for value in headers.get_all(header::COOKIE) {
        let Ok(text) = value.to_str() else { continue };
        for part in text.split(';') {
            if let Some((name, value)) = part.trim().split_once('=') {
                if name.trim() == COOKIE {
                    return Some(value.trim().trim_matches('"').to_string());
                }
            }
        }
    }
    None
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

impl Soap {
    fn auth(&self) -> &Auth {
        self.tasks.auth()
    }

    fn mac(&self, user_hex: &str, expiry: u64, id: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key[..]).expect("HMAC takes any key size");
        mac.update(format!("vtask-soap-session-v1\n{user_hex}\n{expiry}\n{id}").as_bytes());
        mac
    }

    fn issue(&self, session: &Session) -> String {
        let user_hex = crate::auth::to_hex(session.user.as_bytes());
        let expiry = unix_secs() + SESSION_IDLE.as_secs();
        let mac = self
            .mac(&user_hex, expiry, &session.id)
            .finalize()
            .into_bytes();
        format!(
            "{user_hex}.{expiry}.{}.{}",
            session.id,
            crate::auth::to_hex(&mac)
        )
    }

    fn verify(&self, value: &str) -> Option<Session> {
        if value.len() > 2048 {
            return None;
        }
        let mut parts = value.split('.');
        let (user_hex, expiry, id, mac) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || id.is_empty() || id.len() > 64 {
            return None;
        }
        let expiry: u64 = expiry.parse().ok()?;
        if !self.auth().is_insecure() {
            let mac = hex_decode(mac)?;
            self.mac(user_hex, expiry, id).verify_slice(&mac).ok()?;
        }
        if expiry < unix_secs() {
            return None;
        }
        let user = String::from_utf8(hex_decode(user_hex)?).ok()?;
        vtask_model::validate::name("user", &user).ok()?;
        Some(Session {
            user,
            id: id.to_string(),
        })
    }

    fn set_cookie(&self, session: &Session) -> HeaderValue {
        HeaderValue::from_str(&format!(
            "{COOKIE}=\"{}\"; Path=/; HttpOnly",
            self.issue(session)
        ))
        .expect("the cookie is hex, digits and dots")
    }

    /// `Login`'s caller; Argon2 takes tens of milliseconds of CPU by
    /// design, so it runs off the async runtime.
    async fn login(&self, user_name: &str, password: &str) -> Option<Caller> {
        let (auth, user_name, password) = (
            self.auth().clone(),
            user_name.to_string(),
            password.to_string(),
        );
        tokio::task::spawn_blocking(move || auth.login(&user_name, &password))
            .await
            .ok()
            .flatten()
    }

    /// Runs `f` on the node-local state of a session.
    fn with_state<T>(&self, id: &str, f: impl FnOnce(&mut SessionState) -> T) -> T {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if sessions.len() >= MAX_SESSIONS && !sessions.contains_key(id) {
            sessions.retain(|_, s| s.touched.is_some_and(|t| t.elapsed() < SESSION_IDLE));
        }
        let state = sessions.entry(id.to_string()).or_default();
        state.touched = Some(Instant::now());
        f(state)
    }
}

async fn handle(State(soap): State<Soap>, headers: HeaderMap, body: Body) -> Response {
    let bytes = match axum::body::to_bytes(body, MAX_REQUEST_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return fault_response(ServiceError::Fault(request::invalid_request(format!(
                "the request is larger than {MAX_REQUEST_BYTES} bytes"
            ))))
        }
    };
    let request = match request::decode(&bytes) {
        Ok(request) => Request {
            api_version: request::api_version(
                headers.get("soapaction").and_then(|v| v.to_str().ok()),
            ),
            ..request
        },
        Err(fault) => return fault_response(ServiceError::Fault(fault)),
    };
    let session = cookie_value(&headers).and_then(|v| soap.verify(&v));
    let method = request.method.name();
    let (result, session) = match &request.method {
        Method::Login {
            user_name,
            password,
        } => match soap.login(user_name, password).await {
            Some(caller) => {
                let id = match crate::auth::random_token() {
                    Ok(token) => token[..32].to_string(),
                    Err(e) => return fault_response(ServiceError::Internal(e.to_string())),
                };
                let session = Session {
                    user: caller.name().unwrap_or_default().to_string(),
                    id,
                };
                let reply = Returns::One(Val::UserSession(UserSession {
                    key: session.id.clone(),
                    user_name: session.user.clone(),
                    login_time: now(),
                }));
                (Ok(reply), Some(session))
            }
            None => (
                Err(fault(
                    "InvalidLogin",
                    "Cannot complete login due to an incorrect user name or password.",
                )),
                None,
            ),
        },
        Method::Logout => {
            if let Some(s) = &session {
                soap.sessions
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&s.id);
            }
            let mut response = xml(StatusCode::OK, encode::response(method, &Returns::Nothing));
            response.headers_mut().insert(
                header::SET_COOKIE,
                HeaderValue::from_static("vmware_soap_session=\"\"; Path=/; Max-Age=0"),
            );
            return response;
        }
        _ => {
            let caller = match &session {
                Some(s) => soap.auth().session_caller(&s.user),
                None => Caller::Anonymous,
            };
            (soap.call(&request, caller, session.as_ref()).await, session)
        }
    };
    let mut response = match result {
        Ok(returns) => xml(StatusCode::OK, encode::response(method, &returns)),
        Err(error) => fault_response(error),
    };
    if let Some(session) = &session {
        response
            .headers_mut()
            .insert(header::SET_COOKIE, soap.set_cookie(session));
    }
    response
}

type Served = Result<Returns, ServiceError>;

/// The model command of a task or collector method.
fn command(request: &Request) -> Result<vtask_model::Command, ServiceError> {
    request.command().ok_or_else(|| {
        ServiceError::Internal(format!("{} maps to no command", request.method.name()))
    })
}

fn one(val: Option<Val>) -> Returns {
    match val {
        Some(v) => Returns::One(v),
        None => Returns::Nothing,
    }
}

impl Soap {
    async fn call(&self, request: &Request, caller: Caller, session: Option<&Session>) -> Served {
        let this = &request.this;
        let method = request.method.name();
        match &request.method {
            Method::RetrieveServiceContent => {
                Ok(Returns::One(Val::ServiceContent((*self.about).clone())))
            }
            Method::CurrentTime => Ok(Returns::One(Val::DateTime(now()))),
            Method::Login { .. } | Method::Logout => Err(ServiceError::Internal(format!(
                "{method} is answered with the session, before the call"
            ))),
            Method::Fetch { prop } => Ok(one(self.property(&caller, session, this, prop).await?)),
            Method::CreateTask(_) => {
                let command = command(request)?;
                let done = self
                    .tasks
                    .submit_task(method, caller, None, command)
                    .await?;
                Ok(Returns::One(Val::TaskInfo(Box::new(done.reply))))
            }
            Method::CreateCollectorForTasks { filter } => {
                let done = self
                    .tasks
                    .create_collector(caller, None, Some(filter.clone()))
                    .await?;
                let (collector, _) = done.reply;
                Ok(Returns::One(Val::MoRef(collector.moref())))
            }
            Method::CancelTask
            | Method::UpdateProgress { .. }
            | Method::SetTaskState { .. }
            | Method::SetTaskDescription { .. } => {
                let command = command(request)?;
                self.tasks
                    .submit_task(method, caller, None, command)
                    .await?;
                Ok(Returns::Nothing)
            }
            Method::ReadNextTasks { .. } | Method::ReadPreviousTasks { .. } => {
                let command = command(request)?;
                let done = self
                    .tasks
                    .submit_tasks(method, caller, None, command)
                    .await?;
                Ok(Returns::Many(
                    done.reply
                        .into_iter()
                        .map(|t| Val::TaskInfo(Box::new(t)))
                        .collect(),
                ))
            }
            Method::SetCollectorPageSize { .. } => {
                let command = command(request)?;
                self.tasks
                    .submit_tasks(method, caller, None, command)
                    .await?;
                Ok(Returns::Nothing)
            }
            Method::RewindCollector | Method::ResetCollector | Method::DestroyCollector => {
                let command = command(request)?;
                self.tasks
                    .submit_done(method, caller, None, command)
                    .await?;
                Ok(Returns::Nothing)
            }
            Method::RetrieveProperties { specs } | Method::RetrievePropertiesEx { specs } => {
                let mut objects = Vec::new();
                for spec in specs {
                    for obj in &spec.objects {
                        let Some(paths) = spec.paths_for(obj) else {
                            continue;
                        };
                        let mut props = Vec::new();
                        for (name, val) in self.properties(&caller, session, obj, &paths).await? {
                            if let Some(val) = val {
                                props.push((name, val));
                            }
                        }
                        objects.push(ObjectContent {
                            obj: obj.clone(),
                            props,
                        });
                    }
                }
                Ok(match &request.method {
                    Method::RetrieveProperties { .. } => {
                        Returns::Many(objects.into_iter().map(Val::ObjectContent).collect())
                    }
                    _ if objects.is_empty() => Returns::Nothing,
                    _ => Returns::One(Val::RetrieveResult(objects)),
                })
            }
            Method::CreateFilter { spec, .. } => {
                let session = session.ok_or_else(not_authenticated)?;
                // Every task it names must exist and be visible to the caller.
                for obj in spec.objects.iter().filter(|o| o.type_ == "Task") {
                    self.tasks
                        .get_task(&caller, &obj.value, Consistency::Linearizable)
                        .await?;
                }
                let id = self.with_state(&session.id, |state| {
                    if state.filters.len() >= MAX_FILTERS {
                        return None;
                    }
                    state.next_filter += 1;
                    state.filters.insert(state.next_filter, spec.clone());
                    Some(state.next_filter)
                });
                let id = id.ok_or_else(|| {
                    fault(
                        "InvalidState",
                        format!("a session may hold {MAX_FILTERS} property filters"),
                    )
                })?;
                Ok(Returns::One(Val::MoRef(MoRef::new(
                    PROPERTY_FILTER,
                    format!("filter-{id}"),
                ))))
            }
            Method::DestroyPropertyFilter => {
                let session = session.ok_or_else(not_authenticated)?;
                let removed = this
                    .value
                    .strip_prefix("filter-")
                    .and_then(|n| n.parse::<u64>().ok())
                    .and_then(|n| self.with_state(&session.id, |s| s.filters.remove(&n)));
                match removed {
                    Some(_) => Ok(Returns::Nothing),
                    None => Err(object_not_found(this)),
                }
            }
            Method::CancelWaitForUpdates => {
                let session = session.ok_or_else(not_authenticated)?;
                self.with_state(&session.id, |s| s.cancel.notify_waiters());
                Ok(Returns::Nothing)
            }
            Method::WaitForUpdates { version } => {
                let session = session.ok_or_else(not_authenticated)?;
                let update = self.wait(&caller, session, version, None).await?;
                Ok(one(update.map(Val::UpdateSet)))
            }
            Method::WaitForUpdatesEx {
                version,
                max_wait_seconds,
            } => {
                let session = session.ok_or_else(not_authenticated)?;
                let max_wait = max_wait_seconds.map(|s| Duration::from_secs(s.into()));
                let update = self.wait(&caller, session, version, max_wait).await?;
                Ok(one(update.map(Val::UpdateSet)))
            }
        }
    }

    /// One property of one object (`Fetch`).
    async fn property(
        &self,
        caller: &Caller,
        session: Option<&Session>,
        obj: &MoRef,
        path: &str,
    ) -> Result<Option<Val>, ServiceError> {
        let mut values = self
            .properties(caller, session, obj, &[path.to_string()])
            .await?;
        Ok(values.pop().and_then(|(_, v)| v))
    }

    /// Property paths of one object, each with its value (`None`: unset).
    async fn properties(
        &self,
        caller: &Caller,
        session: Option<&Session>,
        obj: &MoRef,
        paths: &[String],
    ) -> Result<Vec<(String, Option<Val>)>, ServiceError> {
        let unknown = |path: &str| ServiceError::Fault(vtask_vsphere::invalid_property(path));
        let mut out = Vec::new();
        match (obj.type_.as_str(), obj.value.as_str()) {
            ("Task", key) => {
                let (info, _) = self
                    .tasks
                    .get_task(caller, key, Consistency::Linearizable)
                    .await?;
                for path in paths {
                    out.push((path.clone(), vtask_vsphere::task_property(&info, path)?));
                }
            }
            ("ServiceInstance", vtask_vsphere::SERVICE_INSTANCE) => {
                for path in paths {
                    match path.as_str() {
                        "content" => out.push((
                            path.clone(),
                            Some(Val::ServiceContent((*self.about).clone())),
                        )),
                        other => return Err(unknown(other)),
                    }
                }
            }
            ("SessionManager", vtask_vsphere::SESSION_MANAGER) => {
                for path in paths {
                    match path.as_str() {
                        "currentSession" => out.push((
                            path.clone(),
                            session.map(|s| {
                                Val::UserSession(UserSession {
                                    key: s.id.clone(),
                                    user_name: s.user.clone(),
                                    login_time: now(),
                                })
                            }),
                        )),
                        other => return Err(unknown(other)),
                    }
                }
            }
            ("TaskManager", vtask_vsphere::TASK_MANAGER) => {
                for path in paths {
                    match path.as_str() {
                        "recentTask" => {
                            let (_, tasks) = self
                                .tasks
                                .recent_tasks(caller, Consistency::Linearizable)
                                .await?;
                            out.push((
                                path.clone(),
                                Some(Val::MoRefs(tasks.iter().map(TaskInfo::task).collect())),
                            ));
                        }
                        other => return Err(unknown(other)),
                    }
                }
            }
            (vtask_model::COLLECTOR_TYPE, name) => {
                for path in paths {
                    match path.as_str() {
                        "latestPage" => {
                            let collector = self
                                .tasks
                                .latest_page(caller, name, Consistency::Linearizable)
                                .await?;
                            out.push((path.clone(), Some(Val::TaskInfos(collector.latest_page))));
                        }
                        other => return Err(unknown(other)),
                    }
                }
            }
            _ => return Err(object_not_found(obj)),
        }
        Ok(out)
    }

    /// WaitForUpdates(Ex): the changes of the session's filters since
    /// `version` (every selected value, as `enter`, for an empty version);
    /// `None` when `max_wait` passed first.
    async fn wait(
        &self,
        caller: &Caller,
        session: &Session,
        version: &str,
        max_wait: Option<Duration>,
    ) -> Result<Option<UpdateSet>, ServiceError> {
        let (filters, cancel) = self.with_state(&session.id, |s| {
            (
                s.filters
                    .iter()
                    .map(|(id, spec)| (*id, spec.clone()))
                    .collect::<Vec<_>>(),
                s.cancel.clone(),
            )
        });
        let invalid_version = || {
            fault(
                "InvalidCollectorVersion",
                format!("{version:?} is not a version of this session's filters on this node"),
            )
        };
        let start = match version {
            "" => 0,
            v => v.parse::<u64>().map_err(|_| invalid_version())? + 1,
        };
        if filters.is_empty() {
            return if start == 0 {
                Ok(Some(UpdateSet {
                    version: "0".into(),
                    filters: Vec::new(),
                }))
            } else {
                Err(invalid_version())
            };
        }
        let keys: HashSet<TaskKey> = filters
            .iter()
            .flat_map(|(_, f)| f.objects.iter())
            .filter(|o| o.type_ == "Task")
            .filter_map(|o| TaskKey::parse(&o.value))
            .collect();
        let target = match keys.iter().next() {
            Some(key) if keys.len() == 1 => WatchTarget::Task(key.to_string()),
            _ => WatchTarget::All,
        };
        let mut events = self.tasks.watch(caller, target, start).await?;
        let deadline = max_wait.map(|d| tokio::time::Instant::now() + d);
        // Per task: its newest value (None: removed) and whether it is new.
        let mut changed: BTreeMap<TaskKey, (Option<TaskInfo>, UpdateKind)> = BTreeMap::new();
        let mut last = start.saturating_sub(1);
        let mut synced = start > 0;
        let cancelled = cancel.notified();
        tokio::pin!(cancelled);
        loop {
            let ready = synced && !changed.is_empty();
            let event = if ready {
                // Take what is there already, without waiting.
                match events.try_recv() {
                    Ok(event) => event,
                    Err(_) => break,
                }
            } else {
                let next = async {
                    match deadline {
                        Some(d) => tokio::time::timeout_at(d, events.recv()).await.ok(),
                        None => Some(events.recv().await),
                    }
                };
                tokio::select! {
                    event = next => match event {
                        None => return Ok(None),
                        Some(None) => return Err(ServiceError::Unavailable("the watch ended".into())),
                        Some(Some(event)) => event,
                    },
                    _ = &mut cancelled => {
                        return Err(ServiceError::Fault(MethodFault::new(FaultKind::RequestCanceled)))
                    }
                }
            };
            let event = event?;
            last = last.max(event.revision);
            match event.kind {
                EventKind::Synced => {
                    synced = true;
                    if start == 0 {
                        break;
                    }
                }
                EventKind::Resync => synced = false,
                EventKind::Current | EventKind::Created | EventKind::Updated => {
                    let Some(info) = event.info else { continue };
                    if keys.contains(&info.key) {
                        let kind = if start == 0 {
                            UpdateKind::Enter
                        } else {
                            UpdateKind::Modify
                        };
                        changed.insert(info.key, (Some(info), kind));
                    }
                }
                EventKind::Removed => {
                    if let Some(info) = event.info {
                        if keys.contains(&info.key) {
                            changed.insert(info.key, (None, UpdateKind::Leave));
                        }
                    }
                }
            }
        }
        let mut update = UpdateSet {
            version: last.to_string(),
            filters: Vec::new(),
        };
        for (id, spec) in &filters {
            let mut objects = Vec::new();
            for obj in &spec.objects {
                let Some((info, kind)) = TaskKey::parse(&obj.value)
                    .filter(|_| obj.type_ == "Task")
                    .and_then(|k| changed.get(&k))
                else {
                    continue;
                };
                let mut changes = Vec::new();
                if let Some(info) = info {
                    for path in spec.paths_for(obj).unwrap_or_default() {
                        changes.push((path.clone(), vtask_vsphere::task_property(info, &path)?));
                    }
                }
                objects.push(ObjectUpdate {
                    kind: *kind,
                    obj: obj.clone(),
                    changes,
                });
            }
            if !objects.is_empty() {
                update.filters.push(FilterUpdate {
                    filter: MoRef::new(PROPERTY_FILTER, format!("filter-{id}")),
                    objects,
                });
            }
        }
        Ok(Some(update))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_in_what_pyvmomi_sends_back() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("vmware_soap_session=\"ab.12.cd.ef\"; Path=/; HttpOnly"),
        );
        assert_eq!(cookie_value(&headers).as_deref(), Some("ab.12.cd.ef"));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("other=1; vmware_soap_session=x"),
        );
        assert_eq!(cookie_value(&headers).as_deref(), Some("x"));
        assert_eq!(cookie_value(&HeaderMap::new()), None);
    }
}
