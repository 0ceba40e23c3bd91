//! Decoding a vim25 request: the SOAP envelope, the method, its `_this`
//! and its arguments, into [`Request`]. Everything that is not a request we
//! serve comes back as a fault (`InvalidRequest`, `MethodNotFound`), never a
//! panic.

use vtask_model::{
    AnyValue, Command, CreateTask, FaultKind, FilterByEntity, FilterByTime, FilterByUsername,
    KeyAnyValue, LocalizableMessage, MethodFault, MoRef, RecursionOption, State, TaskFilterSpec,
    TimeOption,
};

use crate::xml::{self, Element};

/// The largest request body the door reads.
pub const MAX_REQUEST_BYTES: usize = 1 << 20;

/// One decoded call: the object it is sent to, and the method.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub this: MoRef,
    pub method: Method,
    /// The API version the client speaks, from its `SOAPAction` header
    /// ([`api_version`]); it changes only `UpdateProgress` (D28).
    pub api_version: vtask_model::ApiVersion,
}

/// The API version a `SOAPAction: urn:vim25/<version>` header names: VI API
/// 2.5 (`2.5`, `2.5u2`) is [`ApiVersion::Vim25`](vtask_model::ApiVersion),
/// anything else (or no header) the current one (D28).
pub fn api_version(soap_action: Option<&str>) -> vtask_model::ApiVersion {
    let version = soap_action
        .map(|a| a.trim().trim_matches('"'))
        .and_then(|a| a.strip_prefix("urn:vim25/"));
    match version {
        Some(v) if v == "2.5" || v.starts_with("2.5u") => vtask_model::ApiVersion::Vim25,
        _ => vtask_model::ApiVersion::Current,
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Method {
    RetrieveServiceContent,
    CurrentTime,
    Login {
        user_name: String,
        password: String,
    },
    Logout,
    /// pyVmomi 9 reads a property with `Fetch(prop)` on the object itself.
    Fetch {
        prop: String,
    },
    CreateTask(CreateTask),
    CreateCollectorForTasks {
        filter: TaskFilterSpec,
    },
    CancelTask,
    UpdateProgress {
        percent_done: i32,
    },
    SetTaskState {
        state: State,
        result: Option<AnyValue>,
        fault: Option<MethodFault>,
    },
    SetTaskDescription {
        description: LocalizableMessage,
    },
    CreateFilter {
        spec: FilterSpec,
        partial_updates: bool,
    },
    DestroyPropertyFilter,
    WaitForUpdates {
        version: String,
    },
    WaitForUpdatesEx {
        version: String,
        /// `None`: wait until something changes; `Some(0)`: do not wait.
        max_wait_seconds: Option<u32>,
    },
    CancelWaitForUpdates,
    RetrieveProperties {
        specs: Vec<FilterSpec>,
    },
    RetrievePropertiesEx {
        specs: Vec<FilterSpec>,
    },
    ReadNextTasks {
        max_count: i32,
    },
    ReadPreviousTasks {
        max_count: i32,
    },
    RewindCollector,
    ResetCollector,
    SetCollectorPageSize {
        max_count: i32,
    },
    DestroyCollector,
}

impl Method {
    /// The vim25 method name, as in the request and its `…Response`.
    pub fn name(&self) -> &'static str {
        match self {
            Method::RetrieveServiceContent => "RetrieveServiceContent",
            Method::CurrentTime => "CurrentTime",
            Method::Login { .. } => "Login",
            Method::Logout => "Logout",
            Method::Fetch { .. } => "Fetch",
            Method::CreateTask(_) => "CreateTask",
            Method::CreateCollectorForTasks { .. } => "CreateCollectorForTasks",
            Method::CancelTask => "CancelTask",
            Method::UpdateProgress { .. } => "UpdateProgress",
            Method::SetTaskState { .. } => "SetTaskState",
            Method::SetTaskDescription { .. } => "SetTaskDescription",
            Method::CreateFilter { .. } => "CreateFilter",
            Method::DestroyPropertyFilter => "DestroyPropertyFilter",
            Method::WaitForUpdates { .. } => "WaitForUpdates",
            Method::WaitForUpdatesEx { .. } => "WaitForUpdatesEx",
            Method::CancelWaitForUpdates => "CancelWaitForUpdates",
            Method::RetrieveProperties { .. } => "RetrieveProperties",
            Method::RetrievePropertiesEx { .. } => "RetrievePropertiesEx",
            Method::ReadNextTasks { .. } => "ReadNextTasks",
            Method::ReadPreviousTasks { .. } => "ReadPreviousTasks",
            Method::RewindCollector => "RewindCollector",
            Method::ResetCollector => "ResetCollector",
            Method::SetCollectorPageSize { .. } => "SetCollectorPageSize",
            Method::DestroyCollector => "DestroyCollector",
        }
    }

    /// The managed object type the method belongs to (`Fetch`: any).
    fn receiver(&self) -> Option<&'static str> {
        Some(match self {
            Method::RetrieveServiceContent | Method::CurrentTime => "ServiceInstance",
            Method::Login { .. } | Method::Logout => "SessionManager",
            Method::Fetch { .. } => return None,
            Method::CreateTask(_) | Method::CreateCollectorForTasks { .. } => "TaskManager",
            Method::CancelTask
            | Method::UpdateProgress { .. }
            | Method::SetTaskState { .. }
            | Method::SetTaskDescription { .. } => "Task",
            Method::CreateFilter { .. }
            | Method::WaitForUpdates { .. }
            | Method::WaitForUpdatesEx { .. }
            | Method::CancelWaitForUpdates
            | Method::RetrieveProperties { .. }
            | Method::RetrievePropertiesEx { .. } => "PropertyCollector",
            Method::DestroyPropertyFilter => "PropertyFilter",
            Method::ReadNextTasks { .. }
            | Method::ReadPreviousTasks { .. }
            | Method::RewindCollector
            | Method::ResetCollector
            | Method::SetCollectorPageSize { .. }
            | Method::DestroyCollector => "TaskHistoryCollector",
        })
    }
}

