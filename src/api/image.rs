//! `quantix.v1.ImageService`: register images (from the built-in catalog or a URL), get, list,
//! delete, and list the catalog. A catalog entry is resolved here, into a full `ImageSpec`, so
//! the log never depends on the catalog of the release that replays it. Download reports are
//! proposed by agents, not through this service. Uploads (`upload`) are written by the host
//! that receives them, with the agent's file layout (`agent::images::files`).

use tonic::{Request, Response, Status, Streaming};

mod upload;

use super::cluster::is_stale;
use super::status::to_status;
use crate::cluster::{ClusterError, Host};
use crate::model::image::{
    catalog, validate_name, HostImageStatus, Image, ImageFormat, ImageKind, ImageSpec, ImageStatus,
};
use crate::model::names;
use crate::proto::v1 as pb;
use crate::proto::v1::image_service_server::ImageService;
use crate::state::images::{self, ImageApplied, ImageCommand};
use crate::state::{Applied, Command};

pub struct ImageApi {
    pub host: Host,
}

fn invalid(e: impl std::fmt::Display) -> Status {
    to_status(ClusterError::InvalidArgument(e.to_string()))
}

fn internal(e: impl std::fmt::Display) -> Status {
    to_status(ClusterError::internal(e))
}

fn kind_to_proto(k: ImageKind) -> i32 {
    match k {
        ImageKind::Cloud => pb::ImageKind::Cloud as i32,
        ImageKind::Iso => pb::ImageKind::Iso as i32,
    }
}

fn format_to_proto(f: ImageFormat) -> i32 {
    match f {
        ImageFormat::Qcow2 => pb::ImageFormat::Qcow2 as i32,
        ImageFormat::Raw => pb::ImageFormat::Raw as i32,
        ImageFormat::Iso => pb::ImageFormat::Iso as i32,
    }
}

/// `None` for unspecified (the caller picks the default).
fn kind_from_proto(k: i32) -> Result<Option<ImageKind>, Status> {
    match pb::ImageKind::try_from(k) {
        Ok(pb::ImageKind::Unspecified) => Ok(None),
        Ok(pb::ImageKind::Cloud) => Ok(Some(ImageKind::Cloud)),
        Ok(pb::ImageKind::Iso) => Ok(Some(ImageKind::Iso)),
        Err(_) => Err(invalid(format!("kind {k} is not one of cloud, iso"))),
    }
}

fn format_from_proto(f: i32) -> Result<Option<ImageFormat>, Status> {
    match pb::ImageFormat::try_from(f) {
        Ok(pb::ImageFormat::Unspecified) => Ok(None),
        Ok(pb::ImageFormat::Qcow2) => Ok(Some(ImageFormat::Qcow2)),
        Ok(pb::ImageFormat::Raw) => Ok(Some(ImageFormat::Raw)),
        Ok(pb::ImageFormat::Iso) => Ok(Some(ImageFormat::Iso)),
        Err(_) => Err(invalid(format!("format {f} is not one of qcow2, raw, iso"))),
    }
}

fn host_progress(s: &HostImageStatus) -> pb::ImageProgress {
    match s {
        HostImageStatus::Downloading {
            percent,
            bytes_done,
            bytes_total,
        } => pb::ImageProgress {
            state: pb::ImageState::Downloading as i32,
            percent: u32::from(*percent),
            bytes_done: *bytes_done,
            bytes_total: *bytes_total,
            reason: String::new(),
        },
        HostImageStatus::Ready => pb::ImageProgress {
            state: pb::ImageState::Ready as i32,
            percent: 100,
            ..Default::default()
        },
        HostImageStatus::Failed { reason } => pb::ImageProgress {
            state: pb::ImageState::Failed as i32,
            reason: reason.clone(),
            ..Default::default()
        },
    }
}

