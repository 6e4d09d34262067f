//! Realising one image on this host, start to finish: take over a copy already published, or
//! download it (`fetch`) or hash and link a file found in the pool (`files::link_into`);
//! verify the sha256 against the image's; write the sidecar, publish, and report the copy
//! ready with its size and checksum (`ImageCommand::Verified`). Progress goes through Raft
//! from a separate reporter, so a slow write never slows the download, and the reporter is
//! drained before the final report so no progress lands after it. On error the job reports
//! the host's copy failed with the reason; the loop in `mod.rs` backs off.
//! Owns: `Job`, `run`. Uses: `cluster::Host`, `agent::desired::image_path`, `state::images`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::files::{self, Published, Sidecar};
use super::progress::ProgressGate;
use super::{fetch, ImagesError};
use crate::agent::desired;
use crate::cluster::{ClusterError, Host};
use crate::model::image::{HostImageStatus, Image, ImageSource};
use crate::model::pool::Pool;
use crate::state::images::ImageCommand;
use crate::state::Command;

/// What one job works on.
pub struct Job {
    pub host: Host,
    pub client: reqwest::Client,
    pub url_hosts: super::UrlHosts,
    pub image: Image,
    pub pool: Pool,
}

/// Sends progress reports in order, the newest replacing one not yet sent.
struct Reporter {
    tx: tokio::sync::watch::Sender<Option<HostImageStatus>>,
    task: tokio::task::JoinHandle<()>,
}

impl Reporter {
    fn start(host: Host, image: String) -> Reporter {
        let (tx, mut rx) = tokio::sync::watch::channel::<Option<HostImageStatus>>(None);
        let task = tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let status = rx.borrow_and_update().clone();
                let Some(status) = status else { continue };
                let cmd = Command::Image(ImageCommand::Observe {
                    image: image.clone(),
                    host: host.name().to_string(),
                    status,
                });
                if let Err(e) = host.write_ok(cmd, None).await {
                    tracing::warn!(image = %image, error = %e, "progress report failed");
                }
            }
        });
        Reporter { tx, task }
    }

    fn set(&self, status: HostImageStatus) {
        self.tx.send_replace(Some(status));
    }

    /// Waits until the last progress set has been written.
    async fn finish(self) {
        drop(self.tx);
        let _ = self.task.await;
    }
}

/// Runs the job; reports a failure itself and returns it to the loop.
pub async fn run(job: Job) -> Result<(), ImagesError> {
    let result = realise(&job).await;
    if let Err(e) = &result {
        tracing::warn!(image = %job.image.spec.name, error = %e, "image not realised");
        let cmd = Command::Image(ImageCommand::Observe {
            image: job.image.spec.name.clone(),
            host: job.host.name().to_string(),
            status: HostImageStatus::Failed {
                reason: e.to_string(),
            },
        });
        if let Err(e) = job.host.write_ok(cmd, None).await {
            tracing::warn!(image = %job.image.spec.name, error = %e, "failure report failed");
        }
    }
    result
}

fn blocking_err(path: &Path) -> impl FnOnce(tokio::task::JoinError) -> ImagesError + '_ {
    move |e| ImagesError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    }
}

async fn hash(path: &Path, reporter: Option<&Reporter>) -> Result<(String, u64), ImagesError> {
    let total = tokio::fs::metadata(path)
        .await
        .map(|m| m.len())
        .unwrap_or(0);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
    let p = path.to_path_buf();
    let work = tokio::task::spawn_blocking(move || {
        files::hash_file(&p, |n| {
            let _ = tx.send(n);
        })
    });
    let mut gate = ProgressGate::default();
    while let Some(done) = rx.recv().await {
        if let (Some(r), Some(s)) = (reporter, gate.next(Instant::now(), done, total)) {
            r.set(s);
        }
    }
    work.await.map_err(blocking_err(path))?
}

fn mismatch(expected: &Option<String>, got: &str) -> Option<ImagesError> {
    match expected {
        Some(want) if want != got => Some(ImagesError::ChecksumMismatch {
            expected: want.clone(),
            got: got.to_string(),
        }),
        _ => None,
    }
}

