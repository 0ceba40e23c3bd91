//! Requests as pyVmomi 9.1 sends them (captured with its own serializer),
//! and replies as pyVmomi reads them.

use vtask_model::{
    AnyValue, Command, FaultKind, LocalizableMessage, MethodFault, MoRef, State, TaskInfo, TaskKey,
    TaskReason, Timestamp,
};

use crate::encode::{self, FilterUpdate, ObjectUpdate, Returns, UpdateKind, UpdateSet, Val};
use crate::request::decode;

fn envelope(body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">
<soapenv:Body>{body}</soapenv:Body>
</soapenv:Envelope>"#
    )
}

/// Decodes a body and renders the outcome as one line: the method, or the
/// fault's type and message.
fn check(body: &str, expect: &str) {
    let got = match decode(envelope(body).as_bytes()) {
        Ok(request) => format!(
            "{}:{} {:?}",
            request.this.type_, request.this.value, request.method
        ),
        Err(fault) => format!("{}: {}", fault.kind.type_name(), fault.message()),
    };
    assert_eq!(got, expect, "\n{body}");
}

#[test]
fn pyvmomi_requests_decode() {
    check(
        r#"<RetrieveServiceContent xmlns="urn:vim25"><_this versionId="8.0.3.0" type="ServiceInstance">ServiceInstance</_this></RetrieveServiceContent>"#,
        "ServiceInstance:ServiceInstance RetrieveServiceContent",
    );
    check(
        r#"<Login xmlns="urn:vim25"><_this versionId="8.0.3.0" type="SessionManager">SessionManager</_this><userName versionId="8.0.3.0">alice</userName><password versionId="8.0.3.0">p&amp;w</password></Login>"#,
        r#"SessionManager:SessionManager Login { user_name: "alice", password: "p&w" }"#,
    );
    check(
        r#"<UpdateProgress xmlns="urn:vim25"><_this versionId="8.0.3.0" type="Task">task-1</_this><percentDone versionId="8.0.3.0">42</percentDone></UpdateProgress>"#,
        "Task:task-1 UpdateProgress { percent_done: 42 }",
    );
    check(
        r#"<CancelTask xmlns="urn:vim25"><_this versionId="8.0.3.0" type="Task">task-1</_this></CancelTask>"#,
        "Task:task-1 CancelTask",
    );
    check(
        r#"<Fetch xmlns="urn:vim25"><_this type="Task">task-7</_this><prop>info</prop></Fetch>"#,
        r#"Task:task-7 Fetch { prop: "info" }"#,
    );
    check(
        r#"<WaitForUpdatesEx xmlns="urn:vim25"><_this versionId="8.0.3.0" type="PropertyCollector">propertyCollector</_this><version versionId="8.0.3.0">3</version><options versionId="8.0.3.0"><maxWaitSeconds>5</maxWaitSeconds></options></WaitForUpdatesEx>"#,
        r#"PropertyCollector:propertyCollector WaitForUpdatesEx { version: "3", max_wait_seconds: Some(5) }"#,
    );
    check(
        r#"<WaitForUpdates xmlns="urn:vim25"><_this versionId="8.0.3.0" type="PropertyCollector">propertyCollector</_this><version versionId="8.0.3.0"></version></WaitForUpdates>"#,
        r#"PropertyCollector:propertyCollector WaitForUpdates { version: "" }"#,
    );
    check(
        r#"<CreateFilter xmlns="urn:vim25"><_this versionId="8.0.3.0" type="PropertyCollector">propertyCollector</_this><spec versionId="8.0.3.0"><propSet><type>Task</type><all>true</all></propSet><objectSet><obj type="Task">task-1</obj></objectSet></spec><partialUpdates versionId="8.0.3.0">true</partialUpdates></CreateFilter>"#,
        r#"PropertyCollector:propertyCollector CreateFilter { spec: FilterSpec { objects: [MoRef { type_: "Task", value: "task-1" }], props: [PropSpec { type_: "Task", all: true, paths: [] }] }, partial_updates: true }"#,
    );
}

