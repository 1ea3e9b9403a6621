//! Connection strings: `redis://[[user]:password@]host[:port][/db]`,
//! `rediss://…`, `unix:///path/to/redis.sock` and
//! `redis-sentinel://[[user]:password@]host:port[,host:port…]/<service>[/db]`.

use redis::{ConnectionInfo, IntoConnectionInfo};

use crate::error::{Error, Result};

/// A validated DSN, with the text to show in messages (password masked).
#[derive(Clone, Debug)]
pub struct Dsn {
    text: String,
    redacted: String,
    info: ConnectionInfo,
    sentinel: Option<SentinelDsn>,
}

/// The Sentinel part of a `redis-sentinel://` DSN: where to ask which server
/// is the master of `service`.
///
/// Sentinels are contacted without credentials: the DSN's user and password
/// are the master's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentinelDsn {
    /// The Sentinels, in the order given: host (an IPv6 address without its
    /// brackets) and port.
    pub sentinels: Vec<(String, u16)>,
    /// The master's name in the Sentinels' configuration.
    pub service: String,
}

impl Dsn {
    /// Parses and validates `text`. Nothing is connected here.
    pub fn parse(text: &str) -> Result<Self> {
        let redacted = redact(text);
        let invalid = |reason: &str| Error::InvalidDsn {
            dsn: redacted.clone(),
            reason: reason.to_owned(),
        };
        if let Some(rest) = text.strip_prefix("redis-sentinel://") {
            let (sentinel, info) = parse_sentinel(rest).map_err(|reason| invalid(&reason))?;
            return Ok(Dsn {
                text: text.to_owned(),
                redacted,
                info,
                sentinel: Some(sentinel),
            });
        }
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
                    "unsupported scheme \"{other}\" \
                     (use redis://, rediss://, unix:// or redis-sentinel://)"
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
            sentinel: None,
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

    /// What redis-rs needs to connect. For a `redis-sentinel://` DSN, the
    /// master's credentials and database, with the first Sentinel's address
    /// as a placeholder: the pool connects to the address the Sentinels name.
    pub fn connection_info(&self) -> &ConnectionInfo {
        &self.info
    }

    /// The Sentinels and service name of a `redis-sentinel://` DSN.
    pub fn sentinel(&self) -> Option<&SentinelDsn> {
        self.sentinel.as_ref()
    }
}

/// Parses what follows `redis-sentinel://`. The URL crate cannot be used:
/// a comma-separated host list is no URL authority.
fn parse_sentinel(rest: &str) -> std::result::Result<(SentinelDsn, ConnectionInfo), String> {
    if rest.contains(['?', '#']) {
        return Err("a sentinel DSN takes no query string or fragment".to_owned());
    }
    // The userinfo ends at the last '@' (a password may contain '/' or '@'
    // only percent-encoded, but be lenient with '@' as redis:// is).
    let (userinfo, rest) = match rest.rfind('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    let (hosts, path) = rest.split_once('/').unwrap_or((rest, ""));
    if hosts.is_empty() {
        return Err("at least one sentinel host:port is required".to_owned());
    }
    let mut sentinels = Vec::new();
    for entry in hosts.split(',') {
        let Some((host, port)) = entry.rsplit_once(':') else {
            return Err(format!("\"{entry}\" is not host:port"));
        };
        let host = match host.strip_prefix('[') {
            Some(v6) => v6
                .strip_suffix(']')
                .ok_or_else(|| format!("\"{entry}\" is not host:port"))?,
            None => host,
        };
        if host.is_empty() || host.contains(['[', ']', '/', '@']) {
            return Err(format!("\"{entry}\" has no valid host"));
        }
        match port.parse::<u16>() {
            Ok(port) if port != 0 => sentinels.push((host.to_owned(), port)),
            _ => return Err(format!("\"{entry}\" has no valid port (1-65535)")),
        }
    }
    let mut segments = path.split('/');
    let service = segments.next().unwrap_or_default();
    if service.is_empty() {
        return Err("the master's service name is required, as in /mymaster".to_owned());
    }
    let db = segments.next().unwrap_or_default();
    if segments.next().is_some() || (!db.is_empty() && db.parse::<u16>().is_err()) {
        return Err(
            "after the service name only a database number may follow, as in /mymaster/0"
                .to_owned(),
        );
    }
    // The master's credentials and db, decoded as redis-rs decodes those of
    // a redis:// URL; the address is a placeholder.
    let Some((first_host, first_port)) = sentinels.first() else {
        return Err("at least one sentinel host:port is required".to_owned());
    };
    let placeholder = if first_host.contains(':') {
        format!("[{first_host}]:{first_port}")
    } else {
        format!("{first_host}:{first_port}")
    };
    let as_redis = match userinfo {
        Some(userinfo) => format!("redis://{userinfo}@{placeholder}/{db}"),
        None => format!("redis://{placeholder}/{db}"),
    };
    let info = as_redis
        .as_str()
        .into_connection_info()
        .map_err(|_| "the user or password is malformed (percent-encode it)".to_owned())?;
    Ok((
        SentinelDsn {
            sentinels,
            service: service.to_owned(),
        },
        info,
    ))
}

/// Masks the password of a DSN, also of one that does not parse, so that no
/// error message ever carries it.
///
/// The userinfo is taken to end at the last '@', not at the first '/': a
/// password with an unencoded '/' is masked too (at worst a path with an '@'
/// is masked with it).
pub fn redact(text: &str) -> String {
    let Some(scheme_end) = text.find("://") else {
        return text.to_owned();
    };
    let rest = &text[scheme_end + 3..];
    let Some(at) = rest.rfind('@') else {
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
        assert_eq!(
            redact("redis-sentinel://u:s3cret@h1:26379,h2:26380/mymaster/1"),
            "redis-sentinel://u:***@h1:26379,h2:26380/mymaster/1"
        );
        assert_eq!(
            redact("redis-sentinel://:s3/cr@et@h1:1,h2:2/m"),
            "redis-sentinel://:***@h1:1,h2:2/m"
        );
        assert_eq!(
            redact("redis-sentinel://h1:1,h2:2/m"),
            "redis-sentinel://h1:1,h2:2/m"
        );
    }

    #[test]
    fn parses_sentinel_dsns() {
        let dsn =
            Dsn::parse("redis-sentinel://u:p%40ss@10.0.0.1:26379,[::1]:26380,s3:5000/mymaster/3")
                .unwrap();
        let sentinel = dsn.sentinel().unwrap();
        assert_eq!(
            sentinel.sentinels,
            vec![
                ("10.0.0.1".to_owned(), 26379),
                ("::1".to_owned(), 26380),
                ("s3".to_owned(), 5000)
            ]
        );
        assert_eq!(sentinel.service, "mymaster");
        let settings = dsn.connection_info().redis_settings();
        assert_eq!(settings.username(), Some("u"));
        assert_eq!(settings.password(), Some("p@ss"));
        assert_eq!(settings.db(), 3);
        assert_eq!(
            dsn.redacted(),
            "redis-sentinel://u:***@10.0.0.1:26379,[::1]:26380,s3:5000/mymaster/3"
        );

        let dsn = Dsn::parse("redis-sentinel://h:26379/svc").unwrap();
        assert_eq!(dsn.sentinel().unwrap().service, "svc");
        let settings = dsn.connection_info().redis_settings();
        assert_eq!((settings.password(), settings.db()), (None, 0));
        assert!(Dsn::parse("redis://h").unwrap().sentinel().is_none());
        for ok in [
            "redis-sentinel://:pw@h:26379/svc",
            "redis-sentinel://h:26379/svc/",
            "redis-sentinel://h:26379/svc/0",
            "redis-sentinel://a:1,b:2,c:3/svc/15",
        ] {
            assert!(Dsn::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_malformed_sentinel_dsns() {
        for bad in [
            "redis-sentinel://",
            "redis-sentinel:///svc",
            "redis-sentinel://:pw@/svc",
            "redis-sentinel://:pw@,h:1/svc",
            "redis-sentinel://:pw@h/svc",
            "redis-sentinel://:pw@h:/svc",
            "redis-sentinel://:pw@h:0/svc",
            "redis-sentinel://:pw@h:99999/svc",
            "redis-sentinel://:pw@h:1,h2:x/svc",
            "redis-sentinel://:pw@:1/svc",
            "redis-sentinel://:pw@[::1/svc",
            "redis-sentinel://:pw@h:1",
            "redis-sentinel://:pw@h:1/",
            "redis-sentinel://:pw@h:1//0",
            "redis-sentinel://:pw@h:1/svc/x",
            "redis-sentinel://:pw@h:1/svc/0/extra",
            "redis-sentinel://:pw@h:1/svc?x=1",
        ] {
            match Dsn::parse(bad) {
                Err(err @ Error::InvalidDsn { .. }) => {
                    let text = err.to_string();
                    assert!(!text.contains("pw@"), "{text}");
                    assert_eq!(text.contains(":***@"), bad.contains("pw@"), "{text}");
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
        assert!(Dsn::parse("redis-sentinel://").is_err());
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
