//! Link passwords: Argon2id at OWASP's minimum parameters (19 MiB, 2
//! passes, 1 lane), a length cap checked before any hashing, and hashing on
//! a blocking thread so it never stalls the async runtime.

use super::{DomainError, DomainResult};
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use serde::Deserialize;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

static VERIFICATIONS: AtomicU64 = AtomicU64::new(0);

/// How many password hashes this process has computed to check a guess: the
/// figure that shows throttling stops brute force before it costs CPU.
pub fn verifications() -> u64 {
    VERIFICATIONS.load(Ordering::Relaxed)
}

/// Longest password accepted, in bytes: longer input is refused unhashed.
pub const MAX_PASSWORD_BYTES: usize = 256;
/// Shortest password a manager may set, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// A password in transit: never printed, never logged.
#[derive(Clone, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, format = Password)]
pub struct Password(String);

impl Password {
    /// Wraps a password given by a person.
    pub fn new(text: impl Into<String>) -> Self {
        Password(text.into())
    }

    /// The password text, for hashing and verifying only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("OWASP parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Checks a new password's length and hashes it (Argon2id, random salt).
pub async fn hash(password: &Password) -> DomainResult<String> {
    let chars = password.0.chars().count();
    if chars < MIN_PASSWORD_CHARS || password.0.len() > MAX_PASSWORD_BYTES {
        return Err(DomainError::invalid(
            "password",
            format!("password must be at least {MIN_PASSWORD_CHARS} characters and at most {MAX_PASSWORD_BYTES} bytes"),
        ));
    }
    let text = password.0.clone();
    tokio::task::spawn_blocking(move || argon2().hash_password(text.as_bytes()).map(|h| h.to_string()))
        .await
        .map_err(|e| DomainError::Store(crate::store::StoreError::Backend(format!("hashing task: {e}"))))?
        .map_err(|e| DomainError::Store(crate::store::StoreError::Backend(format!("hashing failed: {e}"))))
}

/// Whether `password` matches the stored PHC hash. Over-long input is
/// refused before hashing; the comparison inside argon2 is constant-time.
pub async fn verify(password: &Password, phc: &str) -> bool {
    if password.0.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    let (text, phc) = (password.0.clone(), phc.to_string());
    VERIFICATIONS.fetch_add(1, Ordering::Relaxed);
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&phc).is_ok_and(|parsed| argon2().verify_password(text.as_bytes(), &parsed).is_ok())
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_salted_and_verify() {
        let p = Password::new("correct horse");
        let (h1, h2) = (hash(&p).await.unwrap(), hash(&p).await.unwrap());
        assert!(h1.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h1}");
        assert_ne!(h1, h2, "each hash has its own salt");
        assert!(verify(&p, &h1).await);
        assert!(!verify(&Password::new("correct horsE"), &h1).await);
        assert!(!verify(&p, "not a hash").await);
    }

    #[tokio::test]
    async fn lengths_are_checked_before_hashing() {
        assert!(hash(&Password::new("short")).await.is_err());
        assert!(hash(&Password::new("x".repeat(MAX_PASSWORD_BYTES + 1))).await.is_err());
        let ok = hash(&Password::new("x".repeat(MAX_PASSWORD_BYTES))).await.unwrap();
        let long = Password::new("x".repeat(MAX_PASSWORD_BYTES + 1));
        assert!(!verify(&long, &ok).await);
    }

    #[test]
    fn passwords_never_print() {
        assert_eq!(format!("{:?}", Password::new("hunter22")), "Password(..)");
    }
}
