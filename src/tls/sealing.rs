//! The cluster key: 32 random bytes made at bootstrap, kept in `<data_dir>/tls/cluster.key`
//! (hex, mode 0600) on every host and handed to a joining host with its admission. Secrets
//! (Windows admin passwords, domain-join passwords, product keys) are sealed with it by the
//! host that takes the API call, before they enter a Raft command, so the log, the state and
//! snapshots only ever hold ciphertext. The host that renders a guest's seed opens them.
//!
//! Sealed form: format byte 1, a 96-bit random nonce, then AES-256-GCM ciphertext and tag.
//! Owns: `ClusterKey`. Uses: `ring`, `tls::files`.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

use super::files::TlsDir;
use super::TlsError;

const FORMAT: u8 = 1;
pub const FILE: &str = "cluster.key";

#[derive(Clone, PartialEq, Eq)]
pub struct ClusterKey([u8; 32]);

impl std::fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterKey(***)")
    }
}

fn failed(what: &'static str, message: &str) -> TlsError {
    TlsError::Cert {
        what,
        message: message.to_string(),
    }
}

impl ClusterKey {
    pub fn generate() -> Result<ClusterKey, TlsError> {
        let mut k = [0u8; 32];
        SystemRandom::new()
            .fill(&mut k)
            .map_err(|_| failed("make the cluster key", "no randomness"))?;
        Ok(ClusterKey(k))
    }

    /// A separate key for another purpose, derived from this one: HMAC-SHA256(key, label).
    /// Every member derives the same one.
    pub fn derive(&self, label: &str) -> [u8; 32] {
        let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.0);
        let tag = ring::hmac::sign(&k, label.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(text: &str) -> Result<ClusterKey, TlsError> {
        let bad = || failed("read the cluster key", "expected 64 hex digits");
        let bytes = hex::decode(text.trim()).map_err(|_| bad())?;
        Ok(ClusterKey(bytes.try_into().map_err(|_| bad())?))
    }

    /// The host's key, if it has one.
    pub fn load(dir: &TlsDir) -> Result<Option<ClusterKey>, TlsError> {
        dir.read(FILE)?
            .map(|t| ClusterKey::from_hex(&t))
            .transpose()
    }

    pub fn store(&self, dir: &TlsDir) -> Result<(), TlsError> {
        dir.write(FILE, &format!("{}\n", self.to_hex()))
    }

    fn key(&self) -> Result<LessSafeKey, TlsError> {
        Ok(LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, &self.0)
                .map_err(|_| failed("use the cluster key", "not an AES-256 key"))?,
        ))
    }

    pub fn seal(&self, plain: &str) -> Result<Vec<u8>, TlsError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| failed("seal a secret", "no randomness"))?;
        let mut body = plain.as_bytes().to_vec();
        self.key()?
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut body)
            .map_err(|_| failed("seal a secret", "encryption failed"))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + body.len());
        out.push(FORMAT);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&body);
        Ok(out)
    }

    pub fn open(&self, sealed: &[u8]) -> Result<String, TlsError> {
        let bad = |m: &str| failed("open a sealed secret", m);
        let (&format, rest) = sealed.split_first().ok_or_else(|| bad("empty"))?;
        if format != FORMAT {
            return Err(bad(&format!("unknown format {format}")));
        }
        if rest.len() < NONCE_LEN {
            return Err(bad("too short"));
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| bad("bad nonce"))?;
        let mut body = body.to_vec();
        let plain = self
            .key()?
            .open_in_place(nonce, Aad::empty(), &mut body)
            .map_err(|_| bad("wrong cluster key or damaged secret"))?;
        String::from_utf8(plain.to_vec()).map_err(|_| bad("not text"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_refusals() {
        let k = ClusterKey::generate().unwrap();
        let s = k.seal("S3cret-admin!").unwrap();
        assert!(!s.windows(6).any(|w| w == b"S3cret"), "ciphertext only");
        assert_eq!(k.open(&s).unwrap(), "S3cret-admin!");
        assert_ne!(
            k.seal("S3cret-admin!").unwrap(),
            s,
            "a fresh nonce every time"
        );
        let other = ClusterKey::generate().unwrap();
        let e = other.open(&s).unwrap_err().to_string();
        assert!(e.contains("wrong cluster key"), "{e}");
        let mut damaged = s.clone();
        if let Some(b) = damaged.last_mut() {
            *b ^= 1;
        }
        assert!(k.open(&damaged).is_err());
        assert!(k.open(&[]).is_err());
        let e = k.open(&[9, 1, 2]).unwrap_err().to_string();
        assert!(e.contains("unknown format 9"), "{e}");

        let dir = tempfile::tempdir().unwrap();
        let tls = TlsDir::new(dir.path());
        assert_eq!(ClusterKey::load(&tls).unwrap(), None);
        k.store(&tls).unwrap();
        assert_eq!(ClusterKey::load(&tls).unwrap(), Some(k.clone()));
        assert_eq!(format!("{k:?}"), "ClusterKey(***)");
        assert!(ClusterKey::from_hex("abc").is_err());
    }
}
