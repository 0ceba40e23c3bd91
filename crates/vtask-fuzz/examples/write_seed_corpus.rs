//! Writes the seed corpus of the fuzz targets (valid inputs of every type)
//! into `corpus/<target>/`, which the test suite replays. Run it after a
//! wire change: `cargo run -p vtask-fuzz --example write_seed_corpus`.
//! Crashes that fuzzing finds are added to the corpus by hand.

use std::path::PathBuf;

fn main() {
    use prost::Message;
    use vtask_proto::v1;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let write = |target: &str, name: &str, bytes: Vec<u8>| {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    };
    let tagged = |tag: u8, body: Vec<u8>| [vec![tag], body].concat();
    let moref = Some(v1::ManagedObjectReference {
        r#type: "VirtualMachine".into(),
        value: "vm-1".into(),
    });
    let header = Some(v1::RequestHeader {
        client_id: "fuzz".into(),
        seq: 1,
    });
    let filter = Some(v1::TaskFilterSpec {
        tag: vec!["a".into()],
        parent_task_key: vec!["task-1".into()],
        ..Default::default()
    });
    let public: Vec<(u8, Vec<u8>)> = vec![
        (
            0,
            v1::CreateTaskRequest {
                header: header.clone(),
                obj: moref.clone(),
                task_type_id: "com.example.x".into(),
                cancelable: true,
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            1,
            v1::CancelTaskRequest {
                header: header.clone(),
                task: "task-1".into(),
            }
            .encode_to_vec(),
        ),
        (
            2,
            v1::UpdateProgressRequest {
                header: header.clone(),
                task: "task-1".into(),
                percent_done: 50,
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            3,
            v1::SetTaskStateRequest {
                header: header.clone(),
                task: "task-1".into(),
                state: 2,
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            4,
            v1::SetTaskDescriptionRequest {
                header: header.clone(),
                task: "task-1".into(),
                description: Some(v1::LocalizableMessage {
                    key: "k".into(),
                    ..Default::default()
                }),
            }
            .encode_to_vec(),
        ),
        (
            5,
            v1::GetTaskRequest {
                key: "task-1".into(),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            6,
            v1::ListTasksRequest {
                filter: filter.clone(),
                page_size: 10,
                page_token: "task-3".into(),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            8,
            v1::WatchTasksRequest {
                selector: Some(v1::watch_tasks_request::Selector::Filter(
                    filter.clone().unwrap(),
                )),
                start_revision: 3,
            }
            .encode_to_vec(),
        ),
        (
            9,
            v1::WaitTaskRequest {
                key: "task-1".into(),
                timeout: Some(prost_types::Duration {
                    seconds: 1,
                    nanos: 5,
                }),
            }
            .encode_to_vec(),
        ),
        (
            11,
            v1::CreateCollectorForTasksRequest {
                header: header.clone(),
                filter: filter.clone(),
            }
            .encode_to_vec(),
        ),
        (
            12,
            v1::ReadNextTasksRequest {
                header: header.clone(),
                collector: "collector-1".into(),
                max_count: 5,
            }
            .encode_to_vec(),
        ),
        (
            16,
            v1::SetCollectorPageSizeRequest {
                header,
                collector: "collector-1".into(),
                max_count: 5,
            }
            .encode_to_vec(),
        ),
    ];
    for (tag, body) in public {
        write(
            "public_request",
            &format!("seed-{tag:02}"),
            tagged(tag, body),
        );
    }
    for (i, seed) in [[0u8; 64], [0x11; 64], [0x5a; 64], [0xff; 64]]
        .iter()
        .enumerate()
    {
        let mut bytes = seed.to_vec();
        for (j, b) in bytes.iter_mut().enumerate() {
            *b = b.wrapping_add((j * (i + 3)) as u8);
        }
        write("apply_commands", &format!("seed-{i}"), bytes);
    }
    let request = vtask_store::Request {
        client: Some(vtask_store::ClientRef {
            id: "c".into(),
            seq: 1,
        }),
        caller: vtask_model::Caller::user("alice", vtask_model::Privileges::ALL),
        command: vtask_model::Command::CancelTask {
            task: "task-1".into(),
        },
    };
    let request_bytes = vtask_raft::codec::encode(&request);
    // vtaskd's `Forwarded::Propose(request)`: an enum variant is a map of
    // its name to its value.
    let forward =
        vtask_raft::codec::encode(&std::collections::BTreeMap::from([("Propose", &request)]));
    let vote = openraft::raft::VoteRequest::<vtask_store::NodeId>::new(
        openraft::Vote::new(2, 1),
        Some(openraft::LogId::new(
            openraft::CommittedLeaderId::new(1, 1),
            3,
        )),
    );
    write(
        "internal_request",
        "seed-vote",
        tagged(
            1,
            vtask_proto::raft::v1::RaftRequest {
                payload: vtask_raft::codec::encode(&vote),
            }
            .encode_to_vec(),
        ),
    );
    write(
        "internal_request",
        "seed-forward",
        tagged(
            3,
            vtask_proto::raft::v1::ForwardRequest { proposal: forward }.encode_to_vec(),
        ),
    );
    write("internal_request", "seed-request", request_bytes);
    write(
        "internal_request",
        "seed-chunk",
        tagged(
            2,
            vtask_proto::raft::v1::SnapshotChunk {
                meta: b"{}".to_vec(),
                offset: 0,
                data: vec![1, 2, 3],
                done: true,
            }
            .encode_to_vec(),
        ),
    );
    // vim25 requests as pyVmomi 9.1 sends them, one per method family.
    let soap = |body: &str| {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\"><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"
        )
        .into_bytes()
    };
    let soap_seeds = [
        (
            "login",
            r#"<Login xmlns="urn:vim25"><_this type="SessionManager">SessionManager</_this><userName>alice</userName><password>p&amp;w</password></Login>"#,
        ),
        (
            "create",
            r#"<CreateTask xmlns="urn:vim25"><_this type="TaskManager">TaskManager</_this><obj type="Folder">group-d1</obj><taskTypeId>com.example.x</taskTypeId><initiatedBy>alice</initiatedBy><cancelable>true</cancelable><activationId>a-1</activationId></CreateTask>"#,
        ),
        (
            "progress",
            r#"<UpdateProgress xmlns="urn:vim25"><_this type="Task">task-1</_this><percentDone>42</percentDone></UpdateProgress>"#,
        ),
        (
            "state-fault",
            r#"<SetTaskState xmlns="urn:vim25"><_this type="Task">task-1</_this><state>error</state><fault xsi:type="LocalizedMethodFault"><fault xsi:type="InvalidArgument"><invalidProperty>x&lt;y</invalidProperty></fault><localizedMessage>bad &amp; worse</localizedMessage></fault></SetTaskState>"#,
        ),
        (
            "state-result",
            r#"<SetTaskState xmlns="urn:vim25"><_this type="Task">task-1</_this><state>success</state><result xsi:type="xsd:dateTime">2026-12-03T10:00:00Z</result></SetTaskState>"#,
        ),
        (
            "describe",
            r#"<SetTaskDescription xmlns="urn:vim25"><_this type="Task">task-1</_this><description><key>k.copy</key><arg><key>n</key><value xsi:type="xsd:int">3</value></arg><message>Copying</message></description></SetTaskDescription>"#,
        ),
        (
            "collector",
            r#"<CreateCollectorForTasks xmlns="urn:vim25"><_this type="TaskManager">TaskManager</_this><filter><entity><entity type="VirtualMachine">vm-42</entity><recursion>self</recursion></entity><state>running</state></filter></CreateCollectorForTasks>"#,
        ),
        (
            "filter",
            r#"<CreateFilter xmlns="urn:vim25"><_this type="PropertyCollector">propertyCollector</_this><spec><propSet><type>Task</type><all>true</all></propSet><objectSet><obj type="Task">task-1</obj><skip>false</skip></objectSet></spec><partialUpdates>false</partialUpdates></CreateFilter>"#,
        ),
        (
            "wait",
            r#"<WaitForUpdatesEx xmlns="urn:vim25"><_this type="PropertyCollector">propertyCollector</_this><version>3</version><options><maxWaitSeconds>5</maxWaitSeconds></options></WaitForUpdatesEx>"#,
        ),
    ];
    for (name, body) in soap_seeds {
        write("soap_request", &format!("seed-{name}"), soap(body));
    }
    let target = vtask_fuzz::SnapshotTarget::new();
    write("snapshot", "seed-valid", tagged(0, target.valid().to_vec()));
    write("snapshot", "seed-flip", vec![1, 0, 40, 0x20, 0, 90, 0x01]);
    write(
        "snapshot",
        "seed-flip-rehashed",
        vec![2, 0, 60, 0x08, 0, 120, 0x40],
    );
    write("snapshot", "seed-truncated", vec![1, 128]);
}
