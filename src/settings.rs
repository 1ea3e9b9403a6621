//! What a `RedisMutex` or `LockManager` is configured with: the php.ini
//! entries, overridden by the constructor's `$dsn` and `$options`.

use std::time::Duration;

use ext_php_rs::exception::PhpException;
use ext_php_rs::types::ZendHashTable;
use redis_lock_core::{ClientOptions, Dsn, LockClient};

use crate::args::{self, Param};
use crate::exceptions::{type_error, value_error};
use crate::ini;

/// A resolved configuration.
pub struct Settings {
    /// Lock operations on the configured server.
    pub client: LockClient,
    /// TTL used when a method's `$ttl` is null.
    pub ttl: Duration,
    /// `on_unavailable = open`: acquire succeeds without a lock when Redis is down.
    pub fail_open: bool,
    /// `watchdog` on: for how long after its acquire a hold is renewed
    /// (`watchdog_max`). None: `watchdog` off.
    pub watchdog_max: Option<Duration>,
}

struct Raw {
    dsn: Vec<u8>,
    prefix: Vec<u8>,
    ttl: Duration,
    connect_timeout: Duration,
    timeout: Duration,
    fail_open: bool,
    fencing: bool,
    replicas: u32,
    watchdog: bool,
    watchdog_max: Duration,
}

impl Settings {
    /// Resolves the settings of a constructor of class `func` (`Class::__construct`).
    pub fn resolve(
        func: &'static str,
        dsn: Option<String>,
        options: Option<&ZendHashTable>,
    ) -> Result<Settings, PhpException> {
        let mut raw = Raw::from_ini(func)?;
        let options_param = Param::new(func, 2, "options");
        let mut dsn_from_options = None;
        if let Some(options) = options {
            for (key, value) in options {
                let key = key.to_string();
                let at = |must: &str| {
                    value_error(format!(
                        "{}(): Argument #2 ($options) key \"{key}\" {must}",
                        func
                    ))
                };
                let typed = |expected: &str| {
                    type_error(format!(
                        "{}(): Argument #2 ($options) key \"{key}\" must be of type {expected}, {} given",
                        func,
                        args::type_name(value)
                    ))
                };
                match key.as_str() {
                    "dsn" => {
                        let s = value.zend_str().ok_or_else(|| typed("string"))?;
                        dsn_from_options = Some(s.as_bytes().to_vec());
                    }
                    "prefix" => {
                        let s = value.zend_str().ok_or_else(|| typed("string"))?;
                        if s.as_bytes().len() > args::MAX_NAME_BYTES {
                            return Err(at("must be at most 1024 bytes long"));
                        }
                        raw.prefix = s.as_bytes().to_vec();
                    }
                    "ttl" | "connect_timeout" | "timeout" => {
                        let secs = args::number(value, options_param, "int|float")
                            .map_err(|_| typed("int|float"))?;
                        let d = args::seconds_in_range(secs, true).map_err(at)?;
                        match key.as_str() {
                            "ttl" => raw.ttl = d,
                            "connect_timeout" => raw.connect_timeout = d,
                            _ => raw.timeout = d,
                        }
                    }
                    "on_unavailable" => {
                        let s = value.zend_str().ok_or_else(|| typed("string"))?;
                        raw.fail_open = parse_policy(s.as_bytes())
                            .ok_or_else(|| at("must be \"closed\" or \"open\""))?;
                    }
                    "fencing" => {
                        raw.fencing = value
                            .bool()
                            .filter(|_| value.is_bool())
                            .ok_or_else(|| typed("bool"))?;
                    }
                    "watchdog" => {
                        raw.watchdog = value
                            .bool()
                            .filter(|_| value.is_bool())
                            .ok_or_else(|| typed("bool"))?;
                    }
                    "watchdog_max" => {
                        let secs = args::number(value, options_param, "int|float")
                            .map_err(|_| typed("int|float"))?;
                        raw.watchdog_max = args::seconds_in_range(secs, true).map_err(at)?;
                    }
                    "replicas" => {
                        let n = value.long().ok_or_else(|| typed("int"))?;
                        raw.replicas = replica_count(n).ok_or_else(|| at(REPLICAS_RANGE))?;
                    }
                    _ => {
                        return Err(options_param.invalid(&format!(
                            "has unknown key \"{key}\" (known: {})",
                            ini::names().collect::<Vec<_>>().join(", ")
                        )))
                    }
                }
            }
        }
        if let Some(dsn) = dsn {
            raw.dsn = dsn.into_bytes();
        } else if let Some(dsn) = dsn_from_options {
            raw.dsn = dsn;
        }
        let dsn_text = String::from_utf8(raw.dsn)
            .map_err(|_| Param::new(func, 1, "dsn").invalid("must be valid UTF-8"))?;
        let dsn = Dsn::parse(&dsn_text)
            .map_err(|e| value_error(format!("{func}(): Argument #1 ($dsn) is invalid: {e}")))?;
        if raw.replicas > 0 && dsn.cluster().is_some() {
            // WAIT names no key: a cluster client would ask every master,
            // not the one that holds the lock.
            return Err(value_error(format!(
                "{func}(): option \"replicas\" is not supported with a redis-cluster:// DSN"
            )));
        }
        let client = LockClient::new(
            dsn,
            ClientOptions {
                prefix: raw.prefix,
                connect_timeout: raw.connect_timeout,
                timeout: raw.timeout,
                fencing: raw.fencing,
                replicas: raw.replicas,
            },
        );
        Ok(Settings {
            client,
            ttl: raw.ttl,
            fail_open: raw.fail_open,
            watchdog_max: raw.watchdog.then_some(raw.watchdog_max),
        })
    }
}

