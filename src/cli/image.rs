//! `quantix image ...`: download images (from the built-in catalog or a URL; `create` is the
//! old name of `download`), upload a file, list, get, delete, and show the catalog.

mod upload;
mod wait;

use clap::{Subcommand, ValueEnum};
use serde_json::{json, Value};

use super::output::{self, Format};
use super::{connect, request_id, CliError, Consistency};
use crate::model::size::format_mib;
use crate::proto::v1::image_service_client::ImageServiceClient;
use crate::proto::v1::*;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum KindArg {
    /// A disk image with cloud-init (default).
    Cloud,
    /// An installer or live CD.
    Iso,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FormatArg {
    Qcow2,
    Raw,
    Iso,
}

#[derive(Subcommand)]
pub enum ImageCmd {
    /// Download an image into a pool. Without --url, NAME is a catalog entry (`quantix image
    /// catalog`): `quantix image download ubuntu-24.04 --pool local`. With --url, any http(s)
    /// image: `quantix image download NAME --url URL [--sha256 HEX] [--kind iso] --pool P`.
    /// Every host that reaches a local pool keeps a copy; one host fetches for a shared pool.
    #[command(alias = "create")]
    Download {
        name: String,
        /// The pool to store it in.
        #[arg(long)]
        pool: String,
        /// Download from this http or https URL.
        #[arg(long, conflicts_with = "catalog")]
        url: Option<String>,
        /// Take URL, OS and format from this catalog entry (default: NAME).
        #[arg(long)]
        catalog: Option<String>,
        /// Expected SHA-256 of the file (64 hex characters).
        #[arg(long)]
        sha256: Option<String>,
        /// cloud (default) or iso.
        #[arg(long, value_enum)]
        kind: Option<KindArg>,
        /// Default: qcow2 for cloud images, iso for ISOs.
        #[arg(long, value_enum)]
        format: Option<FormatArg>,
        /// Free text such as "ubuntu 24.04".
        #[arg(long)]
        os: Option<String>,
        /// Show progress and return once the image is ready (non-zero exit if it fails).
        #[arg(long)]
        wait: bool,
    },
    /// Upload a local ISO or disk image to the host at --endpoint, into a pool. On a local
    /// pool only that host will have it.
    Upload {
        file: std::path::PathBuf,
        #[arg(long)]
        pool: String,
        /// Image name (default: made from the file name).
        #[arg(long)]
        name: Option<String>,
        /// Default: iso for a .iso file, else cloud.
        #[arg(long, value_enum)]
        kind: Option<KindArg>,
        /// Default: iso for ISOs, qcow2 for cloud images.
        #[arg(long, value_enum)]
        format: Option<FormatArg>,
        #[arg(long)]
        os: Option<String>,
    },
    /// List images and their status.
    List {
        /// Only images in this pool.
        #[arg(long)]
        pool: Option<String>,
        #[arg(long, value_enum, default_value_t = Consistency::Linearizable)]
        consistency: Consistency,
    },
    /// Show one image with each host's copy.
    Get {
        name: String,
        #[arg(long, value_enum, default_value_t = Consistency::Linearizable)]
        consistency: Consistency,
    },
    /// Delete an image no VM uses.
    Delete { name: String },
    /// The built-in catalog of cloud images.
    Catalog,
}

fn kind_name(k: i32) -> &'static str {
    match ImageKind::try_from(k) {
        Ok(ImageKind::Cloud) => "cloud",
        Ok(ImageKind::Iso) => "iso",
        _ => "unknown",
    }
}

fn format_name(f: i32) -> &'static str {
    match ImageFormat::try_from(f) {
        Ok(ImageFormat::Qcow2) => "qcow2",
        Ok(ImageFormat::Raw) => "raw",
        Ok(ImageFormat::Iso) => "iso",
        _ => "unknown",
    }
}

fn state_name(p: Option<&ImageProgress>) -> &'static str {
    match p.map(|p| ImageState::try_from(p.state)) {
        Some(Ok(ImageState::Pending)) => "pending",
        Some(Ok(ImageState::Downloading)) => "downloading",
        Some(Ok(ImageState::Ready)) => "ready",
        Some(Ok(ImageState::Failed)) => "failed",
        _ => "unknown",
    }
}

/// One column: "ready", "downloading 40%", "failed: HTTP 404".
fn progress_text(p: Option<&ImageProgress>) -> String {
    let state = state_name(p);
    match (state, p) {
        ("downloading", Some(p)) => format!("downloading {}%", p.percent),
        ("failed", Some(p)) => format!("failed: {}", p.reason),
        _ => state.into(),
    }
}

