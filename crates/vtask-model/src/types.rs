//! The vSphere data objects of a task, field by field (spec §2, §6.1, §0.3).
//!
//! Names follow vSphere; Rust spellings are snake_case and the serde names are
//! the vSphere JSON names, so `serde_json` output reads like the VI/JSON API.

use std::fmt;

use serde::de::{self, DeserializeOwned};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// Microseconds since the Unix epoch, UTC. Every time in the model comes from a
/// log entry (the leader's clock), never from a clock read during apply.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub const fn from_micros(micros: i64) -> Timestamp {
        Timestamp(micros)
    }

    pub const fn from_millis(millis: i64) -> Timestamp {
        Timestamp(millis.saturating_mul(1000))
    }

    pub const fn as_micros(self) -> i64 {
        self.0
    }

    pub fn saturating_add_millis(self, millis: u64) -> Timestamp {
        Timestamp(
            self.0.saturating_add(
                i64::try_from(millis)
                    .unwrap_or(i64::MAX)
                    .saturating_mul(1000),
            ),
        )
    }
}

/// `vmodl.ManagedObjectReference`: a typed pointer to a server-side object.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MoRef {
    #[serde(rename = "type")]
    pub type_: String,
    pub value: String,
}

impl MoRef {
    pub fn new(type_: impl Into<String>, value: impl Into<String>) -> MoRef {
        MoRef {
            type_: type_.into(),
            value: value.into(),
        }
    }

    /// The moref of a task: `Task:task-<n>`.
    pub fn task(key: TaskKey) -> MoRef {
        MoRef::new("Task", key.to_string())
    }

    /// `TYPE:VALUE`, as [`Display`](fmt::Display) writes a moref, both
    /// parts non-empty: how every door and the CLI take one as text.
    pub fn parse(text: &str) -> Option<MoRef> {
        match text.split_once(':') {
            Some((type_, value)) if !type_.is_empty() && !value.is_empty() => {
                Some(MoRef::new(type_, value))
            }
            _ => None,
        }
    }
}

impl fmt::Display for MoRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.type_, self.value)
    }
}

/// The number behind a task key `task-<n>`. Numbers start at 1, grow across
/// the whole service and are never reused (spec §1), so `task-0` is "before
/// the oldest" and a missing number at or below the counter has expired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct TaskKey(pub u64);

impl TaskKey {
    /// Parses `task-<n>` with `n` a decimal number ≥ 1 without leading zeros,
    /// so that every task has exactly one spelling.
    pub fn parse(text: &str) -> Option<TaskKey> {
        parse_numbered(text, "task-").map(TaskKey)
    }
}

/// `<prefix><n>` with `n` a decimal number ≥ 1 without leading zeros: the
/// one spelling of a numbered managed object (tasks, collectors).
pub(crate) fn parse_numbered(text: &str, prefix: &str) -> Option<u64> {
    let digits = text.strip_prefix(prefix)?;
    if digits.is_empty()
        || digits.len() > 20
        || digits.starts_with('0')
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    digits.parse().ok()
}

impl fmt::Display for TaskKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "task-{}", self.0)
    }
}

impl From<TaskKey> for String {
    fn from(key: TaskKey) -> String {
        key.to_string()
    }
}

impl TryFrom<String> for TaskKey {
    type Error = String;
    fn try_from(text: String) -> Result<TaskKey, String> {
        TaskKey::parse(&text).ok_or_else(|| format!("not a task key: {text:?}"))
    }
}

/// `anyType` on the vSphere wire: a value that carries its own type
/// (`xsi:type`, `_typeName` in JSON). Used by `KeyAnyValue.value` and
/// `TaskInfo.result`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "_typeName", content = "_value")]
pub enum AnyValue {
    #[serde(rename = "string")]
    String(String),
    #[serde(rename = "long")]
    Long(i64),
    #[serde(rename = "boolean")]
    Boolean(bool),
    #[serde(rename = "double")]
    Double(f64),
    #[serde(rename = "dateTime")]
    DateTime(Timestamp),
    #[serde(rename = "ManagedObjectReference")]
    MoRef(MoRef),
    /// A structured value given as JSON text; stored and returned verbatim.
    #[serde(rename = "json")]
    Json(String),
}

/// `vmodl.KeyAnyValue`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyAnyValue {
    pub key: String,
    pub value: AnyValue,
}

/// `vmodl.LocalizableMessage` (spec §6.1). We keep no catalogs: the message is
/// stored exactly as sent and `message` is never invented.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LocalizableMessage {
    pub key: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arg: Vec<KeyAnyValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// `vim.TaskInfo.State`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Queued,
    Running,
    Success,
    Error,
}

