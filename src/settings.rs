//! What a `RedisMutex` or `LockManager` is configured with: the php.ini
//! entries, overridden by the constructor's `$dsn` and `$options`.

use std::sync::Arc;
use std::time::Duration;

use ext_php_rs::exception::PhpException;
use ext_php_rs::types::{ZendCallable, ZendHashTable, Zval};
use redis_lock_core::session::Watchdog;
use redis_lock_core::{ClientOptions, Deployment, Locks, Semaphores};

use crate::args::{self, Param};
use crate::exceptions::{type_error, value_error};
use crate::ini;
use crate::report::Reporter;

/// A resolved configuration.
pub struct Settings {
    /// Lock operations on the configured deployment.
    pub client: Arc<dyn Locks>,
    /// TTL used when a method's `$ttl` is null.
    pub ttl: Duration,
    /// `on_unavailable = open`: acquire succeeds without a lock when Redis is down.
    pub fail_open: bool,
    /// Which holds the watchdog renews, for at most `watchdog_max`.
    pub watchdog: Watchdog,
    /// Semaphores on the same deployment; None for Redlock, which has none.
    pub semaphores: Option<Arc<Semaphores>>,
    /// Where outcomes that are not exceptions are told (`logger`).
    pub reporter: Reporter,
}

/// Where locks live, as given: one DSN string, or a list for Redlock.
enum DsnArg {
    Text(Vec<u8>),
    List(Vec<Vec<u8>>),
}

struct Raw {
    dsn: DsnArg,
    prefix: Vec<u8>,
    ttl: Duration,
    connect_timeout: Duration,
    timeout: Duration,
    fail_open: bool,
    fencing: bool,
    replicas: u32,
    watchdog: Renewed,
    watchdog_max: Duration,
}

/// The `watchdog` setting: `auto`, on or off.
#[derive(Clone, Copy)]
enum Renewed {
    /// Holds taken without a TTL of their own (the default).
    TtlLess,
    Every,
    None,
}

impl Settings {
    /// Resolves the settings of a constructor of class `func` (`Class::__construct`).
    pub fn resolve(
        func: &'static str,
        dsn: Option<&Zval>,
        options: Option<&ZendHashTable>,
    ) -> Result<Settings, PhpException> {
        let dsn_param = Param::new(func, 1, "dsn");
        let mut raw = Raw::from_ini(func)?;
        let options_param = Param::new(func, 2, "options");
        let mut dsn_from_options = None;
        let mut logger = None;
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
                        dsn_from_options = Some(dsn_arg(value).map_err(|e| match e {
                            DsnArgError::Type => typed("array|string"),
                            DsnArgError::NotList => at("must be a string or a list of DSN strings"),
                            DsnArgError::Entry(i) => at(&format!(
                                "must be a list of DSN strings, {} given at index {i}",
                                entry_type(value, i)
                            )),
                        })?);
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
                        raw.watchdog = if let Some(s) = value.zend_str() {
                            (s.as_bytes() == b"auto")
                                .then_some(Renewed::TtlLess)
                                .ok_or_else(|| at("must be true, false or \"auto\""))?
                        } else {
                            match value.bool().filter(|_| value.is_bool()) {
                                Some(true) => Renewed::Every,
                                Some(false) => Renewed::None,
                                None => return Err(typed("string|bool")),
                            }
                        };
                    }
                    "watchdog_max" => {
                        let secs = args::number(value, options_param, "int|float")
                            .map_err(|_| typed("int|float"))?;
                        raw.watchdog_max = args::seconds_in_range(secs, true).map_err(at)?;
                    }
                    "logger" => {
                        if !value.is_null() {
                            if !has_warning_method(value) {
                                return Err(typed(
                                    "Psr\\Log\\LoggerInterface (an object with a warning() method)",
                                ));
                            }
                            logger = Some(value.shallow_clone());
                        }
                    }
                    "replicas" => {
                        let n = value.long().ok_or_else(|| typed("int"))?;
                        raw.replicas = replica_count(n).ok_or_else(|| at(REPLICAS_RANGE))?;
                    }
                    _ => {
                        return Err(options_param.invalid(&format!(
                            "has unknown key \"{key}\" (known: {})",
                            ini::names()
                                .chain(["logger"])
                                .collect::<Vec<_>>()
                                .join(", ")
                        )))
                    }
                }
            }
        }
        match dsn.filter(|zv| !zv.is_null()) {
            Some(zv) => {
                raw.dsn = dsn_arg(zv).map_err(|e| match e {
                    DsnArgError::Type => dsn_param.wrong_type("array|string|null", zv),
                    DsnArgError::NotList => {
                        dsn_param.invalid("must be a string or a list of DSN strings")
                    }
                    DsnArgError::Entry(i) => type_error(format!(
                        "{func}(): Argument #1 ($dsn) must be a list of DSN strings, {} given at index {i}",
                        entry_type(zv, i)
                    )),
                })?;
            }
            None => {
                if let Some(dsn) = dsn_from_options {
                    raw.dsn = dsn;
                }
            }
        }
        let utf8 = |bytes: Vec<u8>| {
            String::from_utf8(bytes).map_err(|_| dsn_param.invalid("must be valid UTF-8"))
        };
        let invalid_dsn = |e: redis_lock_core::Error| {
            value_error(format!("{func}(): Argument #1 ($dsn) is invalid: {e}"))
        };
        let deployment = match raw.dsn {
            DsnArg::Text(text) => Deployment::parse(&utf8(text)?).map_err(invalid_dsn)?,
            DsnArg::List(list) => {
                let texts = list.into_iter().map(utf8).collect::<Result<Vec<_>, _>>()?;
                Deployment::parse_list(&texts).map_err(invalid_dsn)?
            }
        };
        let unsupported = |option: &str, with: &str, why: &str| {
            value_error(format!(
                "{func}(): option \"{option}\" is not supported with {with}: {why}"
            ))
        };
        match &deployment {
            // WAIT names no key: a cluster client would ask every master,
            // not the one that holds the lock.
            Deployment::One(dsn) if raw.replicas > 0 && dsn.cluster().is_some() => {
                return Err(unsupported(
                    "replicas",
                    "a redis-cluster:// DSN",
                    "WAIT cannot be sent to the lock's own master",
                ))
            }
            Deployment::Redlock(_) if raw.fencing => {
                return Err(unsupported(
                    "fencing",
                    "Redlock",
                    "no counter is monotonic across independent masters",
                ))
            }
            Deployment::Redlock(_) if raw.replicas > 0 => {
                return Err(unsupported(
                    "replicas",
                    "Redlock",
                    "a majority of independent masters is the redundancy",
                ))
            }
            _ => {}
        }
        let options = ClientOptions {
            prefix: raw.prefix,
            connect_timeout: raw.connect_timeout,
            timeout: raw.timeout,
            fencing: raw.fencing,
            replicas: raw.replicas,
        };
        let semaphores =
            Semaphores::for_deployment(deployment.clone(), options.clone()).map(Arc::new);
        let client = redis_lock_core::locks::open(deployment, options);
        Ok(Settings {
            client,
            ttl: raw.ttl,
            fail_open: raw.fail_open,
            watchdog: match raw.watchdog {
                Renewed::TtlLess => Watchdog::TtlLess(raw.watchdog_max),
                Renewed::Every => Watchdog::Every(raw.watchdog_max),
                Renewed::None => Watchdog::Off,
            },
            semaphores,
            reporter: Reporter::new(logger),
        })
    }
}

