//! The local server's signing keys, kept in a file of the data directory
//! (in AWS they come from Secrets Manager).

use publinks_domain::signing::SigningKeys;
use std::path::Path;

/// Why the keys could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read or write the key file {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("the key file {path} is not valid: {reason}")]
    Invalid { path: String, reason: String },
}

/// The local server's signing keys: reads `path` (`keys.json` in the data
/// directory), or generates keys into it (mode 0600) if it does not exist.
pub fn load_or_create_keys(path: &Path) -> Result<SigningKeys, KeyError> {
    let io = |source| KeyError::Io { path: path.display().to_string(), source };
    match std::fs::read_to_string(path) {
        Ok(text) => SigningKeys::from_json(&text)
            .map_err(|reason| KeyError::Invalid { path: path.display().to_string(), reason }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let keys = SigningKeys::generate();
            let json = serde_json::to_string_pretty(&keys).expect("keys serialise");
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, json).map_err(io)?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
            }
            std::fs::rename(&tmp, path).map_err(io)?;
            Ok(keys)
        }
        Err(e) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_survive_a_restart_and_bad_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let first = load_or_create_keys(&path).unwrap();
        let second = load_or_create_keys(&path).unwrap();
        assert_eq!(first.jwt, second.jwt);
        std::fs::write(&path, "{\"jwt\": \"c2hvcnQ=\"}").unwrap();
        assert!(matches!(load_or_create_keys(&path), Err(KeyError::Invalid { .. })));
    }
}