/// `PropertyFilterSpec`, as far as tasks need it: the objects (no
/// traversal) and, per type, all properties or some paths.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FilterSpec {
    pub objects: Vec<MoRef>,
    pub props: Vec<PropSpec>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PropSpec {
    pub type_: String,
    pub all: bool,
    pub paths: Vec<String>,
}

impl FilterSpec {
    /// The paths selected on `obj` (`["info"]` for `all` on a Task), or
    /// `None` when no PropertySpec names its type.
    pub fn paths_for(&self, obj: &MoRef) -> Option<Vec<String>> {
        let mut found = None;
        for spec in self.props.iter().filter(|p| p.type_ == obj.type_) {
            let paths: &mut Vec<String> = found.get_or_insert_with(Vec::new);
            if spec.all {
                for p in crate::all_properties(&obj.type_) {
                    if !paths.iter().any(|q| q == p) {
                        paths.push(p.to_string());
                    }
                }
            }
            for p in &spec.paths {
                if !paths.contains(p) {
                    paths.push(p.clone());
                }
            }
        }
        found
    }
}

/// `vmodl.fault.InvalidRequest`: the request cannot be read.
pub fn invalid_request(message: impl Into<String>) -> MethodFault {
    MethodFault::with_message(
        FaultKind::Other {
            type_name: "InvalidRequest".into(),
        },
        message,
    )
}

/// `vmodl.fault.MethodNotFound`: a method the object does not have.
pub fn method_not_found(this: &MoRef, method: &str) -> MethodFault {
    MethodFault::with_message(
        FaultKind::Other {
            type_name: "MethodNotFound".into(),
        },
        format!(
            "The method {method} is not served on {}:{}",
            this.type_, this.value
        ),
    )
}

type Decoded<T> = Result<T, MethodFault>;

fn required<'a>(e: &'a Element, name: &str) -> Decoded<&'a Element> {
    e.child(name)
        .ok_or_else(|| invalid_request(format!("{}: the argument {name} is missing", e.name)))
}

fn text<'a>(e: &'a Element, name: &str) -> Decoded<&'a str> {
    Ok(required(e, name)?.text.as_str())
}

fn optional_text(e: &Element, name: &str) -> Option<String> {
    e.child(name).map(|c| c.text.clone())
}

fn boolean(e: &Element, what: &str) -> Decoded<bool> {
    match e.text.trim() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(invalid_request(format!(
            "{what}: {other:?} is not a boolean"
        ))),
    }
}

fn int(e: &Element, what: &str) -> Decoded<i32> {
    e.text
        .trim()
        .parse()
        .map_err(|_| invalid_request(format!("{what}: {:?} is not an int", e.text)))
}

/// A `ManagedObjectReference`: `<x type="Task">task-1</x>`.
pub fn moref(e: &Element) -> Decoded<MoRef> {
    let type_ = e.attr("type").ok_or_else(|| {
        invalid_request(format!("{}: a ManagedObjectReference needs a type", e.name))
    })?;
    Ok(MoRef::new(type_, e.text.trim()))
}

