//! Images on this host: every host keeps its copies of the images in the pools it reaches in
//! step with the replicated image records. Level-triggered like `reconcile`: it wakes when the
//! applied index moves, when a job ends, and every `RESYNC`; for each image it decides whether
//! this host should hold a copy (`who`), starts a job for copies that are not ready (`job`:
//! download with resume in `fetch`, or link a scanned file, verify, publish, report), stops
//! jobs that are no longer wanted, and sweeps files of deleted images (`files::leftovers`).
//!
//! On start nothing is special: a copy that is not ready is simply worked on again, and a
//! download resumes from its `.part` file. Failures are reported (the job does it) and retried
//! after a back-off (`progress::Backoff`), never in a tight loop. A deleted image's files go on
//! the next pass; a host that was down when it happened finds them at its first sweep, since
//! the sweep compares what is on disk with the records, not with the log.
//! Uploaded images are written by the API (`api::image`), which uses `files` for the same
//! layout; this loop only notices when an uploaded copy's file disappears.
//!
//! Owns: `spawn`, `ImagesError`. Uses: `cluster::Host` (state reads, writes, liveness view),
//! `agent::desired::image_path`, `model`, `state` (reads); `reqwest` (rustls), `sha2`.

pub mod fetch;
pub mod files;
pub mod job;
pub mod progress;
pub mod who;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use self::progress::Backoff;
use self::who::Candidates;
use crate::agent::desired;
use crate::cluster::{ClusterError, Host};
use crate::model::image::{HostImageStatus, Image, ImageSource};
use crate::model::pool::Pool;
use crate::model::UnixMillis;
use crate::state::images::{self, ImageCommand};
use crate::state::{pools, Command};

/// Longest time between two passes.
pub const RESYNC: Duration = Duration::from_secs(10);
/// Shortest time between two passes (progress reports move the applied index often).
pub const MIN_GAP: Duration = Duration::from_millis(500);
/// Longest time between two sweeps for files of deleted images.
pub const SWEEP: Duration = Duration::from_secs(60);
/// An upload file nothing wrote for this long is left over from an upload that died.
pub const UPLOAD_IDLE: Duration = Duration::from_secs(600);
/// Longest wait for the leader's liveness view.
const ONLINE_ASK: Duration = Duration::from_secs(1);
/// How long a liveness view asked of the leader is used.
const ONLINE_TTL: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum ImagesError {
    #[error("HTTP {status} {text} from {url}")]
    HttpStatus {
        url: String,
        status: u16,
        text: String,
    },
    #[error("cannot fetch {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("download of {url} stalled: no data for {secs} s after {done} bytes")]
    Stalled { url: String, secs: u64, done: u64 },
    #[error("download of {url} ended after {done} of {total} bytes")]
    Truncated { url: String, done: u64, total: u64 },
    #[error("checksum mismatch: expected sha256 {expected}, got {got}")]
    ChecksumMismatch { expected: String, got: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is in the way: a file Quantix did not write (or another host's copy of an older image) holds the image's path", path.display())]
    InTheWay { path: PathBuf },
    #[error("{} is not in pool {pool} on this host", path.display())]
    SourceMissing { path: PathBuf, pool: String },
    #[error("the image was uploaded to host {host}; this host cannot fetch it")]
    UploadedElsewhere { host: String },
    #[error(
        "downloads from {host} are not allowed on this host ([images] url_hosts in its config)"
    )]
    HostNotAllowed { host: String },
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

/// The hosts image URLs may name (`[images] url_hosts`); empty allows any.
#[derive(Debug, Clone, Default)]
pub struct UrlHosts(std::sync::Arc<Vec<String>>);

impl UrlHosts {
    pub fn new(hosts: Vec<String>) -> UrlHosts {
        UrlHosts(std::sync::Arc::new(
            hosts.into_iter().map(|h| h.to_ascii_lowercase()).collect(),
        ))
    }

    pub fn allows(&self, host: &str) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.0.is_empty() || self.0.iter().any(|h| h.eq_ignore_ascii_case(host))
    }

    /// Refuses a URL naming a host that is not allowed.
    pub fn check(&self, url: &str) -> Result<(), ImagesError> {
        let host = reqwest::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_default();
        if self.allows(&host) {
            Ok(())
        } else {
            Err(ImagesError::HostNotAllowed { host })
        }
    }
}

