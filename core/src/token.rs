//! Owner tokens.
//!
//! A token this extension makes is 128 random bits as UUID text, then who
//! made it: `<uuid>:<pid>@<host>`. The random part alone makes it unique;
//! the rest is for an operator asking who holds a lock
//! (`LockManager::inspect()`, [`holder_of`]). Owners given by the caller
//! (Laravel's, Symfony's, `restoreLock()`) are used as they are.

use once_cell::sync::Lazy;

/// A new owner token: 128 random bits as UUID text, this process's id and
/// the host's name.
///
/// Drawn from the OS on every call (uuid's `v4` without `fast-rng`) rather than
/// from a user-space generator: a user-space state would be copied by `fork()`
/// and two PHP-FPM children could then mint the same token, and so release
/// each other's locks.
pub fn new_token() -> String {
    format!(
        "{}:{}@{}",
        uuid::Uuid::new_v4().hyphenated(),
        crate::pid::current(),
        *HOST
    )
}

/// Who made an owner token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    /// The host's name, as `gethostname()` gives it.
    pub host: String,
    /// The process id on that host.
    pub pid: u32,
}

/// The process and host that made `token`, if this extension made it
/// (see [`new_token`]); None for any other owner.
pub fn holder_of(token: &str) -> Option<Holder> {
    let (uuid, rest) = token.split_at_checked(36)?;
    uuid::Uuid::try_parse(uuid).ok()?;
    let (pid, host) = rest.strip_prefix(':')?.split_once('@')?;
    if host.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(Holder {
        host: host.to_owned(),
        pid: pid.parse().ok()?,
    })
}

/// This host's name (the kernel's, as `gethostname()` reads it), read
/// once; "localhost" where it cannot be read.
static HOST: Lazy<String> = Lazy::new(|| {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty() && !name.contains(char::is_whitespace))
        .unwrap_or_else(|| "localhost".to_owned())
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_its_maker_and_others_name_no_one() {
        let token = new_token();
        let holder = holder_of(&token).expect("ours");
        assert_eq!(holder.pid, std::process::id());
        assert_eq!(holder.host, *HOST);
        assert_ne!(new_token(), token);
        for other in [
            "",
            "laravel-owner-1234",
            "6f1c2a9e-93b5-4d0c-8d7a-0a1b2c3d4e5f",
            "6f1c2a9e-93b5-4d0c-8d7a-0a1b2c3d4e5f:12@",
            "6f1c2a9e-93b5-4d0c-8d7a-0a1b2c3d4e5f:x1@web",
            "not-a-uuid-not-a-uuid-not-a-uuid-xx:1@web",
        ] {
            assert_eq!(holder_of(other), None, "{other}");
        }
        assert_eq!(
            holder_of("6f1c2a9e-93b5-4d0c-8d7a-0a1b2c3d4e5f:42@web-1.example"),
            Some(Holder {
                host: "web-1.example".to_owned(),
                pid: 42
            })
        );
    }
}