/// An `xsd:anyType` value, by its `xsi:type`.
pub fn any_value(e: &Element) -> Decoded<AnyValue> {
    let t = e.text.trim();
    let bad = |ty: &str| invalid_request(format!("{}: {t:?} is not an {ty}", e.name));
    Ok(match e.xsi_type_local() {
        Some("string") | None => AnyValue::String(e.text.clone()),
        Some("int" | "long" | "short" | "byte") => AnyValue::Long(t.parse().map_err(|_| bad("integer"))?),
        Some("boolean") => AnyValue::Boolean(boolean(e, &e.name)?),
        Some("double" | "float") => AnyValue::Double(t.parse().map_err(|_| bad("double"))?),
        Some("dateTime") => AnyValue::DateTime(crate::time::parse(t).ok_or_else(|| bad("xsd:dateTime"))?),
        Some("ManagedObjectReference") => AnyValue::MoRef(moref(e)?),
        Some(other) => {
            return Err(MethodFault::with_message(
                FaultKind::NotSupported,
                format!("{}: values of type {other} are not supported; send a string, a number, a boolean, a dateTime or a ManagedObjectReference", e.name),
            ))
        }
    })
}

fn key_any_value(e: &Element) -> Decoded<KeyAnyValue> {
    Ok(KeyAnyValue {
        key: text(e, "key")?.to_string(),
        value: any_value(required(e, "value")?)?,
    })
}

/// A `LocalizableMessage`.
pub fn message(e: &Element) -> Decoded<LocalizableMessage> {
    Ok(LocalizableMessage {
        key: text(e, "key")?.to_string(),
        arg: e
            .children_named("arg")
            .map(key_any_value)
            .collect::<Decoded<_>>()?,
        message: optional_text(e, "message"),
    })
}

/// A `LocalizedMethodFault` (`<fault xsi:type=…/>` and `localizedMessage`)
/// or a bare `MethodFault` with an `xsi:type`.
pub fn fault(e: &Element) -> Decoded<MethodFault> {
    let (inner, localized) = match e.child("fault") {
        Some(inner) => (inner, optional_text(e, "localizedMessage")),
        None => (e, None),
    };
    let type_name = inner
        .xsi_type_local()
        .ok_or_else(|| invalid_request(format!("{}: a fault needs an xsi:type", e.name)))?;
    let field = |name: &str| optional_text(inner, name);
    let kind = match FaultKind::short_type_name(type_name) {
        "ManagedObjectNotFound" => FaultKind::ManagedObjectNotFound {
            obj: moref(required(inner, "obj")?)?,
        },
        "InvalidArgument" => FaultKind::InvalidArgument {
            invalid_property: field("invalidProperty"),
        },
        "SystemError" => FaultKind::SystemError {
            reason: field("reason").unwrap_or_default(),
        },
        "NoPermission" => FaultKind::NoPermission {
            object: inner.child("object").map(moref).transpose()?,
            privilege_id: field("privilegeId"),
        },
        "OutOfBounds" => FaultKind::OutOfBounds {
            argument_name: field("argumentName").unwrap_or_default(),
        },
        other => FaultKind::from_type_name(other),
    };
    Ok(MethodFault {
        kind,
        localized_message: localized,
        fault_cause: inner
            .child("faultCause")
            .map(fault)
            .transpose()?
            .map(Box::new),
        fault_message: inner
            .children_named("faultMessage")
            .map(message)
            .collect::<Decoded<_>>()?,
    })
}

fn filter_spec(e: &Element) -> Decoded<FilterSpec> {
    let mut spec = FilterSpec::default();
    for o in e.children_named("objectSet") {
        if o.child("selectSet").is_some() {
            return Err(MethodFault::not_supported(
                "PropertyFilterSpec: traversal (selectSet) is not supported; name each object",
            ));
        }
        let skip = match o.child("skip") {
            Some(s) => boolean(s, "skip")?,
            None => false,
        };
        if !skip {
            spec.objects.push(moref(required(o, "obj")?)?);
        }
    }
    for p in e.children_named("propSet") {
        spec.props.push(PropSpec {
            type_: text(p, "type")?.trim().to_string(),
            all: match p.child("all") {
                Some(a) => boolean(a, "all")?,
                None => false,
            },
            paths: p
                .children_named("pathSet")
                .map(|c| c.text.trim().to_string())
                .collect(),
        });
    }
    Ok(spec)
}

