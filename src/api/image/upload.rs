//! `ImageService.UploadImage`: a client streams a file to this host. The bytes go to
//! `<final>.<host>.upload` in the pool's `images/` directory (the agent's sweep removes such a
//! file only after it was not written for `UPLOAD_IDLE`, so a live upload is never swept before
//! its image exists), hashed as they arrive.
//! When the client's checksum matches this host's, the image is registered through Raft with
//! that checksum and source `upload://HOST/FILE`, the sidecar is written, the file published
//! without replacing anything, and this host's copy reported ready (`ImageCommand::Verified`).
//! A failure after registration deletes the record again, so no image is left without a file.
//! Owns: `upload`. Uses: `cluster::Host`, `agent::{desired, images::files}`, `state::images`.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;
use tonic::{Status, Streaming};

use super::{format_from_proto, kind_from_proto, to_proto};
use crate::agent::desired;
use crate::agent::images::files::{self, Published, Sidecar};
use crate::agent::images::ImagesError;
use crate::api::status::{images_to_status, to_status};
use crate::cluster::{ClusterError, Host};
use crate::model::image::{Image, ImageKind, ImageSource, ImageSpec};
use crate::proto::v1 as pb;
use crate::proto::v1::upload_image_request::Part;
use crate::state::images::{ImageApplied, ImageCommand};
use crate::state::{pools, Applied, Command};

