//! Owner tokens.

/// A new owner token: 128 random bits as UUID text.
///
/// Drawn from the OS on every call (uuid's `v4` without `fast-rng`) rather than
/// from a user-space generator: a user-space state would be copied by `fork()`
/// and two PHP-FPM children could then mint the same token, and so release
/// each other's locks.
pub fn new_token() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string()
}
