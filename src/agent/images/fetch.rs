//! Downloading an image over HTTP(S) into this host's `.part` file, resuming with a Range
//! request when a part is already there (after an interruption or a daemon restart). The
//! server's validator (strong ETag, else Last-Modified) is kept in the part's meta and sent as
//! `If-Range`, so a file that changed on the server starts again from zero instead of being
//! stitched from two versions. The sha256 covers the whole file (the earlier part is hashed
//! again on resume). A connection that delivers nothing for `STALL` fails the try.
//! Owns: `download`, `Resume` and `resume_from` (pure: what a response means for the part).
//! Uses: `reqwest`, `agent::images::files`.

use futures::StreamExt;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

use super::files::{self, PartMeta};
use super::ImagesError;

/// Longest wait for the next bytes of a response.
pub const STALL: Duration = Duration::from_secs(30);
/// Longest wait for a connection.
pub const CONNECT: Duration = Duration::from_secs(15);

/// What a response to a (possibly ranged) request means for the part on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// The body continues the part; `total` is the whole file's size when known.
    Append { total: Option<u64> },
    /// The body is the whole file from byte 0: the part is discarded.
    Fresh { total: Option<u64> },
    /// The part already holds the whole file (416 with a size equal to the part's).
    Complete { total: u64 },
    /// The server answered a range we did not ask for, or says the part is longer than the
    /// file: discard the part and ask again without a range.
    Restart,
}

/// Parses `bytes START-END/TOTAL` (TOTAL may be `*`) or `bytes */TOTAL`.
fn content_range(v: &str) -> Option<(Option<u64>, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    let start = match range.trim() {
        "*" => None,
        r => Some(r.split_once('-')?.0.parse().ok()?),
    };
    Some((start, total))
}

/// The decision for a response with `status` to a request from byte `offset` (0: no range).
/// `Err` carries the HTTP status for a failure.
pub fn resume_from(
    offset: u64,
    status: u16,
    content_range_header: Option<&str>,
    content_length: Option<u64>,
) -> Result<Resume, u16> {
    match status {
        200 => Ok(Resume::Fresh {
            total: content_length,
        }),
        206 => match content_range_header.and_then(content_range) {
            Some((Some(start), total)) if start == offset && offset > 0 => {
                Ok(Resume::Append { total })
            }
            _ => Ok(Resume::Restart),
        },
        416 if offset > 0 => match content_range_header.and_then(content_range) {
            Some((None, Some(total))) if total == offset => Ok(Resume::Complete { total }),
            _ => Ok(Resume::Restart),
        },
        other => Err(other),
    }
}

/// How a download went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub sha256: String,
    pub size_bytes: u64,
    /// Where the bytes started: > 0 when an earlier part was resumed.
    pub resumed_at: u64,
}

