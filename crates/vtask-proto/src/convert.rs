//! Mechanical conversions between the wire types of [`crate::v1`] and the
//! model types of `vtask_model`.
//!
//! Model → wire never fails (`From`). Wire → model (`TryFrom`, or a function
//! where both types are foreign) refuses only what the model cannot hold: a
//! missing required field, an `UNSPECIFIED` or unknown enum value, an
//! unreadable timestamp or a malformed task key in a `TaskInfo`. The refusal is
//! an `InvalidArgument` fault whose `invalidProperty` is the path of the field
//! in the request, in the proto JSON spelling (`fault.faultCause.managedObjectNotFound.obj`,
//! `progressDetails.details[2].value`). Whether a value is *allowed* (a task
//! type id's characters, a lease's length, a moref's shape) is for
//! `vtask_model`, which sees the converted value.
//!
//! A fault travels in a gRPC status as a `google.rpc.Status` whose details hold
//! one `google.protobuf.Any` packing a [`v1::MethodFault`]; see
//! [`fault_to_status`] and `proto/vtask/v1/fault.proto` for the code table.

use prost::Message;
use vtask_model::{
    AnyValue, ApiVersion, Command, CreateTask, FaultKind, FilterByEntity, FilterByTime,
    FilterByUsername, KeyAnyValue, LocalizableMessage, MethodFault, MoRef, RecursionOption, State,
    TaskFilterSpec, TaskInfo, TaskKey, TaskReason, TimeOption, Timestamp,
};

use crate::google::rpc::Status as RpcStatus;
use crate::v1;
use crate::METHOD_FAULT_TYPE_URL;

/// Why a wire value does not convert, with the path of the offending field
/// relative to the message being converted. Callers up the tree prefix it.
#[derive(Debug)]
struct FieldError {
    path: String,
    problem: &'static str,
}

type Res<T> = Result<T, FieldError>;

impl FieldError {
    fn missing(field: &str) -> FieldError {
        FieldError {
            path: field.to_string(),
            problem: "required field is missing",
        }
    }

    fn invalid(field: &str, problem: &'static str) -> FieldError {
        FieldError {
            path: field.to_string(),
            problem,
        }
    }

    /// The same error seen from the message that holds `field`.
    fn at(mut self, field: &str) -> FieldError {
        self.path = if self.path.is_empty() {
            field.to_string()
        } else if self.path.starts_with('[') {
            format!("{field}{}", self.path)
        } else {
            format!("{field}.{}", self.path)
        };
        self
    }

    fn at_index(self, index: usize) -> FieldError {
        self.at(&format!("[{index}]"))
    }
}

impl From<FieldError> for MethodFault {
    fn from(error: FieldError) -> MethodFault {
        let message = format!(
            "A specified parameter was not correct: {} ({})",
            error.path, error.problem
        );
        MethodFault::invalid_argument(&error.path, message)
    }
}

fn required<T>(value: Option<T>, field: &str) -> Res<T> {
    value.ok_or_else(|| FieldError::missing(field))
}

/// Converts every element, naming the index of the first one that fails.
fn each<P, M>(list: Vec<P>, convert: impl Fn(P) -> Res<M>) -> Res<Vec<M>> {
    list.into_iter()
        .enumerate()
        .map(|(index, item)| convert(item).map_err(|e| e.at_index(index)))
        .collect()
}

// ---------------------------------------------------------------------------
// Timestamps and durations

const MICROS_PER_SECOND: i64 = 1_000_000;
const NANOS_PER_SECOND: i128 = 1_000_000_000;

/// A model time (microseconds since the epoch) as a `google.protobuf.Timestamp`.
pub fn timestamp_to_proto(time: Timestamp) -> prost_types::Timestamp {
    let micros = time.as_micros();
    prost_types::Timestamp {
        seconds: micros.div_euclid(MICROS_PER_SECOND),
        // In 0..1_000_000_000, as the Timestamp spec requires.
        nanos: (micros.rem_euclid(MICROS_PER_SECOND) * 1000) as i32,
    }
}