fn overall_progress(s: &ImageStatus) -> pb::ImageProgress {
    match s {
        ImageStatus::Pending => pb::ImageProgress {
            state: pb::ImageState::Pending as i32,
            ..Default::default()
        },
        ImageStatus::Downloading { percent } => pb::ImageProgress {
            state: pb::ImageState::Downloading as i32,
            percent: u32::from(*percent),
            ..Default::default()
        },
        ImageStatus::Ready => pb::ImageProgress {
            state: pb::ImageState::Ready as i32,
            percent: 100,
            ..Default::default()
        },
        ImageStatus::Failed { reason } => pb::ImageProgress {
            state: pb::ImageState::Failed as i32,
            reason: reason.clone(),
            ..Default::default()
        },
    }
}

fn to_proto(i: &Image) -> pb::Image {
    pb::Image {
        name: i.spec.name.clone(),
        kind: kind_to_proto(i.spec.kind),
        os: i.spec.os.clone(),
        format: format_to_proto(i.spec.format),
        url: i.spec.url.clone(),
        sha256: i.spec.sha256.clone().unwrap_or_default(),
        pool: i.spec.pool.clone(),
        size_mib: i.size_mib,
        status: Some(overall_progress(&i.status())),
        hosts: i
            .hosts
            .iter()
            .map(|(host, h)| pb::ImageHostState {
                host: host.clone(),
                progress: Some(host_progress(&h.status)),
                at_ms: h.at,
            })
            .collect(),
        created_at_ms: i.created_at,
    }
}

/// Turns a create request into a validated spec: from a catalog entry or from a URL.
fn spec_from_request(r: &pb::CreateImageRequest) -> Result<ImageSpec, Status> {
    let kind = kind_from_proto(r.kind)?;
    let format = format_from_proto(r.format)?;
    let sha256 = (!r.sha256.is_empty()).then(|| r.sha256.clone());
    if r.pool.is_empty() {
        return Err(invalid("pool is required: the pool to store the image in"));
    }
    let spec = if !r.catalog.is_empty() {
        if !r.url.is_empty() {
            return Err(invalid(
                "give either catalog (an entry of `quantix image catalog`) or url, not both",
            ));
        }
        if kind.is_some() || format.is_some() {
            return Err(invalid(
                "kind and format come from the catalog entry; do not set them with catalog",
            ));
        }
        let entry = catalog::entry(&r.catalog).ok_or_else(|| {
            to_status(ClusterError::NotFound(format!(
                "{} is not in the image catalog (see `quantix image catalog`); give a url (--url) to register an image from elsewhere",
                r.catalog
            )))
        })?;
        let name = if r.name.is_empty() {
            entry.name
        } else {
            &r.name
        };
        let mut spec = entry.spec(name, &r.pool);
        if sha256.is_some() {
            spec.sha256 = sha256;
        }
        if !r.os.is_empty() {
            spec.os = r.os.clone();
        }
        spec
    } else {
        if r.url.is_empty() {
            return Err(invalid(
                "url is required (or catalog: the name of an entry of `quantix image catalog`)",
            ));
        }
        // upload:// and pool: sources are made by UploadImage and ScanPool, never given.
        crate::model::image::validate_url(&r.url).map_err(invalid)?;
        let kind = kind.unwrap_or(ImageKind::Cloud);
        ImageSpec {
            name: r.name.clone(),
            kind,
            os: r.os.clone(),
            format: format.unwrap_or(kind.default_format()),
            url: r.url.clone(),
            sha256,
            pool: r.pool.clone(),
        }
    };
    spec.validate().map_err(invalid)
}

