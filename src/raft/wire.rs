//! Encoding of host-to-host messages into the transport's `Envelope` (format + payload).
//! Every message carries its format version, so a mixed-version cluster fails loudly.

use serde::{de::DeserializeOwned, Serialize};

use crate::proto::internal::Envelope;
use crate::state::codec::{decode, encode, CodecError};

pub fn to_envelope<T: Serialize>(value: &T) -> Result<Envelope, CodecError> {
    let mut bytes = encode(value)?;
    let format = bytes.remove(0);
    Ok(Envelope {
        format: u32::from(format),
        payload: bytes,
    })
}

pub fn from_envelope<T: DeserializeOwned>(
    what: &'static str,
    env: &Envelope,
) -> Result<T, CodecError> {
    let format = u8::try_from(env.format).map_err(|_| CodecError::UnknownFormat {
        what,
        found: u8::MAX,
    })?;
    let mut bytes = Vec::with_capacity(env.payload.len() + 1);
    bytes.push(format);
    bytes.extend_from_slice(&env.payload);
    decode(what, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_unknown_format() {
        let env = to_envelope(&("a".to_string(), 3u32)).unwrap();
        assert_eq!(env.format, 1);
        let back: (String, u32) = from_envelope("pair", &env).unwrap();
        assert_eq!(back, ("a".to_string(), 3));
        let bad = Envelope {
            format: 2,
            payload: env.payload.clone(),
        };
        assert!(from_envelope::<(String, u32)>("pair", &bad)
            .unwrap_err()
            .to_string()
            .contains("unknown format version 2"));
    }
}