/// A `google.protobuf.Timestamp` as a model time. Sub-microsecond digits are
/// dropped (rounding towards the past); `nanos` outside 0..10⁹ or a time beyond
/// the model's range is `InvalidArgument` naming `field`.
// A refusal is built once per refused request, so its size does not matter.
#[allow(clippy::result_large_err)]
pub fn timestamp_from_proto(
    time: &prost_types::Timestamp,
    field: &str,
) -> Result<Timestamp, MethodFault> {
    timestamp(time).map_err(|e| e.at(field).into())
}

fn timestamp(time: &prost_types::Timestamp) -> Res<Timestamp> {
    if !(0..1_000_000_000).contains(&time.nanos) {
        return Err(FieldError::invalid("nanos", "not in 0..999999999"));
    }
    let micros =
        i128::from(time.seconds) * i128::from(MICROS_PER_SECOND) + i128::from(time.nanos / 1000);
    i64::try_from(micros)
        .map(Timestamp::from_micros)
        .map_err(|_| FieldError::invalid("", "time out of range"))
}

fn optional_timestamp(time: Option<prost_types::Timestamp>, field: &str) -> Res<Option<Timestamp>> {
    time.map(|t| timestamp(&t).map_err(|e| e.at(field)))
        .transpose()
}

/// A lease length in milliseconds (D26) as a `google.protobuf.Duration`.
pub fn millis_to_duration(millis: u64) -> prost_types::Duration {
    prost_types::Duration {
        // u64::MAX / 1000 < i64::MAX.
        seconds: (millis / 1000) as i64,
        nanos: ((millis % 1000) * 1_000_000) as i32,
    }
}

/// A `google.protobuf.Duration` in whole milliseconds, rounded down. Negative,
/// unnormalized (seconds and nanos of different signs, |nanos| ≥ 10⁹) or too
/// long durations are `InvalidArgument` naming `field`.
// A refusal is built once per refused request, so its size does not matter.
#[allow(clippy::result_large_err)]
pub fn duration_to_millis(
    duration: &prost_types::Duration,
    field: &str,
) -> Result<u64, MethodFault> {
    millis(duration).map_err(|e| e.at(field).into())
}

fn millis(duration: &prost_types::Duration) -> Res<u64> {
    let prost_types::Duration { seconds, nanos } = *duration;
    if !(-999_999_999..=999_999_999).contains(&nanos)
        || (seconds > 0 && nanos < 0)
        || (seconds < 0 && nanos > 0)
    {
        return Err(FieldError::invalid("nanos", "not a normalized duration"));
    }
    let total = i128::from(seconds) * NANOS_PER_SECOND + i128::from(nanos);
    if total < 0 {
        return Err(FieldError::invalid("", "negative duration"));
    }
    u64::try_from(total / 1_000_000).map_err(|_| FieldError::invalid("", "duration too long"))
}

// ---------------------------------------------------------------------------
// ManagedObjectReference, AnyValue, KeyAnyValue, LocalizableMessage

impl From<MoRef> for v1::ManagedObjectReference {
    fn from(moref: MoRef) -> Self {
        v1::ManagedObjectReference {
            r#type: moref.type_,
            value: moref.value,
        }
    }
}

impl From<v1::ManagedObjectReference> for MoRef {
    fn from(moref: v1::ManagedObjectReference) -> Self {
        MoRef {
            type_: moref.r#type,
            value: moref.value,
        }
    }
}

fn moref(moref: Option<v1::ManagedObjectReference>, field: &str) -> Res<MoRef> {
    required(moref, field).map(MoRef::from)
}

impl From<AnyValue> for v1::AnyValue {
    fn from(value: AnyValue) -> Self {
        use v1::any_value::Value;
        let value = match value {
            AnyValue::String(s) => Value::StringValue(s),
            AnyValue::Long(n) => Value::LongValue(n),
            AnyValue::Boolean(b) => Value::BooleanValue(b),
            AnyValue::Double(d) => Value::DoubleValue(d),
            AnyValue::DateTime(t) => Value::DateTimeValue(timestamp_to_proto(t)),
            AnyValue::MoRef(m) => Value::MorefValue(m.into()),
            AnyValue::Json(j) => Value::JsonValue(j),
        };
        v1::AnyValue { value: Some(value) }
    }
}

