//! `vtask-proto`: the gRPC wire API of vtask, generated from `proto/` at build
//! time, and the mechanical conversions between it and `vtask-model`.
//!
//! **Architecture invariant:** this crate holds no task rules. A conversion
//! maps fields and refuses only what cannot be represented in the model (a
//! missing required field, an `UNSPECIFIED` enum value, an unparsable
//! timestamp); whether a value is *allowed* is for `vtask_model::apply`.

pub mod convert;

/// The public API, package `vtask.v1`.
#[allow(clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("vtask.v1");
}

/// The node-to-node Raft service, package `vtask.raft.v1`.
pub mod raft {
    #[allow(clippy::all, clippy::pedantic)]
    pub mod v1 {
        tonic::include_proto!("vtask.raft.v1");
    }
}

/// Google's API types that vtask serves (`proto/google/`, copied verbatim
/// from googleapis-common-protos by `scripts/googleapis-protos.sh`): the
/// `google.longrunning.Operations` view of the tasks (AIP-151), and what it
/// imports.
pub mod google {
    #[allow(clippy::all, clippy::pedantic)]
    pub mod longrunning {
        tonic::include_proto!("google.longrunning");
    }
    #[allow(clippy::all, clippy::pedantic)]
    pub mod rpc {
        tonic::include_proto!("google.rpc");
    }
    #[allow(clippy::all, clippy::pedantic)]
    pub mod api {
        tonic::include_proto!("google.api");
    }
}

/// The slice of etcd 3.4's v3 API (`proto/etcd/`) that `vtask bench --target
/// etcd` drives, so vtask and etcd are measured by one tool. Not part of
/// vtask's API and not in [`FILE_DESCRIPTOR_SET`].
pub mod etcd {
    #[allow(clippy::all, clippy::pedantic)]
    pub mod etcdserverpb {
        tonic::include_proto!("etcdserverpb");
    }
    #[allow(clippy::all, clippy::pedantic)]
    pub mod mvccpb {
        tonic::include_proto!("mvccpb");
    }
}

/// The encoded `FileDescriptorSet` of every vtask proto file and the
/// well-known types they import, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("vtask_descriptor");

/// The type URL of [`v1::MethodFault`] inside a `google.protobuf.Any`.
pub const METHOD_FAULT_TYPE_URL: &str = "type.googleapis.com/vtask.v1.MethodFault";
/// The type URL of [`v1::TaskInfo`], an Operation's `metadata`.
pub const TASK_INFO_TYPE_URL: &str = "type.googleapis.com/vtask.v1.TaskInfo";
/// The type URL of [`v1::AnyValue`], a finished Operation's `response`.
pub const ANY_VALUE_TYPE_URL: &str = "type.googleapis.com/vtask.v1.AnyValue";
