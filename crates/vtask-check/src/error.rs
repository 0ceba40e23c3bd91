//! Why a history cannot be checked at all. A history that can be checked
//! and fails is not an error: it is an anomaly in the [`crate::Report`].

use thiserror::Error;

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum HistoryError {
    #[error("the history is not valid JSON: {0}")]
    Json(String),
    #[error("operation {index} (client c{client}) completes at {complete} ns, before its invocation at {invoke} ns")]
    CompletesBeforeInvocation {
        index: usize,
        client: u32,
        invoke: u64,
        complete: u64,
    },
    #[error("operation {index} (client c{client}) is {method}; the checker models CreateTask, CancelTask, UpdateProgress, SetTaskState, SetTaskDescription and GetTask only")]
    UnsupportedCall {
        index: usize,
        client: u32,
        method: &'static str,
    },
}
