//! Versioned binary encoding for everything stored in redb or sent between hosts.
//! Layout: one format byte, then bincode. A reader refuses formats it does not know with an
//! error that says which, instead of misreading bytes.

use serde::{de::DeserializeOwned, Serialize};
use thiserror::Error;

/// The format every writer uses today.
pub const FORMAT_V1: u8 = 1;

#[derive(Debug, Error)]
pub enum CodecError {
    #[error("empty value: no format byte")]
    Empty,
    #[error("unknown format version {found} for {what} (this build reads version {FORMAT_V1})")]
    UnknownFormat { what: &'static str, found: u8 },
    #[error("cannot encode value: {0}")]
    Encode(bincode::Error),
    #[error("corrupt {what}: {source}")]
    Corrupt {
        what: &'static str,
        source: bincode::Error,
    },
}

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = vec![FORMAT_V1];
    bincode::serialize_into(&mut out, value).map_err(CodecError::Encode)?;
    Ok(out)
}

pub fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T, CodecError> {
    let (&format, body) = bytes.split_first().ok_or(CodecError::Empty)?;
    match format {
        FORMAT_V1 => {
            bincode::deserialize(body).map_err(|source| CodecError::Corrupt { what, source })
        }
        found => Err(CodecError::UnknownFormat { what, found }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_version_checks() {
        let v = (42u64, "x".to_string());
        let bytes = encode(&v).unwrap();
        assert_eq!(bytes[0], FORMAT_V1);
        let back: (u64, String) = decode("pair", &bytes).unwrap();
        assert_eq!(back, v);

        let mut future = bytes.clone();
        future[0] = 9;
        let err = decode::<(u64, String)>("pair", &future)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown format version 9 for pair"), "{err}");
        assert!(matches!(decode::<u64>("n", &[]), Err(CodecError::Empty)));
        assert!(matches!(
            decode::<u64>("n", &[FORMAT_V1, 1]),
            Err(CodecError::Corrupt { .. })
        ));
    }

    /// Bytes written by version 1 must stay readable by every later release.
    #[test]
    fn decodes_v1_bytes_written_by_first_release() {
        let stored: &[u8] = &[1, 7, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(decode::<u64>("n", stored).unwrap(), 7);
    }
}
