//! The `google.longrunning.Operations` door (AIP-151): every task is an
//! Operation named `operations/<task key>`, served from the same task
//! service, with the same callers, privileges, faults and consistency as
//! the `vtask.v1` door (`api.rs`). This module only translates.
//!
//! - `metadata` is the task's `vtask.v1.TaskInfo`; `done` is a terminal state;
//!   `response` is the task's result as a `vtask.v1.AnyValue` (empty when the
//!   task returned none), `error` the task's fault as a `google.rpc.Status`
//!   whose details carry the `vtask.v1.MethodFault`.
//! - `ListOperations` takes an AIP-160 filter ([`parse_filter`]) and maps it
//!   onto a `TaskFilterSpec`; its page tokens are ListTasks'.
//! - `CancelOperation` is `CancelTask`; `WaitOperation` is `WaitTask`.
//! - `DeleteOperation` deletes nothing: a task stays until retention (D16)
//!   removes it, on every node alike. A running task answers
//!   `FAILED_PRECONDITION` (InvalidState: it still runs; cancel it first),
//!   a finished one `UNIMPLEMENTED` (NotSupported), which AIP-151 allows.

use std::time::Duration;

use prost::Message;
use tonic::{Request, Response, Status};
use vtask_model::{
    Caller, Command, FilterByEntity, FilterByTime, FilterByUsername, MethodFault, MoRef, State,
    TaskFilterSpec, TaskInfo, TimeOption,
};
use vtask_proto::convert::{duration_to_millis, fault_to_rpc_status, timestamp_from_proto};
use vtask_proto::google::longrunning::{
    self as lro, operation, operations_server::Operations, operations_server::OperationsServer,
};
use vtask_proto::{v1, ANY_VALUE_TYPE_URL, TASK_INFO_TYPE_URL};

use crate::api::status;
use crate::limits::MAX_REQUEST_BYTES;
use crate::service::{self, Consistency, TaskService};

/// The collection every Operation belongs to: `ListOperations`' `name`.
const COLLECTION: &str = "operations";
/// Optional request metadata that gives a `CancelOperation` the retry
/// identity (D27) a `vtask.v1` call carries in its header, so that a client
/// that retries a cancel it got no answer for has it applied once.
const CLIENT_ID_HEADER: &str = "vtask-client-id";
const SEQ_HEADER: &str = "vtask-seq";

#[derive(Clone)]
pub struct LongRunning {
    tasks: TaskService,
}

pub fn operations_service(tasks: TaskService) -> OperationsServer<LongRunning> {
    OperationsServer::new(LongRunning { tasks }).max_decoding_message_size(MAX_REQUEST_BYTES)
}

fn invalid(property: &str, message: impl std::fmt::Display) -> Status {
    status(
        MethodFault::invalid_argument(
            property,
            format!("A specified parameter was not correct: {message}"),
        )
        .into(),
    )
}

/// The task key an Operation name names.
fn task_key(name: &str) -> Result<&str, Status> {
    match name.strip_prefix("operations/") {
        Some(key) if !key.is_empty() => Ok(key),
        _ => Err(invalid(
            "name",
            format!("{name:?} is no operation name; vtask names them operations/<task key>, as operations/task-1"),
        )),
    }
}

/// A task as an Operation.
pub fn operation(info: TaskInfo) -> lro::Operation {
    let name = format!("{COLLECTION}/{}", info.key);
    let result = match info.state {
        State::Queued | State::Running => None,
        State::Success => Some(operation::Result::Response(prost_types::Any {
            type_url: ANY_VALUE_TYPE_URL.into(),
            value: info
                .result
                .clone()
                .map(v1::AnyValue::from)
                .unwrap_or_default()
                .encode_to_vec(),
        })),
        State::Error => Some(operation::Result::Error(match &info.error {
            Some(fault) => fault_to_rpc_status(fault),
            // The model ends a task in error with a fault; an operation
            // that is done must still say it failed.
            None => vtask_proto::google::rpc::Status {
                code: tonic::Code::Unknown as i32,
                message: format!("{} ended in error without a fault", info.key),
                details: Vec::new(),
            },
        })),
    };
    lro::Operation {
        name,
        done: result.is_some(),
        metadata: Some(prost_types::Any {
            type_url: TASK_INFO_TYPE_URL.into(),
            value: v1::TaskInfo::from(info).encode_to_vec(),
        }),
        result,
    }
}

