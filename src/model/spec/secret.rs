//! `Secret`: a value that must never be shown back (admin and domain-join passwords, product
//! keys). Plain while it travels from the API request to the host that takes the call, which
//! checks it and seals it with the cluster key; sealed (ciphertext) in commands, the log and
//! the state; opened again only by the host that renders a guest's seed. `Debug` never shows
//! either form. Pure: sealing and opening take the cipher as a function (`tls::sealing`).

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Value {
    Plain(String),
    Sealed(Vec<u8>),
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secret(Value);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(Value::Plain(value.into()))
    }

    /// A placeholder that records only that a secret is set.
    pub fn redacted() -> Secret {
        Secret(Value::Plain(String::new()))
    }

    /// The plain value, for validation and for the code that renders it into a guest; empty
    /// for a sealed secret (open it first: `seed::render` refuses sealed secrets).
    pub fn expose(&self) -> &str {
        self.plain().unwrap_or_default()
    }

    /// The plain value, if this secret is not sealed.
    pub fn plain(&self) -> Option<&str> {
        match &self.0 {
            Value::Plain(s) => Some(s),
            Value::Sealed(_) => None,
        }
    }

    pub fn is_sealed(&self) -> bool {
        matches!(self.0, Value::Sealed(_))
    }

    /// Seals a plain secret with `seal` (a sealed one stays as it is).
    pub fn seal<E>(&self, seal: impl FnOnce(&str) -> Result<Vec<u8>, E>) -> Result<Secret, E> {
        match &self.0 {
            Value::Plain(s) => Ok(Secret(Value::Sealed(seal(s)?))),
            Value::Sealed(_) => Ok(self.clone()),
        }
    }

    /// Opens a sealed secret with `open` (a plain one stays as it is).
    pub fn open<E>(&self, open: impl FnOnce(&[u8]) -> Result<String, E>) -> Result<Secret, E> {
        match &self.0 {
            Value::Sealed(b) => Ok(Secret(Value::Plain(open(b)?))),
            Value::Plain(_) => Ok(self.clone()),
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_sealed() {
            "Secret(sealed)"
        } else {
            "Secret(***)"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open_round_trip_without_showing() {
        let s = Secret::new("pw-1234567");
        let sealed = s.seal(|p| Ok::<_, ()>(p.bytes().rev().collect())).unwrap();
        assert!(sealed.is_sealed());
        assert_eq!(sealed.plain(), None);
        assert_eq!(sealed.expose(), "");
        assert_eq!(format!("{sealed:?}"), "Secret(sealed)");
        assert_eq!(
            sealed.seal(|_| Err(())).unwrap(),
            sealed,
            "sealing twice is a no-op"
        );
        let opened = sealed
            .open(|b| Ok::<_, ()>(String::from_utf8(b.iter().rev().copied().collect()).unwrap()))
            .unwrap();
        assert_eq!(opened, s);
        assert_eq!(format!("{opened:?}"), "Secret(***)");
    }
}