/// Starts the loop; it waits until the host is a member. Downloads may only name
/// `url_hosts` (redirects included).
pub fn spawn(host: Host, url_hosts: UrlHosts) -> tokio::task::JoinHandle<()> {
    let allowed = url_hosts.clone();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::custom(move |attempt| {
            let ok = attempt.url().host_str().is_some_and(|h| allowed.allows(h));
            if !ok {
                let host = attempt.url().host_str().unwrap_or_default().to_string();
                attempt.error(ImagesError::HostNotAllowed { host })
            } else if attempt.previous().len() >= 10 {
                attempt.error("more than 10 redirects")
            } else {
                attempt.follow()
            }
        }))
        .connect_timeout(fetch::CONNECT)
        .user_agent(concat!("quantix/", env!("CARGO_PKG_VERSION")))
        .build();
    tokio::spawn(async move {
        match client {
            Ok(client) => Realiser::new(host, client, url_hosts).run().await,
            Err(e) => {
                tracing::error!(error = %e, "cannot build the HTTP client; images will not be downloaded")
            }
        }
    })
}

struct Running {
    created_at: UnixMillis,
    task: tokio::task::JoinHandle<Result<(), ImagesError>>,
}

struct Realiser {
    host: Host,
    client: reqwest::Client,
    url_hosts: UrlHosts,
    running: BTreeMap<String, Running>,
    backoff: BTreeMap<String, Backoff>,
    /// Image names seen by the last pass: one missing now was deleted (sweep at once).
    known: BTreeSet<String>,
    last_sweep: Option<Instant>,
    online: Option<(Instant, Option<BTreeSet<String>>)>,
    /// Uploaded copies already reported gone (reported once).
    gone: BTreeSet<String>,
    done_tx: tokio::sync::mpsc::UnboundedSender<()>,
    done_rx: tokio::sync::mpsc::UnboundedReceiver<()>,
}

impl Realiser {
    fn new(host: Host, client: reqwest::Client, url_hosts: UrlHosts) -> Realiser {
        let (done_tx, done_rx) = tokio::sync::mpsc::unbounded_channel();
        Realiser {
            host,
            client,
            url_hosts,
            running: BTreeMap::new(),
            backoff: BTreeMap::new(),
            known: BTreeSet::new(),
            last_sweep: None,
            online: None,
            gone: BTreeSet::new(),
            done_tx,
            done_rx,
        }
    }