async fn realise(job: &Job) -> Result<(), ImagesError> {
    let me = job.host.name().to_string();
    let image = &job.image;
    let final_path = desired::image_path(&job.pool, image);
    if let Some(dir) = final_path.parent() {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|source| ImagesError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
    }
    if let Some((sha, size)) = take_over(job, &final_path).await? {
        // A download this host had begun (before another host published) is not needed.
        for f in part_files(&final_path, &me) {
            files::remove(&f)?;
        }
        return verified(job, &final_path, sha, size).await;
    }
    let sidecar = |sha256: &str, size_bytes: u64| Sidecar {
        image: image.spec.name.clone(),
        created_at: image.created_at,
        sha256: sha256.to_string(),
        size_bytes,
        host: me.clone(),
        source: image.spec.url.clone(),
    };
    match image.spec.source() {
        ImageSource::Http(url) => {
            job.url_hosts.check(url)?;
            let part = files::part_path(&final_path, &me);
            let meta = files::part_meta_path(&final_path, &me);
            let reporter = Reporter::start(job.host.clone(), image.spec.name.clone());
            let mut gate = ProgressGate::default();
            let fetched = fetch::download(
                &job.client,
                url,
                image.created_at,
                &part,
                &meta,
                |done, total| {
                    if let Some(s) = gate.next(Instant::now(), done, total) {
                        reporter.set(s);
                    }
                },
            )
            .await;
            reporter.finish().await;
            let fetched = fetched?;
            tracing::info!(image = %image.spec.name, bytes = fetched.size_bytes, resumed_at = fetched.resumed_at, "download complete");
            if let Some(e) = mismatch(&image.spec.sha256, &fetched.sha256) {
                files::remove(&part)?;
                files::remove(&meta)?;
                return Err(e);
            }
            let side = sidecar(&fetched.sha256, fetched.size_bytes);
            files::write_json(&files::sidecar_path(&final_path), &side)?;
            if files::publish(&part, &final_path)? == Published::Taken {
                // A host sharing the directory published first: use its copy if it is the same.
                files::remove(&part)?;
                files::remove(&meta)?;
                let (sha, size) = hash(&final_path, None).await?;
                if let Some(e) = mismatch(&Some(fetched.sha256.clone()), &sha) {
                    return Err(e);
                }
                return verified(job, &final_path, sha, size).await;
            }
            files::remove(&meta)?;
            verified(job, &final_path, fetched.sha256, fetched.size_bytes).await
        }
        ImageSource::PoolFile { path } => {
            let source = Path::new(job.pool.spec.kind.local_path()).join(path);
            if !source.is_file() {
                return Err(ImagesError::SourceMissing {
                    path: source,
                    pool: job.pool.spec.name.clone(),
                });
            }
            let reporter = Reporter::start(job.host.clone(), image.spec.name.clone());
            let hashed = hash(&source, Some(&reporter)).await;
            reporter.finish().await;
            let (sha, size) = hashed?;
            if let Some(e) = mismatch(&image.spec.sha256, &sha) {
                return Err(e);
            }
            files::write_json(&files::sidecar_path(&final_path), &sidecar(&sha, size))?;
            files::link_into(&source, &final_path)?;
            verified(job, &final_path, sha, size).await
        }
        ImageSource::Upload { host, .. } => Err(ImagesError::UploadedElsewhere {
            host: host.to_string(),
        }),
    }
}

/// A file already at the image's path: this image's (its sidecar names this incarnation) is
/// hashed and taken; a stale one this host wrote is removed; anything else is in the way.
async fn take_over(job: &Job, final_path: &Path) -> Result<Option<(String, u64)>, ImagesError> {
    if tokio::fs::symlink_metadata(final_path).await.is_err() {
        return Ok(None);
    }
    let me = job.host.name();
    let side_path = files::sidecar_path(final_path);
    let side: Option<Sidecar> = files::read_json(&side_path);
    let ours = side
        .as_ref()
        .is_some_and(|s| s.image == job.image.spec.name && s.created_at == job.image.created_at);
    if !ours {
        if side.as_ref().is_some_and(|s| s.host == me) {
            files::remove(final_path)?;
            files::remove(&side_path)?;
            return Ok(None);
        }
        return Err(ImagesError::InTheWay {
            path: final_path.to_path_buf(),
        });
    }
    let (sha, size) = hash(final_path, None).await?;
    let recorded = side.map(|s| s.sha256);
    if let Some(e) = mismatch(&job.image.spec.sha256, &sha).or_else(|| mismatch(&recorded, &sha)) {
        return Err(e);
    }
    Ok(Some((sha, size)))
}

/// Records this host's copy ready. A checksum the cluster pinned meanwhile (another host's
/// copy) that differs is refused by `apply`; this host's file then goes.
async fn verified(
    job: &Job,
    final_path: &Path,
    sha256: String,
    size: u64,
) -> Result<(), ImagesError> {
    let cmd = Command::Image(ImageCommand::Verified {
        image: job.image.spec.name.clone(),
        host: job.host.name().to_string(),
        sha256,
        size_bytes: size,
    });
    match job.host.write_ok(cmd, None).await {
        Ok(_) => {
            tracing::info!(image = %job.image.spec.name, path = %final_path.display(), "image ready");
            Ok(())
        }
        Err(ClusterError::Rejected(r))
            if r.kind == crate::state::RejectKind::FailedPrecondition =>
        {
            remove_own(final_path, job.host.name())?;
            Err(ImagesError::Refused(r.message))
        }
        Err(e) => Err(e.into()),
    }
}

/// Removes a published file and its sidecar if this host wrote them.
pub fn remove_own(final_path: &Path, me: &str) -> Result<(), ImagesError> {
    let side_path = files::sidecar_path(final_path);
    if files::read_json::<Sidecar>(&side_path).is_some_and(|s| s.host == me) {
        files::remove(final_path)?;
        files::remove(&side_path)?;
    }
    Ok(())
}

/// This host's download files of an image (part and its meta).
pub fn part_files(final_path: &Path, me: &str) -> [PathBuf; 2] {
    [
        files::part_path(final_path, me),
        files::part_meta_path(final_path, me),
    ]
}