/// Whether `value` is an object whose class has a `warning()` method (what
/// the reporter calls: PSR-3's `LoggerInterface::warning`).
fn has_warning_method(value: &Zval) -> bool {
    let Some(object) = value.object() else {
        return false;
    };
    let Ok(method_exists) = ZendCallable::try_from_name("method_exists") else {
        return false;
    };
    method_exists
        .try_call(vec![
            &object.get_class_name().unwrap_or_default(),
            &"warning",
        ])
        .ok()
        .and_then(|found| found.bool())
        .unwrap_or(false)
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
            dsn: DsnArg::Text(ini::get("dsn")),
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
            watchdog: match &ini::get("watchdog")[..] {
                b"auto" => Renewed::TtlLess,
                flag => match parse_flag(flag) {
                    Some(true) => Renewed::Every,
                    Some(false) => Renewed::None,
                    None => return Err(bad("watchdog", "must be auto, on or off")),
                },
            },
            watchdog_max: seconds("watchdog_max")?,
        })
    }
}

/// Why a `$dsn` zval is not a DSN string or a list of them.
enum DsnArgError {
    /// Neither a string nor an array.
    Type,
    /// An array with keys other than 0, 1, 2, …
    NotList,
    /// The entry at this index is not a string.
    Entry(usize),
}

/// Reads a `$dsn` argument (or `dsn` option): a string, or a list of strings.
fn dsn_arg(zv: &Zval) -> Result<DsnArg, DsnArgError> {
    if let Some(s) = zv.zend_str() {
        return Ok(DsnArg::Text(s.as_bytes().to_vec()));
    }
    let list = zv.array().ok_or(DsnArgError::Type)?;
    let mut texts = Vec::with_capacity(list.len());
    for (i, (key, value)) in list.iter().enumerate() {
        if key.to_string() != i.to_string() {
            return Err(DsnArgError::NotList);
        }
        let text = value.zend_str().ok_or(DsnArgError::Entry(i))?;
        texts.push(text.as_bytes().to_vec());
    }
    Ok(DsnArg::List(texts))
}

/// PHP's type name of entry `i` of the array in `zv`.
fn entry_type(zv: &Zval, i: usize) -> String {
    zv.array()
        .and_then(|list| list.iter().nth(i))
        .map_or_else(|| "nothing".to_owned(), |(_, v)| args::type_name(v))
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