    async fn run(mut self) {
        let mut applied = self.host.applied();
        loop {
            if self.host.is_member() {
                if let Err(e) = self.pass().await {
                    tracing::warn!(error = %e, "image pass failed; will retry");
                }
            }
            let now = Instant::now();
            let wait = self
                .backoff
                .values()
                .filter_map(Backoff::retry_at)
                .filter(|t| *t > now)
                .min()
                .map_or(RESYNC, |t| t - now)
                .min(RESYNC);
            tokio::time::sleep(MIN_GAP).await;
            tokio::select! {
                changed = applied.changed() => if changed.is_err() { return },
                _ = self.done_rx.recv() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Names of the members the leader heard from lately; `None` when it cannot be asked
    /// (then every candidate counts as online and name order alone decides).
    async fn online(&mut self) -> Option<BTreeSet<String>> {
        if let Some((at, view)) = &self.online {
            if at.elapsed() < ONLINE_TTL {
                return view.clone();
            }
        }
        // Without a leader `online_view` waits for one; a pass must not stall that long.
        let asked = tokio::time::timeout(ONLINE_ASK, self.host.online_view()).await;
        let view = match asked
            .unwrap_or_else(|_| Err(ClusterError::Unavailable("no liveness view in time".into())))
        {
            Ok(by_id) => {
                let (members, _) = self.host.membership();
                Some(
                    by_id
                        .into_iter()
                        .filter(|(_, up)| *up)
                        .filter_map(|(id, _)| members.get(&id).map(|m| m.name.clone()))
                        .collect(),
                )
            }
            Err(e) => {
                tracing::debug!(error = %e, "no liveness view; taking every host as online");
                None
            }
        };
        self.online = Some((Instant::now(), view.clone()));
        view
    }

    fn reap(&mut self) {
        let finished: Vec<String> = self
            .running
            .iter()
            .filter(|(_, r)| r.task.is_finished())
            .map(|(n, _)| n.clone())
            .collect();
        for name in finished {
            let Some(r) = self.running.remove(&name) else {
                continue;
            };
            // The task has finished, so this does not wait; `now_or_never` avoids an await.
            match futures::FutureExt::now_or_never(r.task) {
                Some(Ok(Ok(()))) => {
                    self.backoff.remove(&name);
                }
                Some(Ok(Err(e))) => {
                    let wait = self
                        .backoff
                        .entry(name.clone())
                        .or_default()
                        .failed(Instant::now());
                    tracing::info!(image = %name, error = %e, retry_in = ?wait, "image job failed");
                }
                Some(Err(e)) if e.is_cancelled() => {}
                Some(Err(e)) => {
                    tracing::error!(image = %name, error = %e, "image job panicked");
                    self.backoff.entry(name).or_default().failed(Instant::now());
                }
                None => {}
            }
        }
    }

    fn stop(&mut self, name: &str, pool: Option<&Pool>, image: Option<&Image>) {
        if let Some(r) = self.running.remove(name) {
            r.task.abort();
            tracing::info!(image = %name, "image job stopped: no longer wanted here");
        }
        if let (Some(p), Some(i)) = (pool, image) {
            for f in job::part_files(&desired::image_path(p, i), self.host.name()) {
                if let Err(e) = files::remove(&f) {
                    tracing::warn!(error = %e, "cannot remove a partial download");
                }
            }
        }
    }

    async fn pass(&mut self) -> Result<(), ClusterError> {
        self.reap();
        let me = self.host.name().to_string();
        let (list, pool_list) = {
            let state = self.host.state()?;
            (
                images::list(&state, None).map_err(ClusterError::internal)?,
                pools::list(&state).map_err(ClusterError::internal)?,
            )
        };
        let pools: BTreeMap<&str, &Pool> = pool_list
            .iter()
            .map(|p| (p.spec.name.as_str(), p))
            .collect();
        let names: BTreeSet<String> = list.iter().map(|i| i.spec.name.clone()).collect();
        let deleted = self.known.difference(&names).count() > 0;
        // Jobs of images that are gone: stop them (their files go in the sweep).
        let orphaned: Vec<String> = self
            .running
            .keys()
            .filter(|n| !names.contains(*n))
            .cloned()
            .collect();
        for n in orphaned {
            self.stop(&n, None, None);
            self.backoff.remove(&n);
        }
        self.gone.retain(|n| names.contains(n));
        let now = Instant::now();
        for image in &list {
            let name = image.spec.name.clone();
            let Some(pool) = pools.get(image.spec.pool.as_str()).copied() else {
                continue;
            };
            let cands = Candidates::of(pool);
            let source = image.spec.source();
            let want = match source {
                ImageSource::Http(_) => self.fetches(&cands, image, &me).await,
                ImageSource::PoolFile { path } if !cands.shared => {
                    cands.hosts.contains(&me)
                        && Path::new(pool.spec.kind.local_path()).join(path).is_file()
                }
                ImageSource::PoolFile { .. } => self.fetches(&cands, image, &me).await,
                ImageSource::Upload { .. } => false,
            };
            if let Some(r) = self.running.get(&name) {
                if want && r.created_at == image.created_at {
                    continue;
                }
                // Its part goes when another host fetches now; it stays (for a resume) when
                // the pool is out of reach, and the sweep takes parts of gone incarnations.
                let reachable = cands.hosts.contains(&me);
                self.stop(&name, reachable.then_some(pool), Some(image));
            }
            let final_path = desired::image_path(pool, image);
            let mine = image.hosts.get(&me).map(|h| &h.status);
            if mine == Some(&HostImageStatus::Ready) {
                if tokio::fs::symlink_metadata(&final_path).await.is_ok() {
                    continue;
                }
                if !want {
                    if matches!(source, ImageSource::Upload { .. })
                        && self.gone.insert(name.clone())
                    {
                        self.report_gone(&name, &final_path).await;
                    }
                    continue;
                }
                tracing::warn!(image = %name, path = %final_path.display(), "the file of a ready image is gone; fetching it again");
            }
            if !want || !self.backoff.get(&name).is_none_or(|b| b.ready(now)) {
                continue;
            }
            self.start(image.clone(), pool.clone());
        }
        let sweep_due = self.last_sweep.is_none_or(|t| t.elapsed() >= SWEEP);
        if deleted || sweep_due {
            self.sweep(&list, &pool_list, &me).await;
            self.last_sweep = Some(Instant::now());
        }
        self.known = names;
        Ok(())
    }

    async fn fetches(&mut self, cands: &Candidates, image: &Image, me: &str) -> bool {
        if !cands.shared {
            return who::fetches(cands, image, me, |_| true);
        }
        let online = self.online().await;
        who::fetches(cands, image, me, |h| {
            online.as_ref().is_none_or(|o| o.contains(h))
        })
    }

    fn start(&mut self, image: Image, pool: Pool) {
        let name = image.spec.name.clone();
        tracing::info!(image = %name, source = %image.spec.url, "realising image on this host");
        let created_at = image.created_at;
        let j = job::Job {
            host: self.host.clone(),
            client: self.client.clone(),
            url_hosts: self.url_hosts.clone(),
            image,
            pool,
        };
        let done = self.done_tx.clone();
        let task = tokio::spawn(async move {
            let r = job::run(j).await;
            let _ = done.send(());
            r
        });
        self.running.insert(name, Running { created_at, task });
    }

    async fn report_gone(&self, name: &str, path: &Path) {
        let cmd = Command::Image(ImageCommand::Observe {
            image: name.to_string(),
            host: self.host.name().to_string(),
            status: HostImageStatus::Failed {
                reason: format!(
                    "the uploaded file {} is gone from this host",
                    path.display()
                ),
            },
        });
        if let Err(e) = self.host.write_ok(cmd, None).await {
            tracing::warn!(image = %name, error = %e, "report failed");
        }
    }

    /// Removes this host's files of images that no longer exist, in every pool directory
    /// this host has.
    async fn sweep(&self, list: &[Image], pool_list: &[Pool], me: &str) {
        let mut by_pool: BTreeMap<&str, BTreeMap<String, UnixMillis>> = BTreeMap::new();
        for i in list {
            by_pool.entry(i.spec.pool.as_str()).or_default().insert(
                format!("{}.{}", i.spec.name, i.spec.format.as_str()),
                i.created_at,
            );
        }
        let jobs: Vec<(PathBuf, BTreeMap<String, UnixMillis>)> = pool_list
            .iter()
            .map(|p| {
                (
                    Path::new(p.spec.kind.local_path()).join("images"),
                    by_pool.remove(p.spec.name.as_str()).unwrap_or_default(),
                )
            })
            .collect();
        let me = me.to_string();
        let swept = tokio::task::spawn_blocking(move || {
            let mut removed = Vec::new();
            for (dir, current) in jobs {
                removed.extend(sweep_dir(&dir, &current, &me));
            }
            removed
        })
        .await;
        match swept {
            Ok(removed) if !removed.is_empty() => {
                tracing::info!(files = ?removed, "removed files of deleted images");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "image sweep failed"),
        }
    }
}

/// One `images/` directory: removes this host's leftovers; returns what it removed.
fn sweep_dir(dir: &Path, current: &BTreeMap<String, UnixMillis>, me: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let found: Vec<(String, files::Found)> = entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .map(|n| {
            let f = files::classify(&n, |s| files::read_json(&dir.join(s)));
            (n, f)
        })
        .collect();
    let part_incarnation = |name: &str| {
        let meta = if name.ends_with(".part") {
            format!("{name}.json")
        } else {
            name.to_string()
        };
        files::read_json::<files::PartMeta>(&dir.join(meta)).map(|m| m.created_at)
    };
    let idle = |name: &str| {
        std::fs::metadata(dir.join(name))
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age >= UPLOAD_IDLE)
    };
    let mut removed = Vec::new();
    for name in files::leftovers(&found, current, me, part_incarnation, idle) {
        let path = dir.join(&name);
        match files::remove(&path) {
            Ok(()) => removed.push(path),
            Err(e) => tracing::warn!(error = %e, "cannot remove a file of a deleted image"),
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_hosts_limit_downloads() {
        let any = UrlHosts::default();
        assert!(any.check("https://cloud-images.ubuntu.com/x.img").is_ok());
        let local = UrlHosts::new(vec!["127.0.0.1".into(), "Mirror.LAN".into(), "::1".into()]);
        assert!(local.check("http://127.0.0.1:8080/a.iso").is_ok());
        assert!(local.check("http://mirror.lan/a.iso").is_ok());
        assert!(local.check("http://[::1]:80/a.iso").is_ok());
        let e = local
            .check("https://cloud-images.ubuntu.com/x.img")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "downloads from cloud-images.ubuntu.com are not allowed on this host ([images] url_hosts in its config)"
        );
    }
}