impl Raw {
    fn from_ini(func: &'static str) -> Result<Raw, PhpException> {
        let bad = |name: &str, must: &str| {
            value_error(format!(
                "{func}(): php.ini setting redis_lock.{name} {must}"
            ))
        };
        let number = |name: &str| -> Option<f64> {
            std::str::from_utf8(&ini::get(name))
                .ok()?
                .trim()
                .parse::<f64>()
                .ok()
        };
        let seconds = |name: &str| -> Result<Duration, PhpException> {
            let secs = number(name).ok_or_else(|| bad(name, "must be a number of seconds"))?;
            args::seconds_in_range(secs, true).map_err(|must| bad(name, must))
        };
        Ok(Raw {
            dsn: ini::get("dsn"),
            prefix: ini::get("prefix"),
            ttl: seconds("ttl")?,
            connect_timeout: seconds("connect_timeout")?,
            timeout: seconds("timeout")?,
            fail_open: parse_policy(&ini::get("on_unavailable"))
                .ok_or_else(|| bad("on_unavailable", "must be \"closed\" or \"open\""))?,
            fencing: parse_flag(&ini::get("fencing"))
                .ok_or_else(|| bad("fencing", "must be on or off"))?,
            replicas: number("replicas")
                .filter(|n| n.fract() == 0.0)
                .and_then(|n| replica_count(n as i64))
                .ok_or_else(|| bad("replicas", REPLICAS_RANGE))?,
            watchdog: parse_flag(&ini::get("watchdog"))
                .ok_or_else(|| bad("watchdog", "must be on or off"))?,
            watchdog_max: seconds("watchdog_max")?,
        })
    }
}

const REPLICAS_RANGE: &str = "must be an integer from 0 to 16";

/// The `replicas` setting: how many replicas must confirm each acquire. More
/// than 16 would be a typo, not a deployment.
fn replica_count(n: i64) -> Option<u32> {
    u32::try_from(n).ok().filter(|n| *n <= 16)
}

/// `closed` → false, `open` → true.
fn parse_policy(v: &[u8]) -> Option<bool> {
    match v.to_ascii_lowercase().as_slice() {
        b"closed" => Some(false),
        b"open" => Some(true),
        _ => None,
    }
}

/// php.ini booleans as PHP reads them.
fn parse_flag(v: &[u8]) -> Option<bool> {
    match v.to_ascii_lowercase().as_slice() {
        b"" | b"0" | b"off" | b"false" | b"no" | b"none" => Some(false),
        b"1" | b"on" | b"true" | b"yes" => Some(true),
        _ => None,
    }
}