#[tonic::async_trait]
impl ImageService for ImageApi {
    #[tracing::instrument(skip_all, fields(host = %self.host.name()))]
    async fn create_image(
        &self,
        req: Request<pb::CreateImageRequest>,
    ) -> Result<Response<pb::Image>, Status> {
        let r = req.into_inner();
        let spec = spec_from_request(&r)?;
        let cmd = Command::Image(ImageCommand::CreateImage(spec));
        match self
            .host
            .write_ok(cmd, Some(r.request_id))
            .await
            .map_err(to_status)?
        {
            Applied::Image(ImageApplied::ImageCreated(i)) => Ok(Response::new(to_proto(&i))),
            other => Err(internal(format!("unexpected outcome {other:?}"))),
        }
    }

    #[tracing::instrument(skip_all, fields(host = %self.host.name()))]
    async fn get_image(
        &self,
        req: Request<pb::GetImageRequest>,
    ) -> Result<Response<pb::Image>, Status> {
        let r = req.into_inner();
        validate_name(&r.name).map_err(invalid)?;
        self.host
            .read_barrier(is_stale(r.consistency))
            .await
            .map_err(to_status)?;
        let state = self.host.state().map_err(to_status)?;
        match images::get(&state, &r.name).map_err(internal)? {
            Some(i) => Ok(Response::new(to_proto(&i))),
            None => Err(to_status(ClusterError::NotFound(format!(
                "image {} does not exist",
                r.name
            )))),
        }
    }

    #[tracing::instrument(skip_all, fields(host = %self.host.name()))]
    async fn list_images(
        &self,
        req: Request<pb::ListImagesRequest>,
    ) -> Result<Response<pb::ListImagesResponse>, Status> {
        let r = req.into_inner();
        if !r.pool.is_empty() {
            names::validate_label("pool name", &r.pool).map_err(invalid)?;
        }
        self.host
            .read_barrier(is_stale(r.consistency))
            .await
            .map_err(to_status)?;
        let state = self.host.state().map_err(to_status)?;
        let pool = (!r.pool.is_empty()).then_some(r.pool.as_str());
        let list = images::list(&state, pool).map_err(internal)?;
        Ok(Response::new(pb::ListImagesResponse {
            images: list.iter().map(to_proto).collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(host = %self.host.name()))]
    async fn delete_image(
        &self,
        req: Request<pb::DeleteImageRequest>,
    ) -> Result<Response<pb::DeleteImageResponse>, Status> {
        let r = req.into_inner();
        validate_name(&r.name).map_err(invalid)?;
        self.host
            .write_ok(
                Command::Image(ImageCommand::DeleteImage { name: r.name }),
                Some(r.request_id),
            )
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::DeleteImageResponse {}))
    }

    #[tracing::instrument(skip_all, fields(host = %self.host.name()))]
    async fn upload_image(
        &self,
        req: Request<Streaming<pb::UploadImageRequest>>,
    ) -> Result<Response<pb::UploadImageResponse>, Status> {
        upload::upload(&self.host, req.into_inner())
            .await
            .map(Response::new)
    }