impl State {
    pub const ALL: [State; 4] = [State::Queued, State::Running, State::Success, State::Error];

    pub fn is_terminal(self) -> bool {
        matches!(self, State::Success | State::Error)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Running => "running",
            State::Success => "success",
            State::Error => "error",
        }
    }

    pub fn parse(text: &str) -> Option<State> {
        State::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `vim.TaskReason` and its four concrete kinds (spec §2.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "_typeName")]
pub enum TaskReason {
    #[serde(rename = "TaskReasonUser", rename_all = "camelCase")]
    User { user_name: String },
    #[serde(rename = "TaskReasonSystem")]
    System,
    #[serde(rename = "TaskReasonAlarm", rename_all = "camelCase")]
    Alarm {
        alarm_name: String,
        alarm: MoRef,
        entity_name: String,
        entity: MoRef,
    },
    #[serde(rename = "TaskReasonSchedule", rename_all = "camelCase")]
    Schedule { name: String, scheduled_task: MoRef },
}

/// `vim.TaskInfo`, every field of spec §2. `task` is derived from `key`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskInfo {
    pub key: TaskKey,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<LocalizableMessage>,
    /// Always unset for CreateTask tasks (D25): a client such as pyVim breaks on
    /// a name that is not a real vim method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub description_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<MoRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_name: Option<String>,
    /// We lock nothing, so this stays empty (spec §2 #8).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locked: Vec<MoRef>,
    pub state: State,
    pub cancelled: bool,
    pub cancelable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<MethodFault>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<AnyValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub progress_details: Vec<KeyAnyValue>,
    pub reason: TaskReason,
    pub queue_time: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complete_time: Option<Timestamp>,
    pub event_chain_id: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_task_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_task_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_id: Option<String>,
}

impl TaskInfo {
    /// `TaskInfo.task`: the task's own moref, `Task:task-<n>`.
    pub fn task(&self) -> MoRef {
        MoRef::task(self.key)
    }
}

/// The fault kinds of spec §0.3, each with its own fields. A caller of
/// SetTaskState may send any MethodFault (D3); a type we do not model is kept
/// by name in [`FaultKind::Other`].
///
/// On the wire a fault is an object whose `_typeName` is the vSphere type
/// name and whose other members are the kind's fields, as in the VI/JSON API:
/// `{"_typeName": "InvalidArgument", "invalidProperty": "x"}`,
/// `{"_typeName": "FileNotFound"}`. Serde is hand-written (see below) because
/// `Other` has no tag of its own: any `_typeName` that is not a modelled kind
/// is `Other`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultKind {
    NotSupported,
    RequestCanceled,
    ManagedObjectNotFound {
        obj: MoRef,
    },
    InvalidArgument {
        invalid_property: Option<String>,
    },
    SystemError {
        reason: String,
    },
    SecurityError,
    NoPermission {
        object: Option<MoRef>,
        privilege_id: Option<String>,
    },
    NotAuthenticated,
    InvalidState,
    OutOfBounds {
        argument_name: String,
    },
    /// Any other vSphere fault type, e.g. `FileNotFound`, named without the
    /// `vim.fault.` prefix; its fields are not modelled. The name must not be
    /// one of [`FaultKind::MODELLED_TYPE_NAMES`], since JSON reads such a fault
    /// back as the modelled kind: build faults from a name with
    /// [`FaultKind::from_type_name`]. [`validate::fault`](crate::validate::fault)
    /// refuses a modelled or prefixed name here.
    Other {
        type_name: String,
    },
}

/// The member of a fault object that names its type.
const TYPE_NAME: &str = "_typeName";

/// The namespaces vSphere puts in front of a fault name in some spellings
/// (`vim.fault.InvalidState`, `vmodl.fault.NotSupported`); we accept them on
/// input and never write them.
const TYPE_NAME_PREFIXES: [&str; 2] = ["vim.fault.", "vmodl.fault."];

impl FaultKind {
    /// The `_typeName` of every modelled kind, that is of every kind but
    /// [`FaultKind::Other`].
    pub const MODELLED_TYPE_NAMES: [&'static str; 10] = [
        "NotSupported",
        "RequestCanceled",
        "ManagedObjectNotFound",
        "InvalidArgument",
        "SystemError",
        "SecurityError",
        "NoPermission",
        "NotAuthenticated",
        "InvalidState",
        "OutOfBounds",
    ];

    /// `name` without a leading `vim.fault.` or `vmodl.fault.`.
    pub fn short_type_name(name: &str) -> &str {
        TYPE_NAME_PREFIXES
            .iter()
            .find_map(|prefix| name.strip_prefix(prefix))
            .unwrap_or(name)
    }

