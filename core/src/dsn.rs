//! Connection strings: `redis://[[user]:password@]host[:port][/db]`,
//! `rediss://…`, `unix:///path/to/redis.sock`,
//! `redis-sentinel://[[user]:password@]host:port[,host:port…]/<service>[/db]` and
//! `redis-cluster://[[user]:password@]host:port[,host:port…]` (`rediss-cluster://`
//! with TLS); and, for Redlock, `redlock://[[user]:password@]host:port,…` or a
//! list of single-server DSNs ([`Deployment`]).

use redis::{ConnectionInfo, IntoConnectionInfo};

use crate::error::{Error, Result};

/// A validated DSN, with the text to show in messages (password masked).
#[derive(Clone, Debug)]
pub struct Dsn {
    text: String,
    redacted: String,
    info: ConnectionInfo,
    sentinel: Option<SentinelDsn>,
    cluster: Option<ClusterDsn>,
}

/// The seed nodes of a `redis-cluster://` (or `rediss-cluster://`) DSN: any
/// of them is asked for the cluster's slot map; the rest is found from there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterDsn {
    /// The seeds, in the order given: host (an IPv6 address without its
    /// brackets) and port.
    pub seeds: Vec<(String, u16)>,
    /// Whether the nodes are reached over TLS (`rediss-cluster://`).
    pub tls: bool,
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
                cluster: None,
            });
        }
        for (scheme, tls) in [("redis-cluster://", false), ("rediss-cluster://", true)] {
            if let Some(rest) = text.strip_prefix(scheme) {
                let (cluster, info) =
                    parse_cluster(rest, tls).map_err(|reason| invalid(&reason))?;
                return Ok(Dsn {
                    text: text.to_owned(),
                    redacted,
                    info,
                    sentinel: None,
                    cluster: Some(cluster),
                });
            }
        }
        if text.starts_with("redlock://") {
            return Err(invalid(
                "a redlock:// DSN names several masters, not one server (a Redlock list may hold only redis://, rediss:// and unix:// DSNs)",
            ));
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
                     (use redis://, rediss://, unix://, redis-sentinel://, redis-cluster:// or redlock://)"
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
            cluster: None,
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

    /// The seed nodes of a `redis-cluster://` or `rediss-cluster://` DSN.
    pub fn cluster(&self) -> Option<&ClusterDsn> {
        self.cluster.as_ref()
    }
}

/// Where locks live: one deployment that a [`Dsn`] names (one server, a
/// Sentinel master or a cluster), or N independent masters for Redlock.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)] // made once per PHP constructor
pub enum Deployment {
    /// One server, a Sentinel-watched master or a cluster.
    One(Dsn),
    /// Independent masters (at least one), each a single-server DSN.
    Redlock(Vec<Dsn>),
}

impl Deployment {
    /// Parses a DSN string: `redlock://…` gives [`Deployment::Redlock`], any
    /// other form [`Deployment::One`].
    pub fn parse(text: &str) -> Result<Self> {
        match text.strip_prefix("redlock://") {
            Some(rest) => parse_redlock(text, rest).map(Deployment::Redlock),
            None => Dsn::parse(text).map(Deployment::One),
        }
    }

    /// A Redlock over the masters of a list of single-server DSNs, as a PHP
    /// constructor takes it. Empty lists, lists with sentinel, cluster or
    /// redlock DSNs, and repeated servers are refused.
    pub fn parse_list<S: AsRef<str>>(texts: &[S]) -> Result<Self> {
        let shown: Vec<String> = texts.iter().map(|t| redact(t.as_ref())).collect();
        let invalid = |reason: String| Error::InvalidDsn {
            dsn: format!("[{}]", shown.join(", ")),
            reason,
        };
        if texts.is_empty() {
            return Err(invalid("a Redlock list needs at least one DSN".to_owned()));
        }
        let mut masters = Vec::with_capacity(texts.len());
        for (i, text) in texts.iter().enumerate() {
            let text = text.as_ref();
            let dsn = Dsn::parse(text).map_err(|e| invalid(format!("entry {i}: {e}")))?;
            if dsn.sentinel.is_some() || dsn.cluster.is_some() {
                return Err(invalid(format!(
                    "entry {i} (\"{}\"): a Redlock list takes only single-server DSNs (redis://, rediss://, unix://), not a mix of schemes",
                    dsn.redacted()
                )));
            }
            masters.push(dsn);
        }
        check_distinct(&masters).map_err(invalid)?;
        Ok(Deployment::Redlock(masters))
    }

    /// The deployment as shown in messages (passwords masked).
    pub fn redacted(&self) -> String {
        match self {
            Deployment::One(dsn) => dsn.redacted().to_owned(),
            Deployment::Redlock(masters) => format!(
                "redlock[{}]",
                masters
                    .iter()
                    .map(Dsn::redacted)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// Parses what follows `redlock://`: the hosts become `redis://` DSNs that
/// share the credentials and database.
fn parse_redlock(text: &str, rest: &str) -> Result<Vec<Dsn>> {
    let invalid = |reason: String| Error::InvalidDsn {
        dsn: redact(text),
        reason,
    };
    if rest.contains(['?', '#']) {
        return Err(invalid(
            "a redlock DSN takes no query string or fragment".to_owned(),
        ));
    }
    let (userinfo, hosts, db) = split_multi_host(rest);
    let hosts = parse_host_list(hosts, "master").map_err(invalid)?;
    if !db.is_empty() && db.parse::<u16>().is_err() {
        return Err(invalid(
            "after the hosts only a database number may follow, as in /0".to_owned(),
        ));
    }
    let mut masters = Vec::with_capacity(hosts.len());
    for (host, port) in &hosts {
        let address = host_port(host, *port);
        let one = match userinfo {
            Some(userinfo) => format!("redis://{userinfo}@{address}/{db}"),
            None => format!("redis://{address}/{db}"),
        };
        masters.push(Dsn::parse(&one).map_err(|e| invalid(e.to_string()))?);
    }
    check_distinct(&masters).map_err(invalid)?;
    Ok(masters)
}

/// A server named twice would count twice towards the majority.
fn check_distinct(masters: &[Dsn]) -> std::result::Result<(), String> {
    for (i, a) in masters.iter().enumerate() {
        if masters[..i]
            .iter()
            .any(|b| b.info.addr().to_string() == a.info.addr().to_string())
        {
            return Err(format!(
                "\"{}\" is named twice: each master must be a different server",
                a.redacted()
            ));
        }
    }
    Ok(())
}

/// Splits what follows the scheme of a multi-host DSN into its userinfo (up
/// to the last '@'; a password may contain '/' or '@' only percent-encoded,
/// but be lenient with '@' as redis:// is), its hosts and what follows the
/// first '/' after them.
fn split_multi_host(rest: &str) -> (Option<&str>, &str, &str) {
    let (userinfo, rest) = match rest.rfind('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    let (hosts, path) = rest.split_once('/').unwrap_or((rest, ""));
    (userinfo, hosts, path)
}

/// Parses a comma-separated `host:port` list (IPv6 hosts in brackets).
fn parse_host_list(hosts: &str, what: &str) -> std::result::Result<Vec<(String, u16)>, String> {
    if hosts.is_empty() {
        return Err(format!("at least one {what} host:port is required"));
    }
    let mut parsed = Vec::new();
    for entry in hosts.split(',') {
        if entry.contains("://") {
            return Err(format!(
                "\"{entry}\": list hosts as host:port after one scheme, not as URLs"
            ));
        }
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
            Ok(port) if port != 0 => parsed.push((host.to_owned(), port)),
            _ => return Err(format!("\"{entry}\" has no valid port (1-65535)")),
        }
    }
    Ok(parsed)
}

/// `host:port` as it goes into a URL (IPv6 in brackets).
fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The credentials (and db) of a multi-host DSN, decoded as redis-rs decodes
/// those of a redis:// URL, with `host`:`port` as the address.
fn node_info(
    scheme: &str,
    userinfo: Option<&str>,
    host: &str,
    port: u16,
    db: &str,
) -> std::result::Result<ConnectionInfo, String> {
    let address = host_port(host, port);
    let url = match userinfo {
        Some(userinfo) => format!("{scheme}://{userinfo}@{address}/{db}"),
        None => format!("{scheme}://{address}/{db}"),
    };
    url.as_str()
        .into_connection_info()
        .map_err(|_| "the user or password is malformed (percent-encode it)".to_owned())
}

/// Parses what follows `redis-cluster://` or `rediss-cluster://`.
fn parse_cluster(
    rest: &str,
    tls: bool,
) -> std::result::Result<(ClusterDsn, ConnectionInfo), String> {
    if rest.contains(['?', '#']) {
        return Err("a cluster DSN takes no query string or fragment".to_owned());
    }
    let (userinfo, hosts, path) = split_multi_host(rest);
    let seeds = parse_host_list(hosts, "cluster node")?;
    if !path.is_empty() && path != "0" {
        return Err("a cluster has only database 0: nothing may follow the hosts".to_owned());
    }
    let Some((first_host, first_port)) = seeds.first() else {
        return Err("at least one cluster node host:port is required".to_owned());
    };
    let scheme = if tls { "rediss" } else { "redis" };
    let info = node_info(scheme, userinfo, first_host, *first_port, "")?;
    Ok((ClusterDsn { seeds, tls }, info))
}

/// Parses what follows `redis-sentinel://`. The URL crate cannot be used:
/// a comma-separated host list is no URL authority.
fn parse_sentinel(rest: &str) -> std::result::Result<(SentinelDsn, ConnectionInfo), String> {
    if rest.contains(['?', '#']) {
        return Err("a sentinel DSN takes no query string or fragment".to_owned());
    }
    let (userinfo, hosts, path) = split_multi_host(rest);
    let sentinels = parse_host_list(hosts, "sentinel")?;
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
    let info = node_info("redis", userinfo, first_host, *first_port, db)?;
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
    fn parses_cluster_dsns() {
        let dsn = Dsn::parse("redis-cluster://u:p%40ss@10.0.0.1:7000,[::1]:7001,n3:7002").unwrap();
        let cluster = dsn.cluster().unwrap();
        assert_eq!(
            cluster.seeds,
            vec![
                ("10.0.0.1".to_owned(), 7000),
                ("::1".to_owned(), 7001),
                ("n3".to_owned(), 7002)
            ]
        );
        assert!(!cluster.tls);
        assert!(dsn.sentinel().is_none());
        let settings = dsn.connection_info().redis_settings();
        assert_eq!(settings.username(), Some("u"));
        assert_eq!(settings.password(), Some("p@ss"));
        assert_eq!(
            dsn.redacted(),
            "redis-cluster://u:***@10.0.0.1:7000,[::1]:7001,n3:7002"
        );
        let tls = Dsn::parse("rediss-cluster://:pw@h:7000").unwrap();
        assert!(tls.cluster().unwrap().tls);
        assert_eq!(tls.redacted(), "rediss-cluster://:***@h:7000");
        for ok in [
            "redis-cluster://h:7000",
            "redis-cluster://h:7000/",
            "redis-cluster://h:7000/0",
            "redis-cluster://a:1,b:2,c:3",
        ] {
            assert!(Dsn::parse(ok).unwrap().cluster().is_some(), "{ok}");
        }
        assert!(Dsn::parse("redis://h").unwrap().cluster().is_none());
    }

    #[test]
    fn rejects_malformed_cluster_dsns() {
        for bad in [
            "redis-cluster://",
            "redis-cluster://:pw@",
            "redis-cluster://:pw@/",
            "redis-cluster://:pw@,h:1",
            "redis-cluster://:pw@h",
            "redis-cluster://:pw@h:",
            "redis-cluster://:pw@h:0",
            "redis-cluster://:pw@h:99999",
            "redis-cluster://:pw@h:x",
            "redis-cluster://:pw@h:1,h2:x",
            "redis-cluster://:pw@:1",
            "redis-cluster://:pw@[::1:1",
            "redis-cluster://:pw@h:1/3",
            "redis-cluster://:pw@h:1?x=1",
            "redis-cluster://:pw@h:1,redis://h2:2",
            "redis-cluster://:pw@h:1,rediss-cluster://h2:2",
            "rediss-cluster://:pw@h:1,redis-sentinel://h2:2",
            "rediss-cluster://:pw@",
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
