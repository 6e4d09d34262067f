//! Where an image's bytes come from, read from `ImageSpec::url` (see the parent module's
//! header): `http(s)://...`, `upload://HOST/FILE` or `pool:PATH`, with their validation.

use super::names;
use super::{validate_url, ImageError};

/// Longest file name kept in an `upload://` source or path in a `pool:` source.
pub const MAX_SOURCE_PATH: usize = 1024;

/// Where an image's bytes come from (see the module header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageSource<'a> {
    /// Downloaded over http or https.
    Http(&'a str),
    /// Streamed by a client to `host` (`quantix image upload`), under the file name `file`.
    Upload { host: &'a str, file: &'a str },
    /// A file that was already in the pool, at `path` relative to the pool's directory.
    PoolFile { path: &'a str },
}

impl<'a> ImageSource<'a> {
    const UPLOAD: &'static str = "upload://";
    const POOL: &'static str = "pool:";

    /// Reads a spec's `url`; anything not upload/pool is taken as http (validated apart).
    pub fn of(url: &'a str) -> ImageSource<'a> {
        if let Some(rest) = url.strip_prefix(Self::UPLOAD) {
            let (host, file) = rest.split_once('/').unwrap_or((rest, ""));
            ImageSource::Upload { host, file }
        } else if let Some(path) = url.strip_prefix(Self::POOL) {
            ImageSource::PoolFile { path }
        } else {
            ImageSource::Http(url)
        }
    }

    /// The `url` of an image uploaded to `host` as `file` (a bare file name; characters other
    /// than letters, digits, '.', '-' and '_' become '_').
    pub fn upload_url(host: &str, file: &str) -> String {
        let base = file.rsplit('/').next().unwrap_or(file);
        let clean: String = base
            .chars()
            .take(255)
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let clean = if clean.is_empty() || clean.chars().all(|c| c == '.') {
            "upload".to_string()
        } else {
            clean
        };
        format!("{}{host}/{clean}", Self::UPLOAD)
    }

    /// The `url` of a file found in a pool at `path` (relative to the pool's directory).
    pub fn pool_url(path: &str) -> String {
        format!("{}{path}", Self::POOL)
    }

    /// True for sources the agent downloads.
    pub fn is_http(&self) -> bool {
        matches!(self, ImageSource::Http(_))
    }
}

/// Checks a source as stored: an http(s) URL, or an upload/pool source the API made.
pub fn validate_source(url: &str) -> Result<(), ImageError> {
    let bad = |rule| ImageError::BadSource {
        value: url.to_string(),
        rule,
    };
    match ImageSource::of(url) {
        ImageSource::Http(u) => validate_url(u),
        ImageSource::Upload { host, file } => {
            names::validate_label("host name", host)
                .map_err(|_| bad("must name the host it was uploaded to"))?;
            let ok = !file.is_empty()
                && file.len() <= 255
                && !file.chars().all(|c| c == '.')
                && file
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
            if !ok {
                return Err(bad("must end in a plain file name"));
            }
            Ok(())
        }
        ImageSource::PoolFile { path } => validate_pool_path(path).map_err(bad),
    }
}

/// A path relative to a pool's directory: not empty, no leading '/', no '.' or '..' parts,
/// no control characters, and not inside `images/` (the agent's own directory).
pub fn validate_pool_path(path: &str) -> Result<(), &'static str> {
    if path.is_empty() || path.len() > MAX_SOURCE_PATH {
        return Err("must be a path of 1 to 1024 bytes inside the pool");
    }
    if path.starts_with('/') {
        return Err("must be relative to the pool's directory");
    }
    if path.chars().any(char::is_control) {
        return Err("must not contain control characters");
    }
    if path
        .split('/')
        .any(|p| p.is_empty() || p == "." || p == "..")
    {
        return Err("must not have empty, '.' or '..' parts");
    }
    if path.starts_with("images/") {
        return Err("must not be inside images/ (the agent's directory)");
    }
    Ok(())
}