impl TryFrom<v1::AnyValue> for AnyValue {
    type Error = MethodFault;
    fn try_from(value: v1::AnyValue) -> Result<Self, MethodFault> {
        Ok(any_value(value)?)
    }
}

fn any_value(value: v1::AnyValue) -> Res<AnyValue> {
    use v1::any_value::Value;
    Ok(match required(value.value, "value")? {
        Value::StringValue(s) => AnyValue::String(s),
        Value::LongValue(n) => AnyValue::Long(n),
        Value::BooleanValue(b) => AnyValue::Boolean(b),
        Value::DoubleValue(d) => AnyValue::Double(d),
        Value::DateTimeValue(t) => {
            AnyValue::DateTime(timestamp(&t).map_err(|e| e.at("dateTimeValue"))?)
        }
        Value::MorefValue(m) => AnyValue::MoRef(m.into()),
        Value::JsonValue(j) => AnyValue::Json(j),
    })
}

fn optional_any_value(value: Option<v1::AnyValue>, field: &str) -> Res<Option<AnyValue>> {
    value
        .map(|v| any_value(v).map_err(|e| e.at(field)))
        .transpose()
}

impl From<KeyAnyValue> for v1::KeyAnyValue {
    fn from(kv: KeyAnyValue) -> Self {
        v1::KeyAnyValue {
            key: kv.key,
            value: Some(kv.value.into()),
        }
    }
}

impl TryFrom<v1::KeyAnyValue> for KeyAnyValue {
    type Error = MethodFault;
    fn try_from(kv: v1::KeyAnyValue) -> Result<Self, MethodFault> {
        Ok(key_any_value(kv)?)
    }
}

fn key_any_value(kv: v1::KeyAnyValue) -> Res<KeyAnyValue> {
    let value = required(kv.value, "value")?;
    Ok(KeyAnyValue {
        key: kv.key,
        value: any_value(value).map_err(|e| e.at("value"))?,
    })
}

fn key_any_values(list: Vec<v1::KeyAnyValue>, field: &str) -> Res<Vec<KeyAnyValue>> {
    each(list, key_any_value).map_err(|e| e.at(field))
}

fn key_any_values_to_proto(list: Vec<KeyAnyValue>) -> Vec<v1::KeyAnyValue> {
    list.into_iter().map(Into::into).collect()
}

impl From<LocalizableMessage> for v1::LocalizableMessage {
    fn from(message: LocalizableMessage) -> Self {
        v1::LocalizableMessage {
            key: message.key,
            arg: key_any_values_to_proto(message.arg),
            message: message.message,
        }
    }
}

impl TryFrom<v1::LocalizableMessage> for LocalizableMessage {
    type Error = MethodFault;
    fn try_from(message: v1::LocalizableMessage) -> Result<Self, MethodFault> {
        Ok(localizable_message(message)?)
    }
}

fn localizable_message(message: v1::LocalizableMessage) -> Res<LocalizableMessage> {
    Ok(LocalizableMessage {
        key: message.key,
        arg: key_any_values(message.arg, "arg")?,
        message: message.message,
    })
}

// ---------------------------------------------------------------------------
// State, TaskReason

impl From<State> for v1::TaskInfoState {
    fn from(state: State) -> Self {
        match state {
            State::Queued => v1::TaskInfoState::Queued,
            State::Running => v1::TaskInfoState::Running,
            State::Success => v1::TaskInfoState::Success,
            State::Error => v1::TaskInfoState::Error,
        }
    }
}

impl TryFrom<v1::TaskInfoState> for State {
    type Error = MethodFault;
    fn try_from(state: v1::TaskInfoState) -> Result<Self, MethodFault> {
        Ok(known_state(state)
            .ok_or_else(|| FieldError::invalid("state", "state is unspecified"))?)
    }
}

fn known_state(state: v1::TaskInfoState) -> Option<State> {
    match state {
        v1::TaskInfoState::Unspecified => None,
        v1::TaskInfoState::Queued => Some(State::Queued),
        v1::TaskInfoState::Running => Some(State::Running),
        v1::TaskInfoState::Success => Some(State::Success),
        v1::TaskInfoState::Error => Some(State::Error),
    }
}