    /// Whether `name` (short or prefixed) is the type name of a modelled kind.
    pub fn is_modelled_type_name(name: &str) -> bool {
        FaultKind::MODELLED_TYPE_NAMES.contains(&FaultKind::short_type_name(name))
    }

    /// The kind a bare type name stands for, short or prefixed: the modelled
    /// kind if `name` is one, with its optional fields unset, and otherwise
    /// `Other` with the short name.
    ///
    /// `ManagedObjectNotFound`, `SystemError` and `OutOfBounds` have required
    /// fields that a name alone cannot supply, so for them this returns
    /// `Other` (which [`validate::fault`](crate::validate::fault) refuses);
    /// the deserializer builds those kinds itself, from their fields, and
    /// refuses them when a field is missing.
    pub fn from_type_name(name: &str) -> FaultKind {
        match FaultKind::short_type_name(name) {
            "NotSupported" => FaultKind::NotSupported,
            "RequestCanceled" => FaultKind::RequestCanceled,
            "InvalidArgument" => FaultKind::InvalidArgument {
                invalid_property: None,
            },
            "SecurityError" => FaultKind::SecurityError,
            "NoPermission" => FaultKind::NoPermission {
                object: None,
                privilege_id: None,
            },
            "NotAuthenticated" => FaultKind::NotAuthenticated,
            "InvalidState" => FaultKind::InvalidState,
            short => FaultKind::Other {
                type_name: short.to_string(),
            },
        }
    }

    /// The vSphere type name, as `_typeName` in the JSON API.
    pub fn type_name(&self) -> &str {
        match self {
            FaultKind::NotSupported => "NotSupported",
            FaultKind::RequestCanceled => "RequestCanceled",
            FaultKind::ManagedObjectNotFound { .. } => "ManagedObjectNotFound",
            FaultKind::InvalidArgument { .. } => "InvalidArgument",
            FaultKind::SystemError { .. } => "SystemError",
            FaultKind::SecurityError => "SecurityError",
            FaultKind::NoPermission { .. } => "NoPermission",
            FaultKind::NotAuthenticated => "NotAuthenticated",
            FaultKind::InvalidState => "InvalidState",
            FaultKind::OutOfBounds { .. } => "OutOfBounds",
            FaultKind::Other { type_name } => type_name,
        }
    }

    /// The message a server sends when the caller gave none (spec §11).
    pub fn default_message(&self) -> String {
        match self {
            FaultKind::NotSupported => "The operation is not supported on the object.".into(),
            FaultKind::RequestCanceled => "The task was canceled by a user".into(),
            FaultKind::ManagedObjectNotFound { obj } => format!(
                "The object 'vim.{}:{}' has already been deleted or has not been completely created",
                obj.type_, obj.value
            ),
            FaultKind::InvalidArgument { invalid_property: Some(p) } => {
                format!("A specified parameter was not correct: {p}")
            }
            FaultKind::InvalidArgument { invalid_property: None } => {
                "A specified parameter was not correct.".into()
            }
            FaultKind::SystemError { reason } => format!("A general system error occurred: {reason}"),
            FaultKind::SecurityError => "A security error occurred.".into(),
            FaultKind::NoPermission { privilege_id: Some(p), .. } => {
                format!("Permission to perform this operation was denied: {p}")
            }
            FaultKind::NoPermission { privilege_id: None, .. } => {
                "Permission to perform this operation was denied.".into()
            }
            FaultKind::NotAuthenticated => "The session is not authenticated.".into(),
            FaultKind::InvalidState => "The operation is not allowed in the current state.".into(),
            FaultKind::OutOfBounds { argument_name } => {
                format!("Property {argument_name} is out of bounds.")
            }
            FaultKind::Other { type_name } => format!("The task failed with {type_name}."),
        }
    }
}