#[test]
fn task_methods_become_model_commands() {
    let command = |body: &str| decode(envelope(body).as_bytes()).unwrap().command();
    assert_eq!(
        command(
            r#"<CreateTask xmlns="urn:vim25"><_this versionId="8.0.3.0" type="TaskManager">TaskManager</_this><obj versionId="8.0.3.0" type="Folder">group-d1</obj><taskTypeId versionId="8.0.3.0">com.example.x</taskTypeId><initiatedBy versionId="8.0.3.0">bob</initiatedBy><cancelable versionId="8.0.3.0">true</cancelable></CreateTask>"#
        ),
        Some(Command::CreateTask(vtask_model::CreateTask {
            obj: MoRef::new("Folder", "group-d1"),
            task_type_id: "com.example.x".into(),
            initiated_by: Some("bob".into()),
            cancelable: true,
            ..Default::default()
        }))
    );
    assert_eq!(
        command(
            r#"<SetTaskState xmlns="urn:vim25"><_this versionId="8.0.3.0" type="Task">task-1</_this><state versionId="8.0.3.0">error</state><fault versionId="8.0.3.0"><fault xsi:type="InvalidState"></fault><localizedMessage>boom</localizedMessage></fault></SetTaskState>"#
        ),
        Some(Command::SetTaskState {
            task: "task-1".into(),
            state: State::Error,
            result: None,
            fault: Some(MethodFault::with_message(FaultKind::InvalidState, "boom")),
        })
    );
    assert_eq!(
        command(
            r#"<SetTaskState xmlns="urn:vim25"><_this versionId="8.0.3.0" type="Task">task-1</_this><state versionId="8.0.3.0">success</state><result versionId="8.0.3.0" xsi:type="xsd:string">hello</result></SetTaskState>"#
        ),
        Some(Command::SetTaskState {
            task: "task-1".into(),
            state: State::Success,
            result: Some(AnyValue::String("hello".into())),
            fault: None,
        })
    );
    assert_eq!(
        command(
            r#"<SetTaskDescription xmlns="urn:vim25"><_this versionId="8.0.3.0" type="Task">task-1</_this><description versionId="8.0.3.0"><key>k.x</key><arg><key>a</key><value xsi:type="xsd:int">1</value></arg><message>Copying</message></description></SetTaskDescription>"#
        ),
        Some(Command::SetTaskDescription {
            task: "task-1".into(),
            description: LocalizableMessage {
                key: "k.x".into(),
                arg: vec![vtask_model::KeyAnyValue {
                    key: "a".into(),
                    value: AnyValue::Long(1)
                }],
                message: Some("Copying".into()),
            },
        })
    );
}