/// A state as it appears in a message field (an `i32`).
fn state(value: i32, field: &str) -> Res<State> {
    let state = v1::TaskInfoState::try_from(value)
        .map_err(|_| FieldError::invalid(field, "unknown state"))?;
    known_state(state).ok_or_else(|| FieldError::invalid(field, "state is unspecified"))
}

fn state_to_proto(state: State) -> i32 {
    v1::TaskInfoState::from(state) as i32
}

impl From<TaskReason> for v1::TaskReason {
    fn from(reason: TaskReason) -> Self {
        use v1::task_reason::Kind;
        let kind = match reason {
            TaskReason::User { user_name } => Kind::User(v1::TaskReasonUser { user_name }),
            TaskReason::System => Kind::System(v1::TaskReasonSystem {}),
            TaskReason::Alarm {
                alarm_name,
                alarm,
                entity_name,
                entity,
            } => Kind::Alarm(v1::TaskReasonAlarm {
                alarm_name,
                alarm: Some(alarm.into()),
                entity_name,
                entity: Some(entity.into()),
            }),
            TaskReason::Schedule {
                name,
                scheduled_task,
            } => Kind::Schedule(v1::TaskReasonSchedule {
                name,
                scheduled_task: Some(scheduled_task.into()),
            }),
        };
        v1::TaskReason { kind: Some(kind) }
    }
}

impl TryFrom<v1::TaskReason> for TaskReason {
    type Error = MethodFault;
    fn try_from(reason: v1::TaskReason) -> Result<Self, MethodFault> {
        Ok(task_reason(reason)?)
    }
}

fn task_reason(reason: v1::TaskReason) -> Res<TaskReason> {
    use v1::task_reason::Kind;
    Ok(match required(reason.kind, "kind")? {
        Kind::User(user) => TaskReason::User {
            user_name: user.user_name,
        },
        Kind::System(_) => TaskReason::System,
        Kind::Alarm(alarm) => TaskReason::Alarm {
            alarm_name: alarm.alarm_name,
            alarm: moref(alarm.alarm, "alarm.alarm")?,
            entity_name: alarm.entity_name,
            entity: moref(alarm.entity, "alarm.entity")?,
        },
        Kind::Schedule(schedule) => TaskReason::Schedule {
            name: schedule.name,
            scheduled_task: moref(schedule.scheduled_task, "schedule.scheduledTask")?,
        },
    })
}

// ---------------------------------------------------------------------------
// MethodFault

impl From<MethodFault> for v1::MethodFault {
    fn from(fault: MethodFault) -> Self {
        use v1::method_fault as f;
        let kind = match fault.kind {
            FaultKind::NotSupported => f::Kind::NotSupported(f::NotSupported {}),
            FaultKind::RequestCanceled => f::Kind::RequestCanceled(f::RequestCanceled {}),
            FaultKind::ManagedObjectNotFound { obj } => {
                f::Kind::ManagedObjectNotFound(f::ManagedObjectNotFound {
                    obj: Some(obj.into()),
                })
            }
            FaultKind::InvalidArgument { invalid_property } => {
                f::Kind::InvalidArgument(f::InvalidArgument { invalid_property })
            }
            FaultKind::SystemError { reason } => f::Kind::SystemError(f::SystemError { reason }),
            FaultKind::SecurityError => f::Kind::SecurityError(f::SecurityError {}),
            FaultKind::NoPermission {
                object,
                privilege_id,
            } => f::Kind::NoPermission(f::NoPermission {
                object: object.map(Into::into),
                privilege_id,
            }),
            FaultKind::NotAuthenticated => f::Kind::NotAuthenticated(f::NotAuthenticated {}),
            FaultKind::InvalidState => f::Kind::InvalidState(f::InvalidState {}),
            FaultKind::OutOfBounds { argument_name } => {
                f::Kind::OutOfBounds(f::OutOfBounds { argument_name })
            }
            FaultKind::Other { type_name } => f::Kind::Other(f::Other { type_name }),
        };
        v1::MethodFault {
            kind: Some(kind),
            localized_message: fault.localized_message,
            fault_cause: fault.fault_cause.map(|cause| Box::new((*cause).into())),
            fault_message: fault.fault_message.into_iter().map(Into::into).collect(),
        }
    }
}