/// The text of a reqwest error with its causes ("error sending request: connection refused").
fn chain(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// Downloads `url` into `part` (resuming it when `meta` matches), calling `progress(done,
/// total)` as bytes arrive (total 0: unknown). Leaves a complete part and returns its hash.
pub async fn download(
    client: &reqwest::Client,
    url: &str,
    created_at: u64,
    part: &Path,
    meta_path: &Path,
    mut progress: impl FnMut(u64, u64),
) -> Result<Fetched, ImagesError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ImagesError::Io { path, source }
    };
    let old = files::read_json::<PartMeta>(meta_path)
        .filter(|m| m.url == url && m.created_at == created_at);
    let mut offset = match (&old, tokio::fs::metadata(part).await) {
        (Some(_), Ok(m)) => m.len(),
        _ => 0,
    };
    let mut validator = old.and_then(|m| m.validator);
    // At most two requests: a ranged one, and a fresh one if the range was refused.
    for _ in 0..2 {
        let mut req = client.get(url);
        if offset > 0 {
            req = req.header(reqwest::header::RANGE, format!("bytes={offset}-"));
            if let Some(v) = &validator {
                req = req.header(reqwest::header::IF_RANGE, v);
            }
        }
        let resp = req.send().await.map_err(|e| ImagesError::Connect {
            url: url.to_string(),
            reason: chain(&e),
        })?;
        let header = |name| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let decision = resume_from(
            offset,
            resp.status().as_u16(),
            header(reqwest::header::CONTENT_RANGE).as_deref(),
            resp.content_length(),
        )
        .map_err(|status| ImagesError::HttpStatus {
            url: url.to_string(),
            status,
            text: resp
                .status()
                .canonical_reason()
                .unwrap_or_default()
                .to_string(),
        })?;
        let (append, total) = match decision {
            Resume::Restart => {
                offset = 0;
                validator = None;
                continue;
            }
            Resume::Complete { total } => {
                progress(total, total);
                let p = part.to_path_buf();
                let (sha256, size_bytes) =
                    tokio::task::spawn_blocking(move || files::hash_file(&p, |_| {}))
                        .await
                        .map_err(|e| ImagesError::Io {
                            path: part.to_path_buf(),
                            source: std::io::Error::other(e),
                        })??;
                return Ok(Fetched {
                    sha256,
                    size_bytes,
                    resumed_at: offset,
                });
            }
            Resume::Append { total } => (true, total),
            Resume::Fresh { total } => (false, total),
        };
        let mut hasher = Sha256::new();
        let start = if append { offset } else { 0 };
        if append {
            let p = part.to_path_buf();
            hasher = tokio::task::spawn_blocking(move || {
                let mut h = Sha256::new();
                files::hash_prefix(&p, start, &mut h).map(|()| h)
            })
            .await
            .map_err(|e| ImagesError::Io {
                path: part.to_path_buf(),
                source: std::io::Error::other(e),
            })??;
        } else {
            // A new download: remember what it is before the first byte lands.
            let etag = header(reqwest::header::ETAG).filter(|e| !e.starts_with("W/"));
            let v = etag.or_else(|| header(reqwest::header::LAST_MODIFIED));
            files::write_json(
                meta_path,
                &PartMeta {
                    url: url.to_string(),
                    created_at,
                    validator: v,
                },
            )?;
        }
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(part)
            .await
            .map_err(io(part))?;
        let total = total.unwrap_or(0);
        let mut done = start;
        progress(done, total);
        let mut body = resp.bytes_stream();
        loop {
            let next = tokio::time::timeout(STALL, body.next())
                .await
                .map_err(|_| ImagesError::Stalled {
                    url: url.to_string(),
                    secs: STALL.as_secs(),
                    done,
                })?;
            let Some(chunk) = next else { break };
            let chunk = chunk.map_err(|e| ImagesError::Connect {
                url: url.to_string(),
                reason: chain(&e),
            })?;
            file.write_all(&chunk).await.map_err(io(part))?;
            hasher.update(&chunk);
            done += chunk.len() as u64;
            progress(done, total);
        }
        file.sync_all().await.map_err(io(part))?;
        if total > 0 && done != total {
            return Err(ImagesError::Truncated {
                url: url.to_string(),
                done,
                total,
            });
        }
        return Ok(Fetched {
            sha256: hex::encode(hasher.finalize()),
            size_bytes: done,
            resumed_at: start,
        });
    }
    Err(ImagesError::Connect {
        url: url.to_string(),
        reason: "the server refused every range and the whole file".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_decide_how_a_part_continues() {
        type Case = (
            u64,
            u16,
            Option<&'static str>,
            Option<u64>,
            Result<Resume, u16>,
        );
        let cases: &[Case] = &[
            (
                0,
                200,
                None,
                Some(10),
                Ok(Resume::Fresh { total: Some(10) }),
            ),
            (0, 200, None, None, Ok(Resume::Fresh { total: None })),
            // The server ignored the range (or the file changed: If-Range): start over.
            (
                4,
                200,
                None,
                Some(10),
                Ok(Resume::Fresh { total: Some(10) }),
            ),
            (
                4,
                206,
                Some("bytes 4-9/10"),
                Some(6),
                Ok(Resume::Append { total: Some(10) }),
            ),
            (
                4,
                206,
                Some("bytes 4-9/*"),
                None,
                Ok(Resume::Append { total: None }),
            ),
            (4, 206, Some("bytes 0-9/10"), None, Ok(Resume::Restart)),
            (4, 206, Some("garbage"), None, Ok(Resume::Restart)),
            (0, 206, Some("bytes 0-9/10"), None, Ok(Resume::Restart)),
            (
                10,
                416,
                Some("bytes */10"),
                None,
                Ok(Resume::Complete { total: 10 }),
            ),
            (12, 416, Some("bytes */10"), None, Ok(Resume::Restart)),
            (12, 416, None, None, Ok(Resume::Restart)),
            (0, 416, None, None, Err(416)),
            (0, 404, None, None, Err(404)),
            (4, 500, None, None, Err(500)),
        ];
        for (offset, status, cr, len, want) in cases {
            assert_eq!(
                resume_from(*offset, *status, *cr, *len),
                *want,
                "{offset} {status} {cr:?}"
            );
        }
    }
}