/// The retry identity of a cancel, from its optional metadata.
fn client_identity<T>(request: &Request<T>) -> Result<Option<vtask_store::ClientRef>, Status> {
    let metadata = request.metadata();
    let text = |name: &str| metadata.get(name).and_then(|v| v.to_str().ok());
    let Some(client_id) = text(CLIENT_ID_HEADER) else {
        return Ok(None);
    };
    let seq = match text(SEQ_HEADER).map(str::parse::<u64>) {
        Some(Ok(seq)) => seq,
        _ => {
            return Err(invalid(
                SEQ_HEADER,
                format!("{CLIENT_ID_HEADER} needs {SEQ_HEADER}, the request's number"),
            ))
        }
    };
    service::client_ref(client_id, seq).map_err(status)
}

impl LongRunning {
    fn caller<T>(&self, request: &Request<T>) -> Caller {
        self.tasks.auth().caller(request.metadata())
    }

    /// The task of the Operation `name`, read linearizably for the caller.
    async fn task<T>(&self, request: &Request<T>, name: &str) -> Result<TaskInfo, Status> {
        let (info, _) = self
            .tasks
            .get_task(
                &self.caller(request),
                task_key(name)?,
                Consistency::Linearizable,
            )
            .await
            .map_err(status)?;
        Ok(info)
    }
}

#[tonic::async_trait]
impl Operations for LongRunning {
    async fn list_operations(
        &self,
        request: Request<lro::ListOperationsRequest>,
    ) -> Result<Response<lro::ListOperationsResponse>, Status> {
        let caller = self.caller(&request);
        let request = request.into_inner();
        if !request.name.is_empty() && request.name != COLLECTION {
            return Err(invalid(
                "name",
                format!(
                    "vtask has one collection of operations, {COLLECTION:?}, not {:?}",
                    request.name
                ),
            ));
        }
        let filter = parse_filter(&request.filter).map_err(|m| invalid("filter", m))?;
        let page_size = u32::try_from(request.page_size)
            .map_err(|_| invalid("page_size", "a page size is not negative"))?;
        let page = self
            .tasks
            .list_tasks(
                &caller,
                filter,
                page_size,
                &request.page_token,
                Consistency::Linearizable,
            )
            .await
            .map_err(status)?;
        Ok(Response::new(lro::ListOperationsResponse {
            operations: page.tasks.into_iter().map(operation).collect(),
            next_page_token: page.next_page_token,
            ..Default::default()
        }))
    }

    async fn get_operation(
        &self,
        request: Request<lro::GetOperationRequest>,
    ) -> Result<Response<lro::Operation>, Status> {
        let info = self.task(&request, &request.get_ref().name).await?;
        Ok(Response::new(operation(info)))
    }

    async fn delete_operation(
        &self,
        request: Request<lro::DeleteOperationRequest>,
    ) -> Result<Response<()>, Status> {
        let info = self.task(&request, &request.get_ref().name).await?;
        let fault = if info.state.is_terminal() {
            MethodFault::not_supported(format!(
                "{} is kept until retention removes it: vtask deletes no task on request",
                info.key
            ))
        } else {
            MethodFault::invalid_state(format!(
                "The operation is not allowed in the current state: {} is {}; cancel it first (CancelOperation)",
                info.key, info.state
            ))
        };
        Err(status(fault.into()))
    }

    async fn cancel_operation(
        &self,
        request: Request<lro::CancelOperationRequest>,
    ) -> Result<Response<()>, Status> {
        let caller = self.caller(&request);
        let client = client_identity(&request)?;
        let task = task_key(&request.get_ref().name)?.to_string();
        self.tasks
            .submit_task("CancelTask", caller, client, Command::CancelTask { task })
            .await
            .map_err(status)?;
        Ok(Response::new(()))
    }

    async fn wait_operation(
        &self,
        request: Request<lro::WaitOperationRequest>,
    ) -> Result<Response<lro::Operation>, Status> {
        let caller = self.caller(&request);
        let request = request.into_inner();
        let key = task_key(&request.name)?;
        let timeout = match &request.timeout {
            Some(d) => Some(Duration::from_millis(
                duration_to_millis(d, "timeout").map_err(|f| status(f.into()))?,
            )),
            None => None,
        };
        let (info, _) = self
            .tasks
            .wait_task(&caller, key, timeout)
            .await
            .map_err(status)?;
        Ok(Response::new(operation(info)))
    }
}

