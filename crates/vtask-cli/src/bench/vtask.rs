//! The workloads against vtask: raw generated gRPC clients rather than
//! `vtask-client`, so that a failed call is counted as an error instead of
//! being retried inside the measured latency.

use tonic::transport::Channel;
use tonic::Status;
use vtask_proto::v1::task_client::TaskClient;
use vtask_proto::v1::task_manager_client::TaskManagerClient;
use vtask_proto::v1::{self, ReadConsistency, RequestHeader, TaskInfoState};

use super::{Recorder, Workload};

/// One simulated control-plane client: its own client id and rising
/// sequence numbers, as every mutation must carry (D27).
pub struct Client {
    tasks: TaskClient<Channel>,
    manager: TaskManagerClient<Channel>,
    client_id: String,
    seq: u64,
    /// The running task that `progress`, `get` and `mixed` work on.
    task: String,
    /// Spreads the `mixed` schedule so clients do not create in lockstep.
    offset: u64,
}

impl Client {
    /// A client with what its workload needs before the clock starts.
    pub async fn setup(
        channel: Channel,
        client_id: String,
        offset: u64,
        workload: Workload,
    ) -> Result<Client, Status> {
        let mut client = Client {
            tasks: TaskClient::new(channel.clone()),
            manager: TaskManagerClient::new(channel),
            client_id,
            seq: 0,
            task: String::new(),
            offset,
        };
        if !matches!(workload, Workload::Lifecycle | Workload::Create) {
            client.task = client.create().await?;
            client.start(client.task.clone()).await?;
        }
        Ok(client)
    }

    pub async fn run(mut self, workload: Workload, recorder: Recorder) {
        let mut n = self.offset;
        while recorder.running() {
            n += 1;
            match workload {
                Workload::Progress => self.progress_once(&recorder, n).await,
                Workload::Get | Workload::GetStale => {
                    let stale = workload == Workload::GetStale;
                    let task = self.task.clone();
                    recorder.time(self.get(task, stale)).await;
                }
                Workload::Mixed => match n % 20 {
                    0 => {
                        recorder.time(self.create()).await;
                    }
                    1 => {
                        let task = self.task.clone();
                        recorder.time(self.get(task, false)).await;
                    }
                    _ => self.progress_once(&recorder, n).await,
                },
                Workload::Lifecycle => self.lifecycle_once(&recorder).await,
                Workload::Create => {
                    recorder.time(self.create()).await;
                }
            }
        }
    }

    async fn progress_once(&mut self, recorder: &Recorder, n: u64) {
        let task = self.task.clone();
        recorder.time(self.progress(task, (n % 101) as i32)).await;
    }

    /// One task from creation to success; a failed step abandons the task,
    /// since every later step would fail on it as well.
    async fn lifecycle_once(&mut self, recorder: &Recorder) {
        let Some(task) = recorder.time(self.create()).await else {
            return;
        };
        if recorder.time(self.start(task.clone())).await.is_none() {
            return;
        }
        for percent in (10..=100).step_by(10) {
            if !recorder.running()
                || recorder
                    .time(self.progress(task.clone(), percent))
                    .await
                    .is_none()
            {
                return;
            }
        }
        recorder.time(self.succeed(task)).await;
    }

    fn header(&mut self) -> Option<RequestHeader> {
        self.seq += 1;
        Some(RequestHeader {
            client_id: self.client_id.clone(),
            seq: self.seq,
        })
    }

    async fn create(&mut self) -> Result<String, Status> {
        let request = v1::CreateTaskRequest {
            header: self.header(),
            obj: Some(v1::ManagedObjectReference {
                r#type: "VirtualMachine".into(),
                value: self.client_id.clone(),
            }),
            task_type_id: "vtask.bench".into(),
            cancelable: true,
            ..Default::default()
        };
        let reply = self.manager.create_task(request).await?.into_inner();
        reply
            .info
            .map(|info| info.key)
            .ok_or_else(|| Status::internal("CreateTask answered without a TaskInfo"))
    }

    async fn start(&mut self, task: String) -> Result<(), Status> {
        self.set_state(task, TaskInfoState::Running).await
    }

    async fn succeed(&mut self, task: String) -> Result<(), Status> {
        self.set_state(task, TaskInfoState::Success).await
    }

    async fn set_state(&mut self, task: String, state: TaskInfoState) -> Result<(), Status> {
        let request = v1::SetTaskStateRequest {
            header: self.header(),
            task,
            state: state as i32,
            ..Default::default()
        };
        self.tasks.set_task_state(request).await?;
        Ok(())
    }

    async fn progress(&mut self, task: String, percent_done: i32) -> Result<(), Status> {
        let request = v1::UpdateProgressRequest {
            header: self.header(),
            task,
            percent_done,
            ..Default::default()
        };
        self.tasks.update_progress(request).await?;
        Ok(())
    }

    async fn get(&mut self, key: String, stale: bool) -> Result<(), Status> {
        let consistency = if stale {
            ReadConsistency::Stale
        } else {
            ReadConsistency::Linearizable
        };
        let request = v1::GetTaskRequest {
            key,
            consistency: consistency as i32,
        };
        self.manager.get_task(request).await?;
        Ok(())
    }
}