/// A `TaskFilterSpec` (spec §7.3). The model validates what it cannot
/// answer (entity recursion beyond `self`, D12).
fn task_filter_spec(e: &Element) -> Decoded<TaskFilterSpec> {
    let strings = |name: &str| -> Vec<String> {
        e.children_named(name)
            .map(|c| c.text.trim().to_string())
            .collect()
    };
    let entity = match e.child("entity") {
        Some(by) => Some(FilterByEntity {
            entity: moref(required(by, "entity")?)?,
            recursion: match text(by, "recursion")?.trim() {
                "self" => RecursionOption::Itself,
                "children" => RecursionOption::Children,
                "all" => RecursionOption::All,
                other => {
                    return Err(invalid_request(format!(
                        "recursion: {other:?} is not a TaskFilterSpecRecursionOption"
                    )))
                }
            },
        }),
        None => None,
    };
    let time = match e.child("time") {
        Some(by) => {
            let instant = |name: &str| -> Decoded<Option<vtask_model::Timestamp>> {
                match by.child(name) {
                    Some(t) => crate::time::parse(t.text.trim()).map(Some).ok_or_else(|| {
                        invalid_request(format!("{name}: {:?} is not an xsd:dateTime", t.text))
                    }),
                    None => Ok(None),
                }
            };
            Some(FilterByTime {
                time_type: match text(by, "timeType")?.trim() {
                    "queuedTime" => TimeOption::QueuedTime,
                    "startedTime" => TimeOption::StartedTime,
                    "completedTime" => TimeOption::CompletedTime,
                    other => {
                        return Err(invalid_request(format!(
                            "timeType: {other:?} is not a TaskFilterSpecTimeOption"
                        )))
                    }
                },
                begin_time: instant("beginTime")?,
                end_time: instant("endTime")?,
            })
        }
        None => None,
    };
    let user_name = match e.child("userName") {
        Some(by) => Some(FilterByUsername {
            system_user: boolean(required(by, "systemUser")?, "systemUser")?,
            user_list: by
                .children_named("userList")
                .map(|c| c.text.trim().to_string())
                .collect(),
        }),
        None => None,
    };
    Ok(TaskFilterSpec {
        entity,
        time,
        user_name,
        activation_id: strings("activationId"),
        state: e
            .children_named("state")
            .map(state)
            .collect::<Decoded<_>>()?,
        alarm: e.child("alarm").map(moref).transpose()?,
        scheduled_task: e.child("scheduledTask").map(moref).transpose()?,
        event_chain_id: e
            .children_named("eventChainId")
            .map(|c| int(c, "eventChainId"))
            .collect::<Decoded<_>>()?,
        tag: strings("tag"),
        parent_task_key: strings("parentTaskKey"),
        root_task_key: strings("rootTaskKey"),
    })
}

fn state(e: &Element) -> Decoded<State> {
    State::parse(e.text.trim())
        .ok_or_else(|| invalid_request(format!("state: {:?} is not a TaskInfoState", e.text)))
}

fn envelope_body(root: &Element) -> Decoded<&Element> {
    if root.name != "Envelope" {
        return Err(invalid_request("the request is not a SOAP envelope"));
    }
    let body = root
        .child("Body")
        .ok_or_else(|| invalid_request("the SOAP envelope has no Body"))?;
    body.children
        .first()
        .ok_or_else(|| invalid_request("the SOAP Body names no method"))
}