impl TryFrom<v1::MethodFault> for MethodFault {
    type Error = MethodFault;
    fn try_from(fault: v1::MethodFault) -> Result<Self, MethodFault> {
        Ok(method_fault(fault)?)
    }
}

fn method_fault(fault: v1::MethodFault) -> Res<MethodFault> {
    use v1::method_fault::Kind;
    let kind = match required(fault.kind, "kind")? {
        Kind::NotSupported(_) => FaultKind::NotSupported,
        Kind::RequestCanceled(_) => FaultKind::RequestCanceled,
        Kind::ManagedObjectNotFound(f) => FaultKind::ManagedObjectNotFound {
            obj: moref(f.obj, "managedObjectNotFound.obj")?,
        },
        Kind::InvalidArgument(f) => FaultKind::InvalidArgument {
            invalid_property: f.invalid_property,
        },
        Kind::SystemError(f) => FaultKind::SystemError { reason: f.reason },
        Kind::SecurityError(_) => FaultKind::SecurityError,
        Kind::NoPermission(f) => FaultKind::NoPermission {
            object: f.object.map(Into::into),
            privilege_id: f.privilege_id,
        },
        Kind::NotAuthenticated(_) => FaultKind::NotAuthenticated,
        Kind::InvalidState(_) => FaultKind::InvalidState,
        Kind::OutOfBounds(f) => FaultKind::OutOfBounds {
            argument_name: f.argument_name,
        },
        Kind::Other(f) => FaultKind::Other {
            type_name: f.type_name,
        },
    };
    let fault_cause = match fault.fault_cause {
        Some(cause) => Some(Box::new(
            method_fault(*cause).map_err(|e| e.at("faultCause"))?,
        )),
        None => None,
    };
    Ok(MethodFault {
        kind,
        localized_message: fault.localized_message,
        fault_cause,
        fault_message: each(fault.fault_message, localizable_message)
            .map_err(|e| e.at("faultMessage"))?,
    })
}

fn optional_fault(fault: Option<v1::MethodFault>, field: &str) -> Res<Option<MethodFault>> {
    fault
        .map(|f| method_fault(f).map_err(|e| e.at(field)))
        .transpose()
}

// ---------------------------------------------------------------------------
// TaskInfo

impl From<TaskInfo> for v1::TaskInfo {
    fn from(info: TaskInfo) -> Self {
        v1::TaskInfo {
            key: info.key.to_string(),
            task: Some(info.task().into()),
            description: info.description.map(Into::into),
            name: info.name,
            description_id: info.description_id,
            entity: info.entity.map(Into::into),
            entity_name: info.entity_name,
            locked: info.locked.into_iter().map(Into::into).collect(),
            state: state_to_proto(info.state),
            cancelled: info.cancelled,
            cancelable: info.cancelable,
            error: info.error.map(Into::into),
            result: info.result.map(Into::into),
            progress: info.progress,
            progress_details: key_any_values_to_proto(info.progress_details),
            reason: Some(info.reason.into()),
            queue_time: Some(timestamp_to_proto(info.queue_time)),
            start_time: info.start_time.map(timestamp_to_proto),
            complete_time: info.complete_time.map(timestamp_to_proto),
            event_chain_id: info.event_chain_id,
            change_tag: info.change_tag,
            parent_task_key: info.parent_task_key,
            root_task_key: info.root_task_key,
            activation_id: info.activation_id,
        }
    }
}

/// `task`, derived from `key`, may be omitted; when given it must agree.
impl TryFrom<v1::TaskInfo> for TaskInfo {
    type Error = MethodFault;
    fn try_from(info: v1::TaskInfo) -> Result<Self, MethodFault> {
        Ok(task_info(info)?)
    }
}