/// The `TaskFilterSpec` of an AIP-160 filter. The subset served:
///
/// ```text
/// filter := group ("AND" group)*        (empty: every task)
/// group  := term ("OR" term)* | "(" term ("OR" term)* ")"
/// term   := field op value
/// ```
///
/// As AIP-160 says, OR binds tighter than AND. A group names one field, and
/// each field appears in one group: a TaskFilterSpec is a conjunction of
/// fields, each with a list of allowed values. Fields: `state` (QUEUED,
/// RUNNING, SUCCESS, ERROR), `done` (true, false), `entity` ("Type:value"),
/// `initiator` (a user name), `activation_id`, `change_tag`,
/// `parent_task_key`, `root_task_key`, all with `=`; and one of
/// `queue_time`, `start_time`, `complete_time` with `>=` and/or `<=` and an
/// RFC 3339 time (D21: the bounds are inclusive). Values may be quoted.
pub fn parse_filter(text: &str) -> Result<TaskFilterSpec, String> {
    let tokens = tokenize(text)?;
    let mut spec = TaskFilterSpec::default();
    let mut seen: Vec<&'static str> = Vec::new();
    let mut time: Option<FilterByTime> = None;
    let mut rest = tokens.as_slice();
    while !rest.is_empty() {
        let (group, after) = group(rest)?;
        rest = match after {
            [] => after,
            [Token::Word(and)] if and == "AND" => {
                return Err("the filter ends where a term (field = value) should be".into())
            }
            [Token::Word(and), tail @ ..] if and == "AND" => tail,
            [other, ..] => return Err(format!("expected AND, found {other}")),
        };
        let field = group[0].field;
        if group.iter().any(|term| term.field != field) {
            return Err(format!(
                "an OR joins terms of one field, not {field} and {}",
                group.iter().find(|t| t.field != field).unwrap().field
            ));
        }
        if let Some(option) = time_option(field) {
            let bounds = time.get_or_insert(FilterByTime {
                time_type: option,
                begin_time: None,
                end_time: None,
            });
            if bounds.time_type != option {
                return Err("a filter bounds one of queue_time, start_time, complete_time".into());
            }
            if group.len() > 1 {
                return Err(format!("{field} takes no OR"));
            }
            let term = &group[0];
            let parsed: prost_types::Timestamp = term
                .value
                .parse()
                .map_err(|_| format!("{field}: {:?} is no RFC 3339 time", term.value))?;
            let at = timestamp_from_proto(&parsed, field).map_err(|f| f.message())?;
            let slot = match term.op {
                Op::AtLeast => &mut bounds.begin_time,
                Op::AtMost => &mut bounds.end_time,
                Op::Equals => return Err(format!("{field} takes >= or <=")),
            };
            if slot.replace(at).is_some() {
                return Err(format!("{field} {} appears twice", term.op));
            }
            continue;
        }
        // `done` is a set of states: it and `state` are one field.
        let key = if field == "done" { "state" } else { field };
        if seen.contains(&key) {
            return Err(format!(
                "{key} appears in two groups; join its values with OR"
            ));
        }
        seen.push(key);
        for term in &group {
            if term.op != Op::Equals {
                return Err(format!("{field} takes =, not {}", term.op));
            }
            add_term(&mut spec, field, &term.value)?;
        }
    }
    spec.time = time;
    Ok(spec)
}

fn time_option(field: &str) -> Option<TimeOption> {
    match field {
        "queue_time" => Some(TimeOption::QueuedTime),
        "start_time" => Some(TimeOption::StartedTime),
        "complete_time" => Some(TimeOption::CompletedTime),
        _ => None,
    }
}

