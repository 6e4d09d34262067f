//! `--wait` for `quantix image download`: polls the image (twice a second) and shows an
//! indicatif progress bar of the furthest download, until it is ready with no host still
//! downloading (exit 0) or failed (the reason, exit non-zero). The bar is drawn on stderr,
//! and only on a terminal, so `-o json` output stays one document.

use std::time::Duration;

use crate::cli::Conn as Channel;
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::CliError;
use crate::proto::v1::image_service_client::ImageServiceClient;
use crate::proto::v1::*;

const POLL: Duration = Duration::from_millis(500);
/// After this long with no report, the bar says where to look.
const HINT_AFTER: Duration = Duration::from_secs(20);

fn state(p: Option<&ImageProgress>) -> ImageState {
    p.and_then(|p| ImageState::try_from(p.state).ok())
        .unwrap_or(ImageState::Unspecified)
}

/// What the bar shows for one look at the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Look {
    Waiting(String),
    Progress { done: u64, total: u64, msg: String },
    Ready(Vec<String>),
    Failed(String),
}

/// Reads an image's state for the bar (pure).
pub fn look(i: &Image) -> Look {
    let downloading: Vec<&ImageHostState> = i
        .hosts
        .iter()
        .filter(|h| state(h.progress.as_ref()) == ImageState::Downloading)
        .collect();
    match state(i.status.as_ref()) {
        ImageState::Ready if downloading.is_empty() => Look::Ready(
            i.hosts
                .iter()
                .filter(|h| state(h.progress.as_ref()) == ImageState::Ready)
                .map(|h| h.host.clone())
                .collect(),
        ),
        ImageState::Failed => Look::Failed(
            i.status
                .as_ref()
                .map(|p| p.reason.clone())
                .unwrap_or_default(),
        ),
        ImageState::Pending | ImageState::Unspecified => {
            Look::Waiting("waiting for a host to start".into())
        }
        _ => {
            let furthest = downloading
                .iter()
                .filter_map(|h| h.progress.as_ref())
                .max_by_key(|p| (p.percent, p.bytes_done));
            let hosts: Vec<&str> = downloading.iter().map(|h| h.host.as_str()).collect();
            let msg = format!("downloading on {}", hosts.join(", "));
            match furthest {
                Some(p) => Look::Progress {
                    done: p.bytes_done,
                    total: p.bytes_total,
                    msg,
                },
                None => Look::Waiting("verifying".into()),
            }
        }
    }
}

/// Waits for `name`; returns the final image or the failure as an error.
pub async fn wait(c: &mut ImageServiceClient<Channel>, name: &str) -> Result<Image, CliError> {
    let bar = ProgressBar::new(0);
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let style = ProgressStyle::with_template(
        "{spinner} {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    let started = std::time::Instant::now();
    loop {
        let i = c
            .get_image(GetImageRequest {
                name: name.to_string(),
                // Linearizable: the host asked may not have applied the create yet.
                consistency: ReadConsistency::Linearizable as i32,
            })
            .await?
            .into_inner();
        match look(&i) {
            Look::Ready(_) => {
                bar.finish_and_clear();
                return Ok(i);
            }
            Look::Failed(reason) => {
                bar.abandon();
                return Err(CliError::Usage(format!("image {name} failed: {reason}")));
            }
            Look::Waiting(msg) if started.elapsed() >= HINT_AFTER => bar.set_message(format!(
                "{msg} (no host has reported yet: does any reach pool {}? see `quantix pool get {}`)",
                i.pool, i.pool
            )),
            Look::Waiting(msg) => bar.set_message(msg),
            Look::Progress { done, total, msg } => {
                if total > 0 {
                    bar.set_length(total);
                }
                bar.set_position(done);
                bar.set_message(msg);
            }
        }
        bar.tick();
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(state: ImageState, percent: u32, done: u64, reason: &str) -> ImageProgress {
        ImageProgress {
            state: state as i32,
            percent,
            bytes_done: done,
            bytes_total: 100,
            reason: reason.into(),
        }
    }

    fn host(name: &str, p: ImageProgress) -> ImageHostState {
        ImageHostState {
            host: name.into(),
            progress: Some(p),
            at_ms: 1,
        }
    }

    #[test]
    fn the_bar_follows_the_furthest_host_and_ends_when_none_downloads() {
        let mut i = Image {
            name: "x".into(),
            status: Some(progress(ImageState::Pending, 0, 0, "")),
            ..Default::default()
        };
        assert!(matches!(look(&i), Look::Waiting(_)));
        i.status = Some(progress(ImageState::Downloading, 40, 0, ""));
        i.hosts = vec![
            host("h1", progress(ImageState::Downloading, 40, 40, "")),
            host("h2", progress(ImageState::Downloading, 10, 10, "")),
        ];
        assert_eq!(
            look(&i),
            Look::Progress {
                done: 40,
                total: 100,
                msg: "downloading on h1, h2".into()
            }
        );
        // Ready on one host while another still downloads: keep waiting.
        i.status = Some(progress(ImageState::Ready, 100, 0, ""));
        i.hosts[0] = host("h1", progress(ImageState::Ready, 100, 0, ""));
        assert!(matches!(look(&i), Look::Progress { done: 10, .. }));
        i.hosts[1] = host("h2", progress(ImageState::Ready, 100, 0, ""));
        assert_eq!(look(&i), Look::Ready(vec!["h1".into(), "h2".into()]));
        i.status = Some(progress(ImageState::Failed, 0, 0, "h1: HTTP 404"));
        assert_eq!(look(&i), Look::Failed("h1: HTTP 404".into()));
    }
}