fn progress_json(p: Option<&ImageProgress>) -> Value {
    let mut v = json!({"state": state_name(p)});
    if let Some(p) = p {
        match state_name(Some(p)) {
            "downloading" => {
                v["percent"] = json!(p.percent);
                v["bytes_done"] = json!(p.bytes_done);
                v["bytes_total"] = json!(p.bytes_total);
            }
            "failed" => v["reason"] = json!(p.reason),
            _ => {}
        }
    }
    v
}

fn image_json(i: &Image) -> Value {
    json!({
        "name": i.name,
        "kind": kind_name(i.kind),
        "os": i.os,
        "format": format_name(i.format),
        "url": i.url,
        "sha256": (!i.sha256.is_empty()).then_some(&i.sha256),
        "pool": i.pool,
        "size_mib": i.size_mib,
        "status": state_name(i.status.as_ref()),
        "progress": progress_json(i.status.as_ref()),
        "hosts": i.hosts.iter().map(|h| {
            let mut v = progress_json(h.progress.as_ref());
            v["host"] = json!(h.host);
            v["at"] = json!(output::time(h.at_ms));
            v
        }).collect::<Vec<_>>(),
        "created_at": output::time(i.created_at_ms),
    })
}

fn image_row(i: &Image) -> Vec<String> {
    vec![
        i.name.clone(),
        kind_name(i.kind).into(),
        if i.os.is_empty() {
            "-".into()
        } else {
            i.os.clone()
        },
        format_name(i.format).into(),
        i.pool.clone(),
        i.size_mib.map_or_else(|| "-".into(), format_mib),
        progress_text(i.status.as_ref()),
    ]
}

fn kind_proto(k: Option<KindArg>) -> i32 {
    let k = match k {
        None => ImageKind::Unspecified,
        Some(KindArg::Cloud) => ImageKind::Cloud,
        Some(KindArg::Iso) => ImageKind::Iso,
    };
    k as i32
}

fn format_proto(f: Option<FormatArg>) -> i32 {
    let f = match f {
        None => ImageFormat::Unspecified,
        Some(FormatArg::Qcow2) => ImageFormat::Qcow2,
        Some(FormatArg::Raw) => ImageFormat::Raw,
        Some(FormatArg::Iso) => ImageFormat::Iso,
    };
    f as i32
}

fn ready_hosts(i: &Image) -> String {
    let hosts: Vec<&str> = i
        .hosts
        .iter()
        .filter(|h| state_name(h.progress.as_ref()) == "ready")
        .map(|h| h.host.as_str())
        .collect();
    if hosts.is_empty() {
        "no host".into()
    } else {
        hosts.join(", ")
    }
}

const HEADERS: [&str; 7] = ["name", "kind", "os", "format", "pool", "size", "status"];

