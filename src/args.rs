//! Checks PHP arguments the way PHP's own functions do: a wrong type is a
//! `\TypeError`, a value out of range a `\ValueError`, both naming the
//! argument. `int|float` parameters arrive as zvals because ext-php-rs
//! cannot declare union types in arginfo.

use std::time::Duration;

use ext_php_rs::exception::PhpException;
use ext_php_rs::types::Zval;

use crate::exceptions::{type_error, value_error};

/// The longest TTL (30 days), also the longest wait.
pub const MAX_SECONDS: f64 = 30.0 * 24.0 * 3600.0;
/// The longest lock name, in bytes.
pub const MAX_NAME_BYTES: usize = 1024;

/// Names one parameter of one method, for messages.
#[derive(Clone, Copy, Debug)]
pub struct Param {
    /// `Class::method`.
    pub func: &'static str,
    /// 1-based position.
    pub pos: u8,
    /// Name without the `$`.
    pub name: &'static str,
}

impl Param {
    /// A parameter of `func`.
    pub const fn new(func: &'static str, pos: u8, name: &'static str) -> Self {
        Param { func, pos, name }
    }

    fn prefix(&self) -> String {
        format!("{}(): Argument #{} (${})", self.func, self.pos, self.name)
    }

    /// `\TypeError`: "must be of type T, U given".
    pub fn wrong_type(&self, expected: &str, given: &Zval) -> PhpException {
        type_error(format!(
            "{} must be of type {expected}, {} given",
            self.prefix(),
            type_name(given)
        ))
    }

    /// `\ValueError`: "must …".
    pub fn invalid(&self, must: &str) -> PhpException {
        value_error(format!("{} {must}", self.prefix()))
    }
}

/// PHP's name for the type of `zv`, as in its own error messages.
pub fn type_name(zv: &Zval) -> String {
    if zv.is_null() {
        "null".into()
    } else if zv.is_bool() {
        "bool".into()
    } else if zv.is_long() {
        "int".into()
    } else if zv.is_double() {
        "float".into()
    } else if zv.is_string() {
        "string".into()
    } else if zv.is_array() {
        "array".into()
    } else if let Some(obj) = zv.object() {
        obj.get_class_name().unwrap_or_else(|_| "object".into())
    } else {
        "mixed".into()
    }
}

/// An `int|float` (or numeric string, as PHP's coercive mode allows) in seconds.
pub fn number(zv: &Zval, param: Param, expected: &str) -> Result<f64, PhpException> {
    if let Some(n) = zv.long() {
        #[allow(clippy::cast_precision_loss)]
        return Ok(n as f64);
    }
    if let Some(x) = zv.double() {
        return Ok(x);
    }
    if let Some(s) = zv.zend_str() {
        if let Some(x) = std::str::from_utf8(s.as_bytes())
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
        {
            return Ok(x);
        }
    }
    Err(param.wrong_type(expected, zv))
}

/// Checks a number of seconds; the error is the "must …" part of a message.
pub fn seconds_in_range(secs: f64, min_exclusive: bool) -> Result<Duration, &'static str> {
    if secs.is_nan() {
        return Err("must be a number, NAN given");
    }
    if min_exclusive && secs <= 0.0 {
        return Err("must be greater than 0");
    }
    if secs < 0.0 {
        return Err("must be greater than or equal to 0");
    }
    if secs > MAX_SECONDS {
        return Err("must be at most 2592000 (30 days)");
    }
    let d = Duration::try_from_secs_f64(secs).map_err(|_| "must be a finite number of seconds")?;
    if min_exclusive && d < Duration::from_millis(1) {
        return Err("must be at least 0.001 (one millisecond)");
    }
    Ok(d)
}

fn in_range(secs: f64, param: Param, min_exclusive: bool) -> Result<Duration, PhpException> {
    seconds_in_range(secs, min_exclusive).map_err(|must| param.invalid(must))
}

/// A TTL: `int|float`, > 0 and at most 30 days, at least one millisecond
/// (Redis takes milliseconds). `None` or null gives `default`.
pub fn ttl(zv: Option<&Zval>, param: Param, default: Duration) -> Result<Duration, PhpException> {
    match zv {
        None => Ok(default),
        Some(zv) if zv.is_null() => Ok(default),
        Some(zv) => in_range(number(zv, param, "int|float|null")?, param, true),
    }
}

/// A TTL that may be left out: `None` (or null) gives None, the caller's
/// default TTL, with what that means for the watchdog (`Watchdog::TtlLess`).
pub fn given_ttl(zv: Option<&Zval>, param: Param) -> Result<Option<Duration>, PhpException> {
    match zv {
        None => Ok(None),
        Some(zv) if zv.is_null() => Ok(None),
        Some(zv) => in_range(number(zv, param, "int|float|null")?, param, true).map(Some),
    }
}

/// A wait: `int|float` >= 0, at most 30 days. `None` gives `default`.
pub fn wait(zv: Option<&Zval>, param: Param, default: Duration) -> Result<Duration, PhpException> {
    match zv {
        None => Ok(default),
        Some(zv) if zv.is_null() => Err(param.wrong_type("int|float", zv)),
        Some(zv) => in_range(number(zv, param, "int|float")?, param, false),
    }
}

/// A lock name: a non-empty binary-safe string of at most 1024 bytes.
/// Integers are taken as their decimal text, as PHP's coercive mode does.
pub fn name(zv: &Zval, param: Param) -> Result<Vec<u8>, PhpException> {
    let bytes = if let Some(s) = zv.zend_str() {
        s.as_bytes().to_vec()
    } else if let Some(n) = zv.long() {
        n.to_string().into_bytes()
    } else {
        return Err(param.wrong_type("string", zv));
    };
    if bytes.is_empty() {
        return Err(param.invalid("must not be empty"));
    }
    if bytes.len() > MAX_NAME_BYTES {
        return Err(param.invalid("must be at most 1024 bytes long"));
    }
    Ok(bytes)
}