fn task_info(info: v1::TaskInfo) -> Res<TaskInfo> {
    let key = TaskKey::parse(&info.key)
        .ok_or_else(|| FieldError::invalid("key", "not a task key task-<n>"))?;
    if let Some(task) = info.task {
        if MoRef::from(task) != MoRef::task(key) {
            return Err(FieldError::invalid("task", "does not name the task of key"));
        }
    }
    Ok(TaskInfo {
        key,
        description: info
            .description
            .map(|d| localizable_message(d).map_err(|e| e.at("description")))
            .transpose()?,
        name: info.name,
        description_id: info.description_id,
        entity: info.entity.map(Into::into),
        entity_name: info.entity_name,
        locked: info.locked.into_iter().map(Into::into).collect(),
        state: state(info.state, "state")?,
        cancelled: info.cancelled,
        cancelable: info.cancelable,
        error: optional_fault(info.error, "error")?,
        result: optional_any_value(info.result, "result")?,
        progress: info.progress,
        progress_details: key_any_values(info.progress_details, "progressDetails")?,
        reason: task_reason(required(info.reason, "reason")?).map_err(|e| e.at("reason"))?,
        queue_time: timestamp(&required(info.queue_time, "queueTime")?)
            .map_err(|e| e.at("queueTime"))?,
        start_time: optional_timestamp(info.start_time, "startTime")?,
        complete_time: optional_timestamp(info.complete_time, "completeTime")?,
        event_chain_id: info.event_chain_id,
        change_tag: info.change_tag,
        parent_task_key: info.parent_task_key,
        root_task_key: info.root_task_key,
        activation_id: info.activation_id,
    })
}

// ---------------------------------------------------------------------------
// TaskFilterSpec

impl From<RecursionOption> for v1::task_filter_spec::RecursionOption {
    fn from(option: RecursionOption) -> Self {
        match option {
            RecursionOption::Itself => v1::task_filter_spec::RecursionOption::Self_,
            RecursionOption::Children => v1::task_filter_spec::RecursionOption::Children,
            RecursionOption::All => v1::task_filter_spec::RecursionOption::All,
        }
    }
}

fn recursion(value: i32, field: &str) -> Res<RecursionOption> {
    use v1::task_filter_spec::RecursionOption as P;
    match P::try_from(value) {
        Ok(P::Self_) => Ok(RecursionOption::Itself),
        Ok(P::Children) => Ok(RecursionOption::Children),
        Ok(P::All) => Ok(RecursionOption::All),
        Ok(P::Unspecified) => Err(FieldError::invalid(field, "recursion is unspecified")),
        Err(_) => Err(FieldError::invalid(field, "unknown recursion option")),
    }
}

impl From<TimeOption> for v1::task_filter_spec::TimeOption {
    fn from(option: TimeOption) -> Self {
        match option {
            TimeOption::QueuedTime => v1::task_filter_spec::TimeOption::QueuedTime,
            TimeOption::StartedTime => v1::task_filter_spec::TimeOption::StartedTime,
            TimeOption::CompletedTime => v1::task_filter_spec::TimeOption::CompletedTime,
        }
    }
}

fn time_option(value: i32, field: &str) -> Res<TimeOption> {
    use v1::task_filter_spec::TimeOption as P;
    match P::try_from(value) {
        Ok(P::QueuedTime) => Ok(TimeOption::QueuedTime),
        Ok(P::StartedTime) => Ok(TimeOption::StartedTime),
        Ok(P::CompletedTime) => Ok(TimeOption::CompletedTime),
        Ok(P::Unspecified) => Err(FieldError::invalid(field, "time type is unspecified")),
        Err(_) => Err(FieldError::invalid(field, "unknown time option")),
    }
}

impl From<TaskFilterSpec> for v1::TaskFilterSpec {
    fn from(filter: TaskFilterSpec) -> Self {
        use v1::task_filter_spec as f;
        v1::TaskFilterSpec {
            entity: filter.entity.map(|e| f::ByEntity {
                entity: Some(e.entity.into()),
                recursion: f::RecursionOption::from(e.recursion) as i32,
            }),
            time: filter.time.map(|t| f::ByTime {
                time_type: f::TimeOption::from(t.time_type) as i32,
                begin_time: t.begin_time.map(timestamp_to_proto),
                end_time: t.end_time.map(timestamp_to_proto),
            }),
            user_name: filter.user_name.map(|u| f::ByUsername {
                system_user: u.system_user,
                user_list: u.user_list,
            }),
            activation_id: filter.activation_id,
            state: filter.state.into_iter().map(state_to_proto).collect(),
            alarm: filter.alarm.map(Into::into),
            scheduled_task: filter.scheduled_task.map(Into::into),
            event_chain_id: filter.event_chain_id,
            tag: filter.tag,
            parent_task_key: filter.parent_task_key,
            root_task_key: filter.root_task_key,
        }
    }
}

