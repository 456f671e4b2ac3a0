//! Signing keys, and the HMAC-signed URLs the embedded blob store hands out in
//! place of S3's presigned URLs.
//!
//! Keys live in `keys.json` in the local data directory (generated on first
//! start) and in Secrets Manager in AWS, in the same JSON shape.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::fmt;

/// Secret key bytes that never print.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretKey(#[serde(with = "b64")] Vec<u8>);

impl SecretKey {
    /// 256 random bits from the OS CSPRNG.
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        SecretKey(bytes)
    }

    /// The raw key, for the crates that sign with it.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length")
    }

    /// HMAC-SHA256 of `message`, URL-safe base64.
    pub fn sign(&self, message: &[u8]) -> String {
        let mut mac = self.mac();
        mac.update(message);
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// Checks a signature from [`sign`](Self::sign) in constant time.
    pub fn verify(&self, message: &[u8], signature: &str) -> bool {
        let Ok(sig) = URL_SAFE_NO_PAD.decode(signature) else {
            return false;
        };
        let mut mac = self.mac();
        mac.update(message);
        mac.verify_slice(&sig).is_ok()
    }
}

/// A key ready to sign many messages: the HMAC's keyed state is computed
/// once and copied for each message, which for short messages (a link's
/// token seed) halves the hashing of [`SecretKey::sign`]. Same signatures.
#[derive(Clone)]
pub struct Signer(Hmac<Sha256>);

impl Signer {
    /// Readies `key`.
    pub fn new(key: &SecretKey) -> Self {
        Signer(key.mac())
    }

    /// [`SecretKey::sign`] of `message`, appended to `out` (URL-safe base64).
    pub fn sign_into(&self, message: &[u8], out: &mut String) {
        let mut mac = self.0.clone();
        mac.update(message);
        URL_SAFE_NO_PAD.encode_string(mac.finalize().into_bytes(), out);
    }

    /// [`SecretKey::sign`] of `message`.
    pub fn sign(&self, message: &[u8]) -> String {
        let mut out = String::with_capacity(43);
        self.sign_into(message, &mut out);
        out
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Signer(..)")
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

mod b64 {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        let bytes = STANDARD.decode(text.trim()).map_err(D::Error::custom)?;
        if bytes.len() < 32 {
            return Err(D::Error::custom("a signing key must have at least 256 bits"));
        }
        Ok(bytes)
    }
}

/// One key per purpose, so that a token of one kind can never pass as another.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SigningKeys {
    /// Signs (locally) and verifies dashboard bearer JWTs.
    pub jwt: SecretKey,
    /// Signs blob URLs of the embedded store.
    pub urls: SecretKey,
    /// Signs visitor sessions after a correct link password.
    pub visitor_sessions: SecretKey,
    /// Derives share tokens from the random seed stored with each link.
    pub link_tokens: SecretKey,
}

impl SigningKeys {
    /// Fresh random keys.
    pub fn generate() -> Self {
        SigningKeys {
            jwt: SecretKey::generate(),
            urls: SecretKey::generate(),
            visitor_sessions: SecretKey::generate(),
            link_tokens: SecretKey::generate(),
        }
    }

    /// Parses the JSON shape shared by `keys.json` and the Secrets Manager secret.
    pub fn from_json(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_for_its_message_and_key() {
        let key = SecretKey::generate();
        let sig = key.sign(b"get\nkey\n123");
        assert!(key.verify(b"get\nkey\n123", &sig));
        assert!(!key.verify(b"get\nkey\n124", &sig));
        assert!(!SecretKey::generate().verify(b"get\nkey\n123", &sig));
        assert!(!key.verify(b"get\nkey\n123", "not base64!"));
    }

    #[test]
    fn a_readied_signer_signs_as_its_key_does() {
        let key = SecretKey::generate();
        let signer = Signer::new(&key);
        for message in [&b""[..], b"seed", &[7u8; 200][..]] {
            assert_eq!(signer.sign(message), key.sign(message));
            let mut out = "prefix/".to_string();
            signer.sign_into(message, &mut out);
            assert_eq!(out, format!("prefix/{}", key.sign(message)));
        }
        assert!(key.verify(b"seed", &signer.sign(b"seed")));
    }

    #[test]
    fn debug_output_hides_key_bytes() {
        let keys = SigningKeys::generate();
        let shown = format!("{keys:?}");
        assert!(!shown.contains(&base64::engine::general_purpose::STANDARD.encode(keys.jwt.expose())));
    }
}
