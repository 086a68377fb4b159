//! Tokens (agents', users' API tokens, session ids): random secrets shown once, stored only as
//! their SHA-256.

use sha2::{Digest, Sha256};

/// What every agent token starts with; users' API tokens start with `cgu_`.
pub const AGENT_TOKEN_PREFIX: &str = "cgv_";

/// A new agent token: `cgv_` followed by 32 random bytes in hex.
pub fn generate() -> Result<String, getrandom::Error> {
    generate_prefixed(AGENT_TOKEN_PREFIX)
}

/// `prefix` followed by 32 random bytes in hex.
pub fn generate_prefixed(prefix: &str) -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(format!("{prefix}{}", hex::encode(bytes)))
}

/// What the store keeps of a token. Looking up a token by its hash means the comparison that
/// decides is between hashes an attacker cannot steer, so it leaks nothing through timing.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The URL without a password, for error messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            super::redact_url("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(super::redact_url("sqlite://x.db"), "sqlite://x.db");
    }

    #[test]
    fn tokens_are_random_and_hashes_stable() {
        let a = super::generate().expect("random");
        let b = super::generate().expect("random");
        assert_ne!(a, b);
        assert!(a.starts_with("cgv_") && a.len() == 68);
        assert_eq!(super::hash("x"), super::hash("x"));
        assert_ne!(super::hash(&a), super::hash(&b));
    }
}