impl TryFrom<v1::TaskFilterSpec> for TaskFilterSpec {
    type Error = MethodFault;
    fn try_from(filter: v1::TaskFilterSpec) -> Result<Self, MethodFault> {
        Ok(task_filter_spec(filter)?)
    }
}

fn task_filter_spec(filter: v1::TaskFilterSpec) -> Res<TaskFilterSpec> {
    let entity = match filter.entity {
        Some(e) => Some(FilterByEntity {
            entity: moref(e.entity, "entity.entity")?,
            recursion: recursion(e.recursion, "entity.recursion")?,
        }),
        None => None,
    };
    let time = match filter.time {
        Some(t) => Some(FilterByTime {
            time_type: time_option(t.time_type, "time.timeType")?,
            begin_time: optional_timestamp(t.begin_time, "time.beginTime")?,
            end_time: optional_timestamp(t.end_time, "time.endTime")?,
        }),
        None => None,
    };
    Ok(TaskFilterSpec {
        entity,
        time,
        user_name: filter.user_name.map(|u| FilterByUsername {
            system_user: u.system_user,
            user_list: u.user_list,
        }),
        activation_id: filter.activation_id,
        state: each(filter.state, |s| state(s, "")).map_err(|e| e.at("state"))?,
        alarm: filter.alarm.map(Into::into),
        scheduled_task: filter.scheduled_task.map(Into::into),
        event_chain_id: filter.event_chain_id,
        tag: filter.tag,
        parent_task_key: filter.parent_task_key,
        root_task_key: filter.root_task_key,
    })
}

// ---------------------------------------------------------------------------
// Requests → model

impl From<ApiVersion> for v1::ApiVersion {
    fn from(version: ApiVersion) -> Self {
        match version {
            ApiVersion::Current => v1::ApiVersion::Current,
            ApiVersion::Vim25 => v1::ApiVersion::Vim25,
        }
    }
}

impl From<v1::ApiVersion> for ApiVersion {
    fn from(version: v1::ApiVersion) -> Self {
        match version {
            v1::ApiVersion::Unspecified | v1::ApiVersion::Current => ApiVersion::Current,
            v1::ApiVersion::Vim25 => ApiVersion::Vim25,
        }
    }
}

/// The request header is not part of the arguments: the server reads it for
/// deduplication (D27) before it converts the rest.
impl From<CreateTask> for v1::CreateTaskRequest {
    fn from(args: CreateTask) -> Self {
        v1::CreateTaskRequest {
            header: None,
            obj: Some(args.obj.into()),
            entity_name: args.entity_name,
            task_type_id: args.task_type_id,
            initiated_by: args.initiated_by,
            cancelable: args.cancelable,
            parent_task_key: args.parent_task_key,
            activation_id: args.activation_id,
            change_tag: args.change_tag,
            lease: args.lease_millis.map(millis_to_duration),
        }
    }
}

impl TryFrom<v1::CreateTaskRequest> for CreateTask {
    type Error = MethodFault;
    fn try_from(request: v1::CreateTaskRequest) -> Result<Self, MethodFault> {
        Ok(CreateTask {
            obj: moref(request.obj, "obj")?,
            entity_name: request.entity_name,
            task_type_id: request.task_type_id,
            initiated_by: request.initiated_by,
            cancelable: request.cancelable,
            parent_task_key: request.parent_task_key,
            activation_id: request.activation_id,
            change_tag: request.change_tag,
            lease_millis: request
                .lease
                .map(|d| millis(&d).map_err(|e| e.at("lease")))
                .transpose()?,
        })
    }
}

impl TryFrom<v1::CreateTaskRequest> for Command {
    type Error = MethodFault;
    fn try_from(request: v1::CreateTaskRequest) -> Result<Self, MethodFault> {
        CreateTask::try_from(request).map(Command::CreateTask)
    }
}

