//! The one place where errors become gRPC status codes.

use tonic::Status;

use crate::agent::images::ImagesError;
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

/// Errors of writing image files on this host (uploads): a checksum that does not match is
/// the caller's problem; a file in the way is a precondition; the rest is internal.
pub fn images_to_status(e: ImagesError) -> Status {
    match e {
        ImagesError::Cluster(c) => to_status(c),
        ImagesError::ChecksumMismatch { .. } | ImagesError::HttpStatus { .. } => {
            Status::invalid_argument(e.to_string())
        }
        ImagesError::InTheWay { .. }
        | ImagesError::SourceMissing { .. }
        | ImagesError::UploadedElsewhere { .. }
        | ImagesError::HostNotAllowed { .. }
        | ImagesError::Refused(_) => Status::failed_precondition(e.to_string()),
        ImagesError::Connect { .. }
        | ImagesError::Stalled { .. }
        | ImagesError::Truncated { .. } => Status::unavailable(e.to_string()),
        ImagesError::Io { .. } => Status::internal(e.to_string()),
    }
}

/// A refused credential: `UNAUTHENTICATED` when there is none or it is not valid,
/// `PERMISSION_DENIED` when it is valid but not for this call.
pub fn auth_status(e: crate::auth::AuthError) -> Status {
    use crate::auth::AuthError;
    match e {
        AuthError::Missing | AuthError::Refused(_) | AuthError::Unknown(_) => {
            Status::unauthenticated(e.to_string())
        }
        AuthError::Forbidden(_) => Status::permission_denied(e.to_string()),
        AuthError::Internal(_) => Status::unavailable(e.to_string()),
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

    #[test]
    fn image_file_errors_map_to_codes() {
        let mismatch = ImagesError::ChecksumMismatch {
            expected: "a".into(),
            got: "b".into(),
        };
        let s = images_to_status(mismatch);
        assert_eq!(s.code(), Code::InvalidArgument);
        assert!(
            s.message().contains("expected sha256 a, got b"),
            "{}",
            s.message()
        );
        let io = ImagesError::Io {
            path: "/p".into(),
            source: std::io::Error::other("disk full"),
        };
        assert_eq!(images_to_status(io).code(), Code::Internal);
        let in_way = ImagesError::InTheWay { path: "/p".into() };
        assert_eq!(images_to_status(in_way).code(), Code::FailedPrecondition);
        let c = ImagesError::Cluster(ClusterError::NotFound("x".into()));
        assert_eq!(images_to_status(c).code(), Code::NotFound);
    }
}