/// Decodes one request body.
pub fn decode(bytes: &[u8]) -> Decoded<Request> {
    if bytes.len() > MAX_REQUEST_BYTES {
        return Err(invalid_request(format!(
            "the request is larger than {MAX_REQUEST_BYTES} bytes"
        )));
    }
    let root = xml::parse(bytes).map_err(|e| invalid_request(format!("malformed request: {e}")))?;
    let call = envelope_body(&root)?;
    let this = moref(required(call, "_this")?)?;
    let method = match call.name.as_str() {
        "RetrieveServiceContent" => Method::RetrieveServiceContent,
        "CurrentTime" => Method::CurrentTime,
        "Login" => Method::Login {
            user_name: text(call, "userName")?.to_string(),
            password: text(call, "password")?.to_string(),
        },
        "Logout" => Method::Logout,
        "Fetch" => Method::Fetch {
            prop: text(call, "prop")?.trim().to_string(),
        },
        "CreateTask" => Method::CreateTask(CreateTask {
            obj: moref(required(call, "obj")?)?,
            task_type_id: text(call, "taskTypeId")?.to_string(),
            initiated_by: optional_text(call, "initiatedBy"),
            cancelable: boolean(required(call, "cancelable")?, "cancelable")?,
            parent_task_key: optional_text(call, "parentTaskKey"),
            activation_id: optional_text(call, "activationId"),
            ..CreateTask::default()
        }),
        "CreateCollectorForTasks" => Method::CreateCollectorForTasks {
            filter: task_filter_spec(required(call, "filter")?)?,
        },
        "CancelTask" => Method::CancelTask,
        "UpdateProgress" => Method::UpdateProgress {
            percent_done: int(required(call, "percentDone")?, "percentDone")?,
        },
        "SetTaskState" => Method::SetTaskState {
            state: state(required(call, "state")?)?,
            result: call.child("result").map(any_value).transpose()?,
            fault: call.child("fault").map(fault).transpose()?,
        },
        "SetTaskDescription" => Method::SetTaskDescription {
            description: message(required(call, "description")?)?,
        },
        "CreateFilter" => Method::CreateFilter {
            spec: filter_spec(required(call, "spec")?)?,
            partial_updates: boolean(required(call, "partialUpdates")?, "partialUpdates")?,
        },
        "DestroyPropertyFilter" => Method::DestroyPropertyFilter,
        "WaitForUpdates" => Method::WaitForUpdates {
            version: optional_text(call, "version").unwrap_or_default(),
        },
        "WaitForUpdatesEx" => Method::WaitForUpdatesEx {
            version: optional_text(call, "version").unwrap_or_default(),
            max_wait_seconds: match call
                .child("options")
                .and_then(|o| o.child("maxWaitSeconds"))
            {
                Some(m) => Some(int(m, "maxWaitSeconds")?.max(0) as u32),
                None => None,
            },
        },
        "CancelWaitForUpdates" => Method::CancelWaitForUpdates,
        "RetrieveProperties" | "RetrievePropertiesEx" => {
            let specs = call
                .children_named("specSet")
                .map(filter_spec)
                .collect::<Decoded<Vec<_>>>()?;
            if call.name == "RetrieveProperties" {
                Method::RetrieveProperties { specs }
            } else {
                Method::RetrievePropertiesEx { specs }
            }
        }
        "ReadNextTasks" => Method::ReadNextTasks {
            max_count: int(required(call, "maxCount")?, "maxCount")?,
        },
        "ReadPreviousTasks" => Method::ReadPreviousTasks {
            max_count: int(required(call, "maxCount")?, "maxCount")?,
        },
        "RewindCollector" => Method::RewindCollector,
        "ResetCollector" => Method::ResetCollector,
        "SetCollectorPageSize" => Method::SetCollectorPageSize {
            max_count: int(required(call, "maxCount")?, "maxCount")?,
        },
        "DestroyCollector" => Method::DestroyCollector,
        other => {
            return Err(invalid_request(format!(
                "Unable to resolve WSDL method name {other}"
            )))
        }
    };
    if let Some(receiver) = method.receiver() {
        if this.type_ != receiver {
            return Err(method_not_found(&this, method.name()));
        }
    }
    Ok(Request {
        this,
        method,
        api_version: vtask_model::ApiVersion::Current,
    })
}

impl Request {
    /// The model command of a task or collector method sent to `this`;
    /// `None` for the methods that are no log entry.
    pub fn command(&self) -> Option<Command> {
        let task = || self.this.value.clone();
        let collector = || self.this.value.clone();
        Some(match &self.method {
            Method::CreateTask(create) => Command::CreateTask(create.clone()),
            Method::CancelTask => Command::CancelTask { task: task() },
            Method::UpdateProgress { percent_done } => Command::UpdateProgress {
                task: task(),
                percent_done: *percent_done,
                progress_details: None,
                api_version: self.api_version,
            },
            Method::SetTaskState {
                state,
                result,
                fault,
            } => Command::SetTaskState {
                task: task(),
                state: *state,
                result: result.clone(),
                fault: fault.clone(),
            },
            Method::SetTaskDescription { description } => Command::SetTaskDescription {
                task: task(),
                description: description.clone(),
            },
            Method::ReadNextTasks { max_count } => Command::ReadNextTasks {
                collector: collector(),
                max_count: *max_count,
            },
            Method::ReadPreviousTasks { max_count } => Command::ReadPreviousTasks {
                collector: collector(),
                max_count: *max_count,
            },
            Method::RewindCollector => Command::RewindCollector {
                collector: collector(),
            },
            Method::ResetCollector => Command::ResetCollector {
                collector: collector(),
            },
            Method::SetCollectorPageSize { max_count } => Command::SetCollectorPageSize {
                collector: collector(),
                max_count: *max_count,
            },
            Method::DestroyCollector => Command::DestroyCollector {
                collector: collector(),
            },
            _ => return None,
        })
    }
}
