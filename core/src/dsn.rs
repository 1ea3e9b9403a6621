//! Connection strings: `redis://[[user]:password@]host[:port][/db]`,
//! `rediss://…` and `unix:///path/to/redis.sock`.

use redis::{ConnectionInfo, IntoConnectionInfo};

use crate::error::{Error, Result};

/// A validated DSN, with the text to show in messages (password masked).
#[derive(Clone, Debug)]
pub struct Dsn {
    text: String,
    redacted: String,
    info: ConnectionInfo,
}

impl Dsn {
    /// Parses and validates `text`. Nothing is connected here.
    pub fn parse(text: &str) -> Result<Self> {
        let redacted = redact(text);
        let invalid = |reason: &str| Error::InvalidDsn {
            dsn: redacted.clone(),
            reason: reason.to_owned(),
        };
        let url = url::Url::parse(text).map_err(|e| invalid(&e.to_string()))?;
        match url.scheme() {
            "redis" | "rediss" => {
                if url.host_str().is_none_or(str::is_empty) {
                    return Err(invalid("a host is required"));
                }
                let db = url.path().trim_start_matches('/');
                if !db.is_empty() && db.parse::<u16>().is_err() {
                    return Err(invalid("the path must be a database number, as in /0"));
                }
            }
            "unix" => {
                if url.path().is_empty() || url.path() == "/" {
                    return Err(invalid(
                        "a socket path is required, as in unix:///run/redis.sock",
                    ));
                }
            }
            other => {
                return Err(invalid(&format!(
                    "unsupported scheme \"{other}\" (use redis://, rediss:// or unix://)"
                )))
            }
        }
        let info = text
            .into_connection_info()
            .map_err(|e| invalid(&e.to_string()))?;
        Ok(Dsn {
            text: text.to_owned(),
            redacted,
            info,
        })
    }

    /// The DSN exactly as given: the key of its connection in the pool.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The DSN with its password replaced by `***`, for messages.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    /// What redis-rs needs to connect.
    pub fn connection_info(&self) -> &ConnectionInfo {
        &self.info
    }
}

/// Masks the password of a DSN, also of one that does not parse, so that no
/// error message ever carries it.
pub fn redact(text: &str) -> String {
    let Some(scheme_end) = text.find("://") else {
        return text.to_owned();
    };
    let rest = &text[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return text.to_owned();
    };
    let userinfo = &rest[..at];
    let user = match userinfo.find(':') {
        Some(colon) => &userinfo[..colon],
        None => return text.to_owned(), // "user@" carries no password
    };
    format!("{}{user}:***{}", &text[..scheme_end + 3], &rest[at..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact("redis://:s3cret@h:1/2"), "redis://:***@h:1/2");
        assert_eq!(redact("redis://u:s3cret@h"), "redis://u:***@h");
        assert_eq!(redact("redis://u@h"), "redis://u@h");
        assert_eq!(redact("redis://h:6379"), "redis://h:6379");
        assert_eq!(redact("garbage:pw@x"), "garbage:pw@x");
    }

    #[test]
    fn accepts_documented_forms() {
        for ok in [
            "redis://127.0.0.1",
            "redis://127.0.0.1:6380/3",
            "redis://:pw@localhost:6379/0",
            "redis://user:pw@localhost",
            "rediss://redis.internal:6380/1",
            "unix:///run/redis.sock",
        ] {
            assert!(Dsn::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_malformed_and_never_echoes_password() {
        for bad in [
            "",
            "127.0.0.1:6379",
            "http://h",
            "redis://",
            "redis://:pw@h/notanumber",
            "unix://",
            "redis://h:99999",
        ] {
            let err = Dsn::parse(bad).expect_err(bad);
            assert!(!err.to_string().contains("pw@"), "{err}");
        }
        let err = Dsn::parse("redis://:topsecret@h/x").expect_err("bad db");
        assert!(!err.to_string().contains("topsecret"));
    }
}
