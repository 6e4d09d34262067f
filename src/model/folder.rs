//! Folders: a tree rooted at `/`. A folder is stored by id with its parent id and its own
//! name, so rename and move touch one record; a path is resolved by walking names.

use serde::{Deserialize, Serialize};
use std::fmt;

use super::names::NameError;
use super::UnixMillis;

/// Folder id. The root is always [`FolderId::ROOT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FolderId(pub u64);

impl FolderId {
    pub const ROOT: FolderId = FolderId(1);
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Folder {
    pub id: FolderId,
    /// `None` only for the root.
    pub parent: Option<FolderId>,
    /// Empty only for the root.
    pub name: String,
    pub created_at: UnixMillis,
}

/// Longest folder name (one path segment).
pub const MAX_SEGMENT: usize = 64;
/// Deepest folder nesting.
pub const MAX_DEPTH: usize = 32;

/// A validated absolute folder path such as `/prod/web`. `/` is the root.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FolderPath {
    segments: Vec<String>,
}

impl FolderPath {
    pub fn root() -> Self {
        FolderPath {
            segments: Vec::new(),
        }
    }

    /// Parses and validates. Segments: 1–64 characters of letters, digits, space, `-`, `_`,
    /// `.`; not `.` or `..`; no leading or trailing space.
    pub fn parse(field: &'static str, value: &str) -> Result<Self, NameError> {
        if value.is_empty() {
            return Err(NameError::Empty { field });
        }
        if !value.starts_with('/') {
            return Err(NameError::NotAbsolute {
                field,
                value: value.to_string(),
            });
        }
        if value == "/" {
            return Ok(Self::root());
        }
        let mut segments = Vec::new();
        for seg in value[1..].split('/') {
            validate_segment(field, value, seg)?;
            segments.push(seg.to_string());
        }
        if segments.len() > MAX_DEPTH {
            return Err(NameError::TooLong {
                field,
                value: value.to_string(),
                max: MAX_DEPTH,
            });
        }
        Ok(FolderPath { segments })
    }

    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    pub fn is_root(&self) -> bool {
        self.segments.is_empty()
    }

    /// The parent path and the last segment; `None` for the root.
    pub fn split_last(&self) -> Option<(FolderPath, &str)> {
        let (last, rest) = self.segments.split_last()?;
        Some((
            FolderPath {
                segments: rest.to_vec(),
            },
            last.as_str(),
        ))
    }

    pub fn join(&self, name: &str) -> FolderPath {
        let mut segments = self.segments.clone();
        segments.push(name.to_string());
        FolderPath { segments }
    }

    /// True if `self` is `other` or below it.
    pub fn starts_with(&self, other: &FolderPath) -> bool {
        self.segments.starts_with(&other.segments)
    }
}

impl fmt::Display for FolderPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.segments.is_empty() {
            return f.write_str("/");
        }
        for s in &self.segments {
            write!(f, "/{s}")?;
        }
        Ok(())
    }
}

/// Validates one folder name (a path segment).
pub fn validate_segment(field: &'static str, path: &str, seg: &str) -> Result<(), NameError> {
    if seg.is_empty() {
        return Err(NameError::EmptySegment {
            field,
            value: path.to_string(),
        });
    }
    if seg == "." || seg == ".." {
        return Err(NameError::Reserved {
            field,
            value: path.to_string(),
            segment: seg.to_string(),
        });
    }
    if seg.chars().count() > MAX_SEGMENT {
        return Err(NameError::TooLong {
            field,
            value: path.to_string(),
            max: MAX_SEGMENT,
        });
    }
    let ok = |c: char| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.');
    if !seg.chars().all(ok) {
        return Err(NameError::BadChar {
            field,
            value: path.to_string(),
            allowed: "letters, digits, spaces, '-', '_' and '.' in each segment",
        });
    }
    if seg.starts_with(' ') || seg.ends_with(' ') {
        return Err(NameError::BadEdge {
            field,
            value: path.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let cases: &[(&str, Option<&str>)] = &[
            ("/", Some("/")),
            ("/prod", Some("/prod")),
            ("/prod/web servers/eu-1", Some("/prod/web servers/eu-1")),
            ("", None),
            ("prod", None),
            ("/prod/", None),
            ("//prod", None),
            ("/a/../b", None),
            ("/a/./b", None),
            ("/a/b*", None),
            ("/ lead", None),
        ];
        for (input, want) in cases {
            let got = FolderPath::parse("path", input).ok().map(|p| p.to_string());
            assert_eq!(got.as_deref(), *want, "{input:?}");
        }
    }

    #[test]
    fn depth_and_length_limits() {
        let deep = "/a".repeat(MAX_DEPTH + 1);
        assert!(FolderPath::parse("path", &deep).is_err());
        let long = format!("/{}", "x".repeat(MAX_SEGMENT + 1));
        assert!(FolderPath::parse("path", &long).is_err());
    }

    #[test]
    fn split_and_prefix() {
        let p = FolderPath::parse("path", "/a/b").unwrap();
        let (parent, last) = p.split_last().unwrap();
        assert_eq!(parent.to_string(), "/a");
        assert_eq!(last, "b");
        assert!(p.starts_with(&parent));
        assert!(!parent.starts_with(&p));
        assert!(FolderPath::root().split_last().is_none());
    }
}