pub async fn run(endpoint: &str, out: Format, cmd: ImageCmd) -> Result<(), CliError> {
    let mut c = ImageServiceClient::new(connect(endpoint).await?);
    match cmd {
        ImageCmd::Download {
            name,
            pool,
            url,
            catalog,
            sha256,
            kind,
            format,
            os,
            wait,
        } => {
            // Without a URL the image comes from the catalog: the entry named by --catalog,
            // or else the one named NAME.
            let catalog = match (&url, catalog) {
                (Some(_), _) => String::new(),
                (None, Some(entry)) => entry,
                (None, None) => name.clone(),
            };
            let i = c
                .create_image(CreateImageRequest {
                    name,
                    catalog,
                    url: url.unwrap_or_default(),
                    sha256: sha256.unwrap_or_default(),
                    kind: kind_proto(kind),
                    format: format_proto(format),
                    os: os.unwrap_or_default(),
                    pool,
                    request_id: request_id(),
                })
                .await?
                .into_inner();
            if !wait {
                match out {
                    Format::Json => output::json(&image_json(&i)),
                    Format::Table => println!(
                        "downloading image {} into pool {} from {} ({}); follow it with `quantix image get {}`",
                        i.name,
                        i.pool,
                        i.url,
                        progress_text(i.status.as_ref()),
                        i.name
                    ),
                }
                return Ok(());
            }
            if let Format::Table = out {
                eprintln!(
                    "downloading image {} into pool {} from {}",
                    i.name, i.pool, i.url
                );
            }
            let i = wait::wait(&mut c, &i.name).await?;
            match out {
                Format::Json => output::json(&image_json(&i)),
                Format::Table => println!(
                    "image {} ready on {} ({}, sha256 {})",
                    i.name,
                    ready_hosts(&i),
                    i.size_mib.map_or_else(|| "size unknown".into(), format_mib),
                    i.sha256
                ),
            }
        }
        ImageCmd::Upload {
            file,
            pool,
            name,
            kind,
            format,
            os,
        } => {
            let file_name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let name = match name {
                Some(n) => n,
                None => crate::model::image::name_from_file(&file_name).ok_or_else(|| {
                    CliError::Usage(format!(
                        "cannot make an image name from {file_name}; give one with --name"
                    ))
                })?,
            };
            let size = std::fs::metadata(&file)
                .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", file.display())))?
                .len();
            let bar = indicatif::ProgressBar::new(size);
            if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
                bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
            }
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "uploading [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            let header = UploadImageHeader {
                name,
                kind: kind_proto(kind),
                format: format_proto(format),
                os: os.unwrap_or_default(),
                pool,
                file_name,
                size_bytes: size,
                request_id: request_id(),
            };
            let messages = upload::stream(&file, header, bar.clone()).await?;
            let r = c.upload_image(messages).await;
            bar.finish_and_clear();
            let r = r?.into_inner();
            let i = r.image.unwrap_or_default();
            match out {
                Format::Json => {
                    let mut v = image_json(&i);
                    v["uploaded_to"] = json!(r.host);
                    v["shared"] = json!(r.shared);
                    output::json(&v)
                }
                Format::Table => {
                    println!(
                        "uploaded image {} ({}, sha256 {}) into pool {} on host {}",
                        i.name,
                        i.size_mib.map_or_else(|| "size unknown".into(), format_mib),
                        i.sha256,
                        i.pool,
                        r.host
                    );
                    if !r.shared {
                        println!(
                            "pool {} is local to each host: only {} has this image, so VMs using it run there",
                            i.pool, r.host
                        );
                    }
                }
            }
        }
        ImageCmd::List { pool, consistency } => {
            let r = c
                .list_images(ListImagesRequest {
                    consistency: consistency.proto(),
                    pool: pool.unwrap_or_default(),
                })
                .await?
                .into_inner();
            output::list(out, "images", &r.images, image_json, &HEADERS, image_row)
        }
        ImageCmd::Get { name, consistency } => {
            let i = c
                .get_image(GetImageRequest {
                    name,
                    consistency: consistency.proto(),
                })
                .await?
                .into_inner();
            match out {
                Format::Json => output::json(&image_json(&i)),
                Format::Table => {
                    output::table(&HEADERS, vec![image_row(&i)]);
                    println!("url: {}", i.url);
                    if !i.sha256.is_empty() {
                        println!("sha256: {}", i.sha256);
                    }
                    if !i.hosts.is_empty() {
                        println!();
                        output::table(
                            &["host", "status", "reported"],
                            i.hosts
                                .iter()
                                .map(|h| {
                                    vec![
                                        h.host.clone(),
                                        progress_text(h.progress.as_ref()),
                                        output::time(h.at_ms),
                                    ]
                                })
                                .collect(),
                        );
                    }
                }
            }
        }
        ImageCmd::Delete { name } => {
            c.delete_image(DeleteImageRequest {
                name: name.clone(),
                request_id: request_id(),
            })
            .await?;
            match out {
                Format::Json => output::json(&json!({"deleted": name})),
                Format::Table => println!("deleted image {name}"),
            }
        }
        ImageCmd::Catalog => {
            let r = c.list_catalog(ListCatalogRequest {}).await?.into_inner();
            match out {
                Format::Json => output::json(&json!({"catalog": r.entries.iter().map(|e| json!({
                    "name": e.name,
                    "os": e.os,
                    "kind": kind_name(e.kind),
                    "format": format_name(e.format),
                    "url": e.url,
                    "description": e.description,
                })).collect::<Vec<_>>()})),
                Format::Table => output::table(
                    &["name", "os", "format", "url"],
                    r.entries
                        .iter()
                        .map(|e| {
                            vec![
                                e.name.clone(),
                                e.os.clone(),
                                format_name(e.format).into(),
                                e.url.clone(),
                            ]
                        })
                        .collect(),
                ),
            }
        }
    }
    Ok(())
}