#[test]
fn bad_requests_are_faults() {
    let this = r#"<_this type="Task">task-1</_this>"#;
    check(
        &format!("<Nope>{this}</Nope>"),
        "InvalidRequest: Unable to resolve WSDL method name Nope",
    );
    check(
        &format!(r#"<UpdateProgress>{this}<percentDone>lots</percentDone></UpdateProgress>"#),
        r#"InvalidRequest: percentDone: "lots" is not an int"#,
    );
    check(
        &format!("<UpdateProgress>{this}</UpdateProgress>"),
        "InvalidRequest: UpdateProgress: the argument percentDone is missing",
    );
    check(
        "<CancelTask><_this>task-1</_this></CancelTask>",
        "InvalidRequest: _this: a ManagedObjectReference needs a type",
    );
    check(
        r#"<CancelTask><_this type="TaskManager">TaskManager</_this></CancelTask>"#,
        "MethodNotFound: The method CancelTask is not served on TaskManager:TaskManager",
    );
    check(
        &format!(r#"<SetTaskState>{this}<state>done</state></SetTaskState>"#),
        r#"InvalidRequest: state: "done" is not a TaskInfoState"#,
    );
    check(
        &format!(r#"<SetTaskState>{this}<state>success</state><result xsi:type="VirtualMachineConfigSpec"/></SetTaskState>"#),
        "NotSupported: result: values of type VirtualMachineConfigSpec are not supported; send a string, a number, a boolean, a dateTime or a ManagedObjectReference",
    );
    for garbage in [
        "",
        "<",
        "<soapenv:Envelope>",
        "<a/>",
        "\u{0}\u{1}",
        "<Envelope><Body/></Envelope>",
    ] {
        let fault = decode(garbage.as_bytes()).unwrap_err();
        assert_eq!(fault.kind.type_name(), "InvalidRequest", "{garbage:?}");
    }
    let huge = vec![b' '; crate::request::MAX_REQUEST_BYTES + 1];
    assert_eq!(
        decode(&huge).unwrap_err().kind.type_name(),
        "InvalidRequest"
    );
}

fn task() -> TaskInfo {
    TaskInfo {
        key: TaskKey(7),
        description: None,
        name: None,
        description_id: "com.example.backup".into(),
        entity: Some(MoRef::new("VirtualMachine", "vm-42")),
        entity_name: Some("db <1>".into()),
        locked: vec![],
        state: State::Error,
        cancelled: false,
        cancelable: true,
        error: Some(MethodFault::new(FaultKind::NoPermission {
            object: Some(MoRef::new("Task", "task-7")),
            privilege_id: Some("Task.Update".into()),
        })),
        result: None,
        progress: Some(60),
        progress_details: vec![],
        reason: TaskReason::User {
            user_name: "alice".into(),
        },
        queue_time: Timestamp::from_micros(1_796_309_365_000_000),
        start_time: Some(Timestamp::from_micros(1_796_309_366_000_000)),
        complete_time: None,
        event_chain_id: 3,
        change_tag: None,
        parent_task_key: None,
        root_task_key: None,
        activation_id: None,
    }
}

#[test]
fn task_info_has_wsdl_order_and_types() {
    let body = encode::response("Fetch", &Returns::One(Val::TaskInfo(Box::new(task()))));
    let expected = concat!(
        r#"<FetchResponse xmlns="urn:vim25"><returnval xsi:type="TaskInfo"><key>task-7</key><task type="Task">task-7</task>"#,
        r#"<descriptionId>com.example.backup</descriptionId><entity type="VirtualMachine">vm-42</entity><entityName>db &lt;1&gt;</entityName>"#,
        r#"<state>error</state><cancelled>false</cancelled><cancelable>true</cancelable>"#,
        r#"<error><fault xsi:type="NoPermission"><object type="Task">task-7</object><privilegeId>Task.Update</privilegeId></fault><localizedMessage>Permission to perform this operation was denied: Task.Update</localizedMessage></error>"#,
        r#"<progress>60</progress><reason xsi:type="TaskReasonUser"><userName>alice</userName></reason>"#,
        r#"<queueTime>2026-12-03T14:49:25.000000Z</queueTime><startTime>2026-12-03T14:49:26.000000Z</startTime><eventChainId>3</eventChainId></returnval></FetchResponse>"#,
    );
    assert!(body.contains(expected), "{body}");
}

#[test]
fn faults_carry_their_type_in_the_detail() {
    let cases = [
        (
            MethodFault::invalid_state("no"),
            r#"<faultstring>no</faultstring><detail><InvalidStateFault xmlns="urn:vim25" xsi:type="InvalidState"></InvalidStateFault></detail>"#,
        ),
        (
            MethodFault::new(FaultKind::ManagedObjectNotFound {
                obj: MoRef::new("Task", "task-9"),
            }),
            r#"<detail><ManagedObjectNotFoundFault xmlns="urn:vim25" xsi:type="ManagedObjectNotFound"><obj type="Task">task-9</obj></ManagedObjectNotFoundFault></detail>"#,
        ),
        (
            MethodFault::invalid_argument("percentDone", "bad"),
            r#"<InvalidArgumentFault xmlns="urn:vim25" xsi:type="InvalidArgument"><invalidProperty>percentDone</invalidProperty></InvalidArgumentFault>"#,
        ),
        (
            MethodFault::new(FaultKind::Other {
                type_name: "not a name".into(),
            }),
            r#"<MethodFaultFault xmlns="urn:vim25" xsi:type="MethodFault">"#,
        ),
    ];
    for (fault, expected) in cases {
        let body = encode::fault(&fault);
        assert!(body.contains(expected), "{body}");
        assert!(body.contains("<faultcode>ServerFaultCode</faultcode>"));
    }
}

#[test]
fn update_sets_assign_whole_values() {
    let update = UpdateSet {
        version: "12".into(),
        filters: vec![FilterUpdate {
            filter: MoRef::new("PropertyFilter", "filter-1"),
            objects: vec![ObjectUpdate {
                kind: UpdateKind::Modify,
                obj: MoRef::new("Task", "task-7"),
                changes: vec![
                    ("info.state".into(), Some(Val::State(State::Running))),
                    ("info.progress".into(), None),
                ],
            }],
        }],
    };
    let body = encode::response("WaitForUpdates", &Returns::One(Val::UpdateSet(update)));
    let expected = concat!(
        r#"<returnval xsi:type="UpdateSet"><version>12</version><filterSet><filter type="PropertyFilter">filter-1</filter>"#,
        r#"<objectSet><kind>modify</kind><obj type="Task">task-7</obj>"#,
        r#"<changeSet><name>info.state</name><op>assign</op><val xsi:type="TaskInfoState">running</val></changeSet>"#,
        r#"<changeSet><name>info.progress</name><op>assign</op></changeSet></objectSet></filterSet><truncated>false</truncated></returnval>"#,
    );
    assert!(body.contains(expected), "{body}");
}

#[test]
fn task_properties_by_path() {
    let info = task();
    let got = |path: &str| match crate::task_property(&info, path) {
        Ok(Some(v)) => format!("{} {:?}", v.xsi_type(), v),
        Ok(None) => "unset".into(),
        Err(f) => format!("{}: {}", f.kind.type_name(), f.message()),
    };
    assert_eq!(got("info.state"), "TaskInfoState State(Error)");
    assert_eq!(got("info.progress"), "xsd:int Int(60)");
    assert_eq!(got("info.result"), "unset");
    assert_eq!(got("info").split(' ').next(), Some("TaskInfo"));
    assert_eq!(
        got("info.nope"),
        "InvalidProperty: The property info.nope does not exist"
    );
    assert_eq!(
        got("infox"),
        "InvalidProperty: The property infox does not exist"
    );
    assert_eq!(
        got("state"),
        "InvalidProperty: The property state does not exist"
    );
}

#[test]
fn the_version_document_lists_every_version() {
    let doc = encode::service_versions();
    assert!(doc.contains("<name>urn:vim25</name>\n  <version>8.0.3.0</version>"));
    assert!(doc.contains("<version>7.0.0.0</version></priorVersions>"));
}

#[test]
fn a_collector_filter_decodes_into_the_models_spec() {
    let body = r#"<CreateCollectorForTasks xmlns="urn:vim25"><_this type="TaskManager">TaskManager</_this><filter><entity><entity type="VirtualMachine">vm-42</entity><recursion>self</recursion></entity><time><timeType>queuedTime</timeType><beginTime>2026-12-03T10:00:00Z</beginTime></time><userName><systemUser>false</systemUser><userList>alice</userList><userList>bob</userList></userName><state>running</state><state>queued</state><tag>t1</tag><eventChainId>7</eventChainId></filter></CreateCollectorForTasks>"#;
    let request = decode(envelope(body).as_bytes()).unwrap();
    let crate::request::Method::CreateCollectorForTasks { filter } = request.method else {
        panic!("{:?}", request.method)
    };
    assert_eq!(
        filter.entity,
        Some(vtask_model::FilterByEntity::itself(MoRef::new(
            "VirtualMachine",
            "vm-42"
        )))
    );
    let time = filter.time.unwrap();
    assert_eq!(time.time_type, vtask_model::TimeOption::QueuedTime);
    assert_eq!(time.begin_time, crate::time::parse("2026-12-03T10:00:00Z"));
    assert_eq!(time.end_time, None);
    assert_eq!(
        filter.user_name,
        Some(vtask_model::FilterByUsername::users(vec![
            "alice".into(),
            "bob".into()
        ]))
    );
    assert_eq!(filter.state, vec![State::Running, State::Queued]);
    assert_eq!(
        (filter.tag, filter.event_chain_id),
        (vec!["t1".into()], vec![7])
    );

    check(
        r#"<CreateCollectorForTasks xmlns="urn:vim25"><_this type="TaskManager">TaskManager</_this><filter><state>done</state></filter></CreateCollectorForTasks>"#,
        r#"InvalidRequest: state: "done" is not a TaskInfoState"#,
    );
    check(
        r#"<CreateCollectorForTasks xmlns="urn:vim25"><_this type="TaskManager">TaskManager</_this><filter><time><timeType>whenever</timeType></time></filter></CreateCollectorForTasks>"#,
        r#"InvalidRequest: timeType: "whenever" is not a TaskFilterSpecTimeOption"#,
    );
    check(
        r#"<CreateCollectorForTasks xmlns="urn:vim25"><_this type="Task">task-1</_this><filter/></CreateCollectorForTasks>"#,
        "MethodNotFound: The method CreateCollectorForTasks is not served on Task:task-1",
    );
}

#[test]
fn only_vi_api_2_5_gets_the_old_progress_rule() {
    use crate::request::api_version;
    use vtask_model::ApiVersion;
    let cases = [
        (Some("urn:vim25/2.5"), ApiVersion::Vim25),
        (Some("\"urn:vim25/2.5u2\""), ApiVersion::Vim25),
        (Some("urn:vim25/8.0.3.0"), ApiVersion::Current),
        (Some("urn:vim25/2.50"), ApiVersion::Current),
        (Some("garbage"), ApiVersion::Current),
        (None, ApiVersion::Current),
    ];
    for (header, expected) in cases {
        assert_eq!(api_version(header), expected, "{header:?}");
    }
}
