//! The one place where errors become gRPC status codes.

use tonic::Status;

use crate::cluster::ClusterError;
use crate::state::RejectKind;

pub fn to_status(e: ClusterError) -> Status {
    let msg = e.to_string();
    match e {
        ClusterError::Rejected(r) => match r.kind {
            RejectKind::InvalidArgument => Status::invalid_argument(r.message),
            RejectKind::NotFound => Status::not_found(r.message),
            RejectKind::AlreadyExists => Status::already_exists(r.message),
            RejectKind::FailedPrecondition => Status::failed_precondition(r.message),
            RejectKind::PermissionDenied => Status::permission_denied(r.message),
        },
        ClusterError::InvalidArgument(_) => Status::invalid_argument(msg),
        ClusterError::NotFound(_) => Status::not_found(msg),
        ClusterError::FailedPrecondition(_) | ClusterError::NotInitialized { .. } => {
            Status::failed_precondition(msg)
        }
        ClusterError::PermissionDenied(_) => Status::permission_denied(msg),
        ClusterError::AlreadyMember(_) => Status::already_exists(msg),
        ClusterError::NotLeader { .. }
        | ClusterError::NoLeader { .. }
        | ClusterError::Unavailable(_) => Status::unavailable(msg),
        ClusterError::Internal(_) => Status::internal(msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Rejection;
    use tonic::Code;

    #[test]
    fn codes_mean_what_they_say() {
        let rej = |kind| {
            ClusterError::Rejected(Rejection {
                kind,
                message: "m".into(),
            })
        };
        let cases = [
            (rej(RejectKind::InvalidArgument), Code::InvalidArgument),
            (rej(RejectKind::NotFound), Code::NotFound),
            (rej(RejectKind::AlreadyExists), Code::AlreadyExists),
            (
                rej(RejectKind::FailedPrecondition),
                Code::FailedPrecondition,
            ),
            (rej(RejectKind::PermissionDenied), Code::PermissionDenied),
            (
                ClusterError::NotInitialized { host: "h".into() },
                Code::FailedPrecondition,
            ),
            (ClusterError::AlreadyMember("x".into()), Code::AlreadyExists),
            (
                ClusterError::NoLeader {
                    waited_ms: 1,
                    hint: "h".into(),
                },
                Code::Unavailable,
            ),
            (ClusterError::Internal("x".into()), Code::Internal),
        ];
        for (e, code) in cases {
            assert_eq!(to_status(e.clone()).code(), code, "{e:?}");
        }
        assert_eq!(to_status(rej(RejectKind::NotFound)).message(), "m");
    }
}