fn add_term(spec: &mut TaskFilterSpec, field: &str, value: &str) -> Result<(), String> {
    match field {
        "state" => {
            let state = State::parse(&value.to_ascii_lowercase()).ok_or_else(|| {
                format!("state: {value:?} is not QUEUED, RUNNING, SUCCESS or ERROR")
            })?;
            spec.state.push(state);
        }
        "done" => {
            let done = match value {
                "true" => true,
                "false" => false,
                _ => return Err(format!("done: {value:?} is not true or false")),
            };
            spec.state
                .extend(State::ALL.into_iter().filter(|s| s.is_terminal() == done));
        }
        "entity" => {
            if spec.entity.is_some() {
                return Err("a filter names one entity".into());
            }
            let entity = MoRef::parse(value).ok_or_else(|| {
                format!("entity: {value:?} is not Type:value, as VirtualMachine:vm-42")
            })?;
            spec.entity = Some(FilterByEntity::itself(entity));
        }
        "initiator" => spec
            .user_name
            .get_or_insert_with(|| FilterByUsername::users(Vec::new()))
            .user_list
            .push(value.to_string()),
        "activation_id" => spec.activation_id.push(value.to_string()),
        "change_tag" => spec.tag.push(value.to_string()),
        "parent_task_key" => spec.parent_task_key.push(value.to_string()),
        "root_task_key" => spec.root_task_key.push(value.to_string()),
        _ => unreachable!("fields are checked by the tokenizer"),
    }
    Ok(())
}

const FIELDS: [&str; 11] = [
    "state",
    "done",
    "entity",
    "initiator",
    "activation_id",
    "change_tag",
    "parent_task_key",
    "root_task_key",
    "queue_time",
    "start_time",
    "complete_time",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Equals,
    AtLeast,
    AtMost,
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Op::Equals => "=",
            Op::AtLeast => ">=",
            Op::AtMost => "<=",
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Op(Op),
    Open,
    Close,
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Token::Word(w) => write!(f, "{w:?}"),
            Token::Quoted(q) => write!(f, "\"{q}\""),
            Token::Op(op) => write!(f, "'{op}'"),
            Token::Open => f.write_str("'('"),
            Token::Close => f.write_str("')'"),
        }
    }
}

struct Term {
    field: &'static str,
    op: Op,
    value: String,
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' | ')' => {
                chars.next();
                tokens.push(if c == '(' { Token::Open } else { Token::Close });
            }
            '=' | '>' | '<' | '!' | ':' => {
                chars.next();
                let op = match (c, chars.peek()) {
                    ('=', _) => Op::Equals,
                    ('>', Some('=')) => Op::AtLeast,
                    ('<', Some('=')) => Op::AtMost,
                    _ => {
                        return Err(format!(
                            "the operator starting with {c:?} is not served; use =, >= or <="
                        ))
                    }
                };
                if op != Op::Equals {
                    chars.next();
                }
                tokens.push(Token::Op(op));
            }
            '"' => {
                chars.next();
                let mut value = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(escaped) => value.push(escaped),
                            None => return Err("the filter ends inside a quoted value".into()),
                        },
                        Some(c) => value.push(c),
                        None => return Err("the filter ends inside a quoted value".into()),
                    }
                }
                tokens.push(Token::Quoted(value));
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || "()=<>!\"".contains(c) {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                tokens.push(Token::Word(word));
            }
        }
    }
    Ok(tokens)
}

/// One group at the head of `tokens`, and what follows it.
fn group(tokens: &[Token]) -> Result<(Vec<Term>, &[Token]), String> {
    let (parenthesized, mut rest) = match tokens {
        [Token::Open, rest @ ..] => (true, rest),
        _ => (false, tokens),
    };
    let mut terms = Vec::new();
    loop {
        let (t, after) = term(rest)?;
        terms.push(t);
        rest = after;
        match rest {
            [Token::Word(or), tail @ ..] if or == "OR" => rest = tail,
            _ => break,
        }
    }
    if parenthesized {
        rest = match rest {
            [Token::Close, tail @ ..] => tail,
            _ => return Err("a '(' is not closed".into()),
        };
    }
    Ok((terms, rest))
}

