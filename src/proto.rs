//! Generated gRPC code. `v1` is the public API; `internal` the host-to-host transport.

#[allow(clippy::all, clippy::unwrap_used)]
pub mod v1 {
    tonic::include_proto!("quantix.v1");
}

#[allow(clippy::all, clippy::unwrap_used)]
pub mod internal {
    tonic::include_proto!("quantix.internal.v1");
}

/// Serialized descriptors of every service, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("quantix_descriptor");