impl Serialize for FaultKind {
    /// `_typeName` first, then the kind's fields under their vSphere names;
    /// unset optional fields are left out.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry(TYPE_NAME, self.type_name())?;
        match self {
            FaultKind::ManagedObjectNotFound { obj } => map.serialize_entry("obj", obj)?,
            FaultKind::InvalidArgument { invalid_property } => {
                if let Some(property) = invalid_property {
                    map.serialize_entry("invalidProperty", property)?;
                }
            }
            FaultKind::SystemError { reason } => map.serialize_entry("reason", reason)?,
            FaultKind::NoPermission {
                object,
                privilege_id,
            } => {
                if let Some(object) = object {
                    map.serialize_entry("object", object)?;
                }
                if let Some(id) = privilege_id {
                    map.serialize_entry("privilegeId", id)?;
                }
            }
            FaultKind::OutOfBounds { argument_name } => {
                map.serialize_entry("argumentName", argument_name)?
            }
            FaultKind::NotSupported
            | FaultKind::RequestCanceled
            | FaultKind::SecurityError
            | FaultKind::NotAuthenticated
            | FaultKind::InvalidState
            | FaultKind::Other { .. } => {}
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for FaultKind {
    /// Reads the whole object, then the fields of the kind `_typeName` names.
    /// Members that kind does not have are ignored, so an unmodelled fault's
    /// own fields (say `FileNotFound.file`) are dropped.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<FaultKind, D::Error> {
        let mut members = Map::<String, Value>::deserialize(deserializer)?;
        let name: String =
            take(&mut members, TYPE_NAME)?.ok_or_else(|| de::Error::missing_field(TYPE_NAME))?;
        let kind = match FaultKind::short_type_name(&name) {
            "ManagedObjectNotFound" => FaultKind::ManagedObjectNotFound {
                obj: required(&mut members, "obj")?,
            },
            "InvalidArgument" => FaultKind::InvalidArgument {
                invalid_property: optional(&mut members, "invalidProperty")?,
            },
            "SystemError" => FaultKind::SystemError {
                reason: required(&mut members, "reason")?,
            },
            "NoPermission" => FaultKind::NoPermission {
                object: optional(&mut members, "object")?,
                privilege_id: optional(&mut members, "privilegeId")?,
            },
            "OutOfBounds" => FaultKind::OutOfBounds {
                argument_name: required(&mut members, "argumentName")?,
            },
            // The kinds without fields, and every kind we do not model.
            short => FaultKind::from_type_name(short),
        };
        Ok(kind)
    }
}

/// Removes member `name` from a fault object and parses it, if present.
fn take<T: DeserializeOwned, E: de::Error>(
    members: &mut Map<String, Value>,
    name: &'static str,
) -> Result<Option<T>, E> {
    members
        .remove(name)
        .map(|value| {
            serde_json::from_value(value).map_err(|e| E::custom(format_args!("{name}: {e}")))
        })
        .transpose()
}

/// A required field: present and not null.
fn required<T: DeserializeOwned, E: de::Error>(
    members: &mut Map<String, Value>,
    name: &'static str,
) -> Result<T, E> {
    take(members, name)?.ok_or_else(|| E::missing_field(name))
}

/// An optional field: absent and null are both `None`.
fn optional<T: DeserializeOwned, E: de::Error>(
    members: &mut Map<String, Value>,
    name: &'static str,
) -> Result<Option<T>, E> {
    Ok(take::<Option<T>, E>(members, name)?.flatten())
}

/// `vmodl.MethodFault` as it travels in `TaskInfo.error` and in replies:
/// the `LocalizedMethodFault` wrapper folded in. A fault the server returns or
/// stores always has `localized_message` (spec §0.3, D3); one a caller sends
/// may omit it and gets the default for its kind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MethodFault {
    #[serde(flatten)]
    pub kind: FaultKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub localized_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_cause: Option<Box<MethodFault>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fault_message: Vec<LocalizableMessage>,
}

impl MethodFault {
    /// A fault of `kind` with the standard message.
    pub fn new(kind: FaultKind) -> MethodFault {
        let message = kind.default_message();
        MethodFault::with_message(kind, message)
    }

    pub fn with_message(kind: FaultKind, message: impl Into<String>) -> MethodFault {
        MethodFault {
            kind,
            localized_message: Some(message.into()),
            fault_cause: None,
            fault_message: Vec::new(),
        }
    }

    pub fn invalid_state(message: impl Into<String>) -> MethodFault {
        MethodFault::with_message(FaultKind::InvalidState, message)
    }

    pub fn invalid_argument(property: &str, message: impl Into<String>) -> MethodFault {
        MethodFault::with_message(
            FaultKind::InvalidArgument {
                invalid_property: Some(property.to_string()),
            },
            message,
        )
    }

    pub fn not_supported(message: impl Into<String>) -> MethodFault {
        MethodFault::with_message(FaultKind::NotSupported, message)
    }

    /// The message, filling in the standard one when the sender gave none.
    pub fn message(&self) -> String {
        self.localized_message
            .clone()
            .unwrap_or_else(|| self.kind.default_message())
    }

    /// This fault and its causes with every `localized_message` filled in.
    pub fn localized(mut self) -> MethodFault {
        if self.localized_message.is_none() {
            self.localized_message = Some(self.kind.default_message());
        }
        self.fault_cause = self.fault_cause.map(|cause| Box::new(cause.localized()));
        self
    }
}

impl fmt::Display for MethodFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.type_name(), self.message())
    }
}

impl std::error::Error for MethodFault {}