fn term(tokens: &[Token]) -> Result<(Term, &[Token]), String> {
    match tokens {
        [Token::Word(field), Token::Op(op), Token::Word(value) | Token::Quoted(value), rest @ ..] =>
        {
            let Some(field) = FIELDS.iter().find(|f| **f == field.as_str()) else {
                return Err(format!(
                    "{field:?} is not a field vtask filters on; use one of {}",
                    FIELDS.join(", ")
                ));
            };
            Ok((
                Term {
                    field,
                    op: *op,
                    value: value.clone(),
                },
                rest,
            ))
        }
        [] => Err("the filter ends where a term (field = value) should be".into()),
        [first, ..] => Err(format!("expected a term (field = value) at {first}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vtask_model::RecursionOption;
    use vtask_model::Timestamp;

    fn at(text: &str) -> Timestamp {
        timestamp_from_proto(&text.parse().unwrap(), "t").unwrap()
    }

    #[test]
    fn filters_map_onto_task_filter_specs() {
        let user = |names: &[&str]| {
            Some(FilterByUsername {
                system_user: false,
                user_list: names.iter().map(|n| n.to_string()).collect(),
            })
        };
        let cases: Vec<(&str, TaskFilterSpec)> = vec![
            ("", TaskFilterSpec::default()),
            ("   ", TaskFilterSpec::default()),
            (
                "state = RUNNING",
                TaskFilterSpec {
                    state: vec![State::Running],
                    ..Default::default()
                },
            ),
            (
                "state = QUEUED OR state = running",
                TaskFilterSpec {
                    state: vec![State::Queued, State::Running],
                    ..Default::default()
                },
            ),
            (
                "done = true",
                TaskFilterSpec {
                    state: vec![State::Success, State::Error],
                    ..Default::default()
                },
            ),
            (
                r#"entity = "VirtualMachine:vm-42" AND (initiator = alice OR initiator = "bob")"#,
                TaskFilterSpec {
                    entity: Some(FilterByEntity {
                        entity: MoRef::new("VirtualMachine", "vm-42"),
                        recursion: RecursionOption::Itself,
                    }),
                    user_name: user(&["alice", "bob"]),
                    ..Default::default()
                },
            ),
            (
                r#"queue_time >= "2026-12-03T10:00:00Z" AND queue_time <= "2026-12-03T11:00:00.5Z""#,
                TaskFilterSpec {
                    time: Some(FilterByTime {
                        time_type: TimeOption::QueuedTime,
                        begin_time: Some(at("2026-12-03T10:00:00Z")),
                        end_time: Some(at("2026-12-03T11:00:00.5Z")),
                    }),
                    ..Default::default()
                },
            ),
            (
                "complete_time <= 2026-12-03T11:00:00Z AND change_tag = nightly AND activation_id = a-1 AND parent_task_key = task-1 AND root_task_key = task-1",
                TaskFilterSpec {
                    time: Some(FilterByTime {
                        time_type: TimeOption::CompletedTime,
                        begin_time: None,
                        end_time: Some(at("2026-12-03T11:00:00Z")),
                    }),
                    tag: vec!["nightly".into()],
                    activation_id: vec!["a-1".into()],
                    parent_task_key: vec!["task-1".into()],
                    root_task_key: vec!["task-1".into()],
                    ..Default::default()
                },
            ),
        ];
        for (text, want) in cases {
            assert_eq!(parse_filter(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn filters_outside_the_subset_are_refused_with_the_reason() {
        let cases = [
            ("state = DONE", "not QUEUED"),
            ("state != RUNNING", "not served"),
            ("progress = 50", "not a field"),
            ("state = RUNNING AND", "ends where a term"),
            ("state = RUNNING state = QUEUED", "expected AND"),
            ("state = RUNNING AND state = QUEUED", "two groups"),
            ("done = true AND state = SUCCESS", "two groups"),
            ("state = RUNNING OR initiator = bob", "one field"),
            ("(state = RUNNING", "not closed"),
            ("entity = vm-42", "Type:value"),
            ("queue_time = 2026-12-03T10:00:00Z", ">= or <="),
            ("queue_time >= yesterday", "RFC 3339"),
            (
                "queue_time >= 2026-12-03T10:00:00Z AND start_time <= 2026-12-03T11:00:00Z",
                "one of queue_time",
            ),
            ("initiator = \"alice", "inside a quoted"),
            ("done = maybe", "true or false"),
        ];
        for (text, reason) in cases {
            match parse_filter(text) {
                Err(message) => assert!(message.contains(reason), "{text}: {message}"),
                Ok(spec) => panic!("{text} was accepted as {spec:?}"),
            }
        }
    }

    #[test]
    fn operation_names_are_task_keys_under_operations() {
        assert_eq!(task_key("operations/task-7").unwrap(), "task-7");
        for name in ["task-7", "operations/", "", "ops/task-7"] {
            let refused = task_key(name).unwrap_err();
            assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{name}");
        }
    }
}