    #[tracing::instrument(skip_all, fields(host = %self.host.name()))]
    async fn list_catalog(
        &self,
        _req: Request<pb::ListCatalogRequest>,
    ) -> Result<Response<pb::ListCatalogResponse>, Status> {
        Ok(Response::new(pb::ListCatalogResponse {
            entries: catalog::CATALOG
                .iter()
                .map(|e| pb::ImageCatalogEntry {
                    name: e.name.into(),
                    os: e.os.into(),
                    kind: kind_to_proto(e.kind),
                    format: format_to_proto(e.format),
                    url: e.url.into(),
                    description: e.description.into(),
                })
                .collect(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    fn req() -> pb::CreateImageRequest {
        pb::CreateImageRequest {
            pool: "local".into(),
            ..Default::default()
        }
    }

    #[test]
    fn create_from_catalog_fills_in_the_entry() {
        let spec = spec_from_request(&pb::CreateImageRequest {
            catalog: "debian-12".into(),
            ..req()
        })
        .unwrap();
        assert_eq!(spec.name, "debian-12");
        assert_eq!(spec.os, "debian 12");
        assert!(spec.url.starts_with("https://cloud.debian.org/"));
        assert_eq!(
            (spec.kind, spec.format),
            (ImageKind::Cloud, ImageFormat::Qcow2)
        );
        let renamed = spec_from_request(&pb::CreateImageRequest {
            name: "bookworm".into(),
            catalog: "debian-12".into(),
            sha256: "F".repeat(64),
            ..req()
        })
        .unwrap();
        assert_eq!(renamed.name, "bookworm");
        assert_eq!(renamed.sha256, Some("f".repeat(64)));
    }

    #[test]
    fn create_from_url_defaults_kind_and_format() {
        let spec = spec_from_request(&pb::CreateImageRequest {
            name: "win".into(),
            url: "https://example.com/win.iso".into(),
            kind: pb::ImageKind::Iso as i32,
            ..req()
        })
        .unwrap();
        assert_eq!((spec.kind, spec.format), (ImageKind::Iso, ImageFormat::Iso));
        let spec = spec_from_request(&pb::CreateImageRequest {
            name: "mine".into(),
            url: "https://example.com/mine.img".into(),
            ..req()
        })
        .unwrap();
        assert_eq!(
            (spec.kind, spec.format),
            (ImageKind::Cloud, ImageFormat::Qcow2)
        );
    }

    #[test]
    fn bad_requests_are_refused_naming_the_field() {
        let cases: Vec<(pb::CreateImageRequest, Code, &str)> = vec![
            (
                pb::CreateImageRequest {
                    pool: String::new(),
                    catalog: "debian-12".into(),
                    ..req()
                },
                Code::InvalidArgument,
                "pool is required",
            ),
            (
                pb::CreateImageRequest {
                    catalog: "debian-99".into(),
                    ..req()
                },
                Code::NotFound,
                "debian-99 is not in the image catalog",
            ),
            (
                pb::CreateImageRequest {
                    catalog: "debian-12".into(),
                    url: "https://x.org/a".into(),
                    ..req()
                },
                Code::InvalidArgument,
                "not both",
            ),
            (
                pb::CreateImageRequest {
                    catalog: "debian-12".into(),
                    kind: pb::ImageKind::Iso as i32,
                    ..req()
                },
                Code::InvalidArgument,
                "come from the catalog",
            ),
            (
                pb::CreateImageRequest {
                    name: "x".into(),
                    ..req()
                },
                Code::InvalidArgument,
                "url is required",
            ),
            (
                pb::CreateImageRequest {
                    name: "x".into(),
                    url: "ftp://x.org/a".into(),
                    ..req()
                },
                Code::InvalidArgument,
                "url 'ftp://x.org/a'",
            ),
            (
                pb::CreateImageRequest {
                    name: "x".into(),
                    url: "upload://host1/x.iso".into(),
                    ..req()
                },
                Code::InvalidArgument,
                "must start with http:// or https://",
            ),
            (
                pb::CreateImageRequest {
                    name: "x".into(),
                    url: "https://x.org/a".into(),
                    kind: 9,
                    ..req()
                },
                Code::InvalidArgument,
                "kind 9",
            ),
            (
                pb::CreateImageRequest {
                    name: "x".into(),
                    url: "https://x.org/a".into(),
                    format: pb::ImageFormat::Iso as i32,
                    ..req()
                },
                Code::InvalidArgument,
                "format iso does not fit kind cloud",
            ),
            (
                pb::CreateImageRequest {
                    name: "x".into(),
                    url: "https://x.org/a".into(),
                    sha256: "12".into(),
                    ..req()
                },
                Code::InvalidArgument,
                "sha256 '12'",
            ),
        ];
        for (r, code, msg) in cases {
            let e = spec_from_request(&r).unwrap_err();
            assert_eq!(e.code(), code, "{r:?}: {}", e.message());
            assert!(e.message().contains(msg), "{r:?}: {}", e.message());
        }
    }
}
