//! Owner tokens.
//!
//! A token this extension makes is 128 random bits (22 characters of
//! base64url), then who made it: `<random>:<pid>@<host>`. The random part
//! alone makes it unique; the rest is for an operator asking who holds a
//! lock (`LockManager::inspect()`, [`holder_of`]). Owners given by the
//! caller (Laravel's, Symfony's, `restoreLock()`) are used as they are.
//!
//! A token is at most [`MAX_LEN`] bytes: Redis keeps a string of up to 44
//! bytes inside its object (EMBSTR), one allocation; at 45 it takes two, on
//! every SET, compare and DEL of the lock (measured: 45-byte tokens cost
//! redis-server 7.0 16 % more time per uncontended cycle than phpredis
//! userland's 32-byte ones, 36-byte UUID tokens 1 %). The host is its short
//! name (up to the first dot), cut to what fits: 13 bytes or more, for any
//! pid of up to 7 digits.

use base64::Engine;
use once_cell::sync::Lazy;

/// The longest token made: what Redis stores inline.
pub const MAX_LEN: usize = 44;
/// The random part's length: 16 bytes in base64url.
const RANDOM_LEN: usize = 22;

/// A new owner token: 128 random bits, this process's id and the host's
/// short name, in at most [`MAX_LEN`] bytes.
///
/// Drawn from the OS on every call rather than from a user-space generator:
/// a user-space state would be copied by `fork()` and two PHP-FPM children
/// could then mint the same token, and so release each other's locks.
pub fn new_token() -> String {
    let mut random = [0u8; 16];
    if getrandom::fill(&mut random).is_err() {
        // The same source through uuid (which panics where it fails too,
        // caught by the PHP layer's guard): never a predictable token.
        random = *uuid::Uuid::new_v4().as_bytes();
    }
    let mut token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random);
    let pid = crate::pid::current().to_string();
    let room = MAX_LEN - RANDOM_LEN - 2 - pid.len();
    let host: String = HOST
        .chars()
        .scan(0, |len, c| {
            *len += c.len_utf8();
            (*len <= room).then_some(c)
        })
        .collect();
    token.push(':');
    token.push_str(&pid);
    token.push('@');
    token.push_str(&host);
    token
}

/// Who made an owner token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    /// The host's short name (cut to fit the token, see the module's
    /// documentation).
    pub host: String,
    /// The process id on that host.
    pub pid: u32,
}

/// The process and host that made `token`, if this extension made it
/// (see [`new_token`]); None for any other owner.
pub fn holder_of(token: &str) -> Option<Holder> {
    let (random, rest) = token.split_at_checked(RANDOM_LEN)?;
    if !random
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return None;
    }
    let (pid, host) = rest.strip_prefix(':')?.split_once('@')?;
    if host.is_empty() || pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(Holder {
        host: host.to_owned(),
        pid: pid.parse().ok()?,
    })
}

/// This host's short name (the kernel's, as `gethostname()` reads it, up to
/// the first dot), read once; "localhost" where it cannot be read.
static HOST: Lazy<String> = Lazy::new(|| {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .and_then(|name| name.trim().split('.').next().map(str::to_owned))
        .filter(|name| !name.is_empty() && !name.contains(char::is_whitespace))
        .unwrap_or_else(|| "localhost".to_owned())
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_its_maker_and_others_name_no_one() {
        let token = new_token();
        assert!(token.len() <= MAX_LEN, "{token}");
        let holder = holder_of(&token).expect("ours");
        assert_eq!(holder.pid, std::process::id());
        assert!(HOST.starts_with(&holder.host) && !holder.host.is_empty());
        assert_ne!(new_token(), token);
        for other in [
            "",
            "laravel-owner-1234",
            "6f1c2a9e-93b5-4d0c-8d7a-0a1b2c3d4e5f",
            "AAAAAAAAAAAAAAAAAAAAAA:12@",
            "AAAAAAAAAAAAAAAAAAAAAA:x1@web",
            "AAAAAAAAAAAAAAAAAAAAA=:1@web",
            "AAAAAAAAAAAAAAAAAAAAAA:@web",
        ] {
            assert_eq!(holder_of(other), None, "{other}");
        }
        assert_eq!(
            holder_of("Zm9vYmFyYmF6cXV4Zm9vYm:42@web-1"),
            Some(Holder {
                host: "web-1".to_owned(),
                pid: 42
            })
        );
    }
}