impl From<v1::CancelTaskRequest> for Command {
    fn from(request: v1::CancelTaskRequest) -> Self {
        Command::CancelTask { task: request.task }
    }
}

impl TryFrom<v1::UpdateProgressRequest> for Command {
    type Error = MethodFault;
    fn try_from(request: v1::UpdateProgressRequest) -> Result<Self, MethodFault> {
        let api_version = v1::ApiVersion::try_from(request.api_version)
            .map_err(|_| FieldError::invalid("apiVersion", "unknown API version"))?;
        let progress_details = request
            .progress_details
            .map(|d| key_any_values(d.details, "progressDetails.details"))
            .transpose()?;
        Ok(Command::UpdateProgress {
            task: request.task,
            percent_done: request.percent_done,
            progress_details,
            api_version: api_version.into(),
        })
    }
}

impl TryFrom<v1::SetTaskStateRequest> for Command {
    type Error = MethodFault;
    fn try_from(request: v1::SetTaskStateRequest) -> Result<Self, MethodFault> {
        Ok(Command::SetTaskState {
            task: request.task,
            state: state(request.state, "state")?,
            result: optional_any_value(request.result, "result")?,
            fault: optional_fault(request.fault, "fault")?,
        })
    }
}

impl TryFrom<v1::SetTaskDescriptionRequest> for Command {
    type Error = MethodFault;
    fn try_from(request: v1::SetTaskDescriptionRequest) -> Result<Self, MethodFault> {
        let description = required(request.description, "description")?;
        Ok(Command::SetTaskDescription {
            task: request.task,
            description: localizable_message(description).map_err(|e| e.at("description"))?,
        })
    }
}

// ---------------------------------------------------------------------------
// Faults in gRPC statuses

/// The gRPC status code of a fault kind: the table in `proto/vtask/v1/fault.proto`.
pub fn fault_code(kind: &FaultKind) -> tonic::Code {
    use tonic::Code;
    match kind {
        FaultKind::InvalidState => Code::FailedPrecondition,
        FaultKind::ManagedObjectNotFound { .. } => Code::NotFound,
        FaultKind::InvalidArgument { .. } => Code::InvalidArgument,
        FaultKind::OutOfBounds { .. } => Code::OutOfRange,
        FaultKind::NotSupported => Code::Unimplemented,
        FaultKind::NotAuthenticated => Code::Unauthenticated,
        FaultKind::NoPermission { .. } | FaultKind::SecurityError => Code::PermissionDenied,
        FaultKind::RequestCanceled => Code::Cancelled,
        FaultKind::SystemError { .. } => Code::Internal,
        FaultKind::Other { .. } => Code::Unknown,
    }
}

/// The `google.rpc.Status` of a fault: the code of [`fault_code`], the
/// fault's message (the standard one when it has none), and the fault itself
/// in the details. gRPC's richer error model carries it in the
/// `grpc-status-details-bin` trailer; a failed Operation carries it as its
/// `error`.
pub fn fault_to_rpc_status(fault: &MethodFault) -> RpcStatus {
    RpcStatus {
        code: fault_code(&fault.kind) as i32,
        message: fault.message(),
        details: vec![prost_types::Any {
            type_url: METHOD_FAULT_TYPE_URL.to_string(),
            value: v1::MethodFault::from(fault.clone()).encode_to_vec(),
        }],
    }
}

/// The status a call that failed with `fault` answers with.
pub fn fault_to_status(fault: &MethodFault) -> tonic::Status {
    let details = fault_to_rpc_status(fault);
    tonic::Status::with_details(
        fault_code(&fault.kind),
        details.message.clone(),
        details.encode_to_vec().into(),
    )
}

/// The fault a status carries in its details, if it carries a readable one.
/// A status without one (a transport error, a deadline) gives `None`.
pub fn status_to_fault(status: &tonic::Status) -> Option<MethodFault> {
    let details = RpcStatus::decode(status.details()).ok()?;
    details
        .details
        .iter()
        .find(|any| any.type_url.rsplit('/').next() == METHOD_FAULT_TYPE_URL.rsplit('/').next())
        .and_then(|any| v1::MethodFault::decode(any.value.as_slice()).ok())
        .and_then(|fault| MethodFault::try_from(fault).ok())
}