fn invalid(msg: impl Into<String>) -> Status {
    to_status(ClusterError::InvalidArgument(msg.into()))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Status + '_ {
    move |source| {
        images_to_status(ImagesError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// Removes the temporary file when the upload does not finish.
struct Temp(Option<PathBuf>);

impl Drop for Temp {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

pub async fn upload(
    host: &Host,
    mut stream: Streaming<pb::UploadImageRequest>,
) -> Result<pb::UploadImageResponse, Status> {
    let me = host.name().to_string();
    let header = match stream.message().await?.and_then(|m| m.part) {
        Some(Part::Header(h)) => h,
        _ => return Err(invalid("the first message of an upload must be its header")),
    };
    let kind = kind_from_proto(header.kind)?.unwrap_or(
        if header.file_name.to_ascii_lowercase().ends_with(".iso") {
            ImageKind::Iso
        } else {
            ImageKind::Cloud
        },
    );
    let format = format_from_proto(header.format)?.unwrap_or(kind.default_format());
    if header.pool.is_empty() {
        return Err(invalid("pool is required: the pool to store the image in"));
    }
    let spec = ImageSpec {
        name: header.name.clone(),
        kind,
        os: header.os.clone(),
        format,
        url: ImageSource::upload_url(&me, &header.file_name),
        sha256: None,
        pool: header.pool.clone(),
    }
    .validate()
    .map_err(|e| invalid(e.to_string()))?;
    let pool = {
        let state = host.state().map_err(to_status)?;
        if crate::state::images::get(&state, &spec.name)
            .map_err(ClusterError::internal)
            .map_err(to_status)?
            .is_some()
        {
            return Err(to_status(ClusterError::Rejected(crate::state::Rejection {
                kind: crate::state::RejectKind::AlreadyExists,
                message: format!("image {} already exists", spec.name),
            })));
        }
        pools::get(&state, &spec.pool)
            .map_err(ClusterError::internal)
            .map_err(to_status)?
            .ok_or_else(|| {
                to_status(ClusterError::NotFound(format!(
                    "pool {} does not exist",
                    spec.pool
                )))
            })?
    };
    let dir = Path::new(pool.spec.kind.local_path());
    if !pool.spec.allows(&me) || !dir.is_dir() {
        return Err(to_status(ClusterError::FailedPrecondition(format!(
            "host {me} does not reach pool {} ({}); upload to a host that does",
            pool.spec.name,
            dir.display()
        ))));
    }
    // The path only depends on the pool and the spec's name and format.
    let draft = Image {
        spec: spec.clone(),
        size_mib: None,
        created_at: 0,
        hosts: Default::default(),
    };
    let final_path = desired::image_path(&pool, &draft);
    let images_dir = final_path.parent().unwrap_or(dir).to_path_buf();
    tokio::fs::create_dir_all(&images_dir)
        .await
        .map_err(io(&images_dir))?;
    if tokio::fs::symlink_metadata(&final_path).await.is_ok() {
        return Err(images_to_status(ImagesError::InTheWay { path: final_path }));
    }
    let temp_path = PathBuf::from(format!("{}.{me}.upload", final_path.display()));
    let mut temp = Temp(Some(temp_path.clone()));
    let mut file = tokio::fs::File::create(&temp_path)
        .await
        .map_err(io(&temp_path))?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let client_sha = loop {
        match stream.message().await?.and_then(|m| m.part) {
            Some(Part::Chunk(bytes)) => {
                size += bytes.len() as u64;
                if header.size_bytes > 0 && size > header.size_bytes {
                    return Err(invalid(format!(
                        "the upload sent more than the {} bytes its header announced",
                        header.size_bytes
                    )));
                }
                hasher.update(&bytes);
                file.write_all(&bytes).await.map_err(io(&temp_path))?;
            }
            Some(Part::Sha256(s)) => break s,
            Some(Part::Header(_)) => return Err(invalid("an upload has one header, first")),
            None => {
                return Err(invalid(
                    "the upload ended without the client's sha256 (its last message)",
                ))
            }
        }
    };
    file.sync_all().await.map_err(io(&temp_path))?;
    drop(file);
    let got = hex::encode(hasher.finalize());
    let client_sha = client_sha.trim().to_ascii_lowercase();
    if client_sha != got {
        return Err(images_to_status(ImagesError::ChecksumMismatch {
            expected: client_sha,
            got,
        }));
    }
    if header.size_bytes > 0 && size != header.size_bytes {
        return Err(invalid(format!(
            "the upload sent {size} bytes; its header announced {}",
            header.size_bytes
        )));
    }
    let spec = ImageSpec {
        sha256: Some(got.clone()),
        ..spec
    };
    let request_id = (!header.request_id.is_empty()).then(|| header.request_id.clone());
    let image = match host
        .write_ok(Command::Image(ImageCommand::CreateImage(spec)), request_id)
        .await
        .map_err(to_status)?
    {
        Applied::Image(ImageApplied::ImageCreated(i)) => i,
        other => {
            return Err(to_status(ClusterError::internal(format!(
                "unexpected outcome {other:?}"
            ))))
        }
    };
    match publish(host, &image, &temp_path, &final_path, size).await {
        Ok(()) => {
            temp.0 = None;
        }
        Err(e) => {
            // No record without its file: take the registration back.
            let undo = Command::Image(ImageCommand::DeleteImage {
                name: image.spec.name.clone(),
            });
            if let Err(u) = host.write_ok(undo, None).await {
                tracing::warn!(image = %image.spec.name, error = %u, "cannot delete the image of a failed upload");
            }
            let _ = files::remove(&files::sidecar_path(&final_path));
            return Err(e);
        }
    }
    let image = {
        let state = host.state().map_err(to_status)?;
        crate::state::images::get(&state, &image.spec.name)
            .map_err(ClusterError::internal)
            .map_err(to_status)?
            .unwrap_or(image)
    };
    tracing::info!(image = %image.spec.name, bytes = size, "image uploaded");
    Ok(pb::UploadImageResponse {
        image: Some(to_proto(&image)),
        host: me,
        shared: pool.spec.kind.is_shared(),
    })
}

async fn publish(
    host: &Host,
    image: &Image,
    temp: &Path,
    final_path: &Path,
    size: u64,
) -> Result<(), Status> {
    let sha256 = image.spec.sha256.clone().unwrap_or_default();
    let side = Sidecar {
        image: image.spec.name.clone(),
        created_at: image.created_at,
        sha256: sha256.clone(),
        size_bytes: size,
        host: host.name().to_string(),
        source: image.spec.url.clone(),
    };
    files::write_json(&files::sidecar_path(final_path), &side).map_err(images_to_status)?;
    if files::publish(temp, final_path).map_err(images_to_status)? == Published::Taken {
        return Err(images_to_status(ImagesError::InTheWay {
            path: final_path.to_path_buf(),
        }));
    }
    let cmd = Command::Image(ImageCommand::Verified {
        image: image.spec.name.clone(),
        host: host.name().to_string(),
        sha256,
        size_bytes: size,
    });
    if let Err(e) = host.write_ok(cmd, None).await {
        let _ = files::remove(final_path);
        return Err(to_status(e));
    }
    Ok(())
}
