//! The Redis keys of one lock name.
//!
//! All of them are `<prefix>{<name>}<suffix>`: they share everything up to
//! and including the closing brace of the first `{…}`, so they hash to one
//! Redis Cluster slot whatever the prefix or the name contain, and one Lua
//! script may touch them all.

/// Keys of one lock: the lock key itself, and the others derived from it
/// when a script needs them (an uncontended cycle touches only the lock).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockKeys {
    /// Holds the owner token, with the lock's TTL.
    pub lock: Vec<u8>,
}

impl LockKeys {
    /// The keys of lock `name` under `prefix`.
    pub fn new(prefix: &[u8], name: &[u8]) -> Self {
        let mut lock = Vec::with_capacity(prefix.len() + name.len() + 2);
        lock.extend_from_slice(prefix);
        lock.push(b'{');
        lock.extend_from_slice(name);
        lock.push(b'}');
        LockKeys { lock }
    }

    fn with(&self, suffix: &[u8]) -> Vec<u8> {
        let mut key = Vec::with_capacity(self.lock.len() + suffix.len());
        key.extend_from_slice(&self.lock);
        key.extend_from_slice(suffix);
        key
    }

    /// The fencing counter (only written with fencing on; never expires).
    pub fn fence(&self) -> Vec<u8> {
        self.with(b":fence")
    }

    /// Sorted set of waiting owner tokens, scored by their deadlines (ms).
    pub fn waiters(&self) -> Vec<u8> {
        self.with(b":waiters")
    }

    /// The waiters in arrival order (see `scripts` for the entries).
    pub fn queue(&self) -> Vec<u8> {
        self.with(b":queue")
    }

    /// Which release last freed the lock (its call marker's name), on a
    /// Redlock master: see [`crate::scripts::REDLOCK_PASS`].
    pub fn freed(&self) -> Vec<u8> {
        self.with(b":freed")
    }

    /// Set on a Redlock master for a while when the holder of `token` sent a
    /// release there and found the lock not its own: a late hand-on of an
    /// earlier release to it must not set it again (see
    /// [`crate::scripts::REDLOCK_PASS`]).
    pub fn gone(&self, token: &str) -> Vec<u8> {
        self.with(format!(":gone:{token}").as_bytes())
    }

    /// The holders of a read lock, scored by when each hold expires (ms).
    pub fn readers(&self) -> Vec<u8> {
        self.with(b":readers")
    }

    /// The marker under which a release or force release with call id `call`
    /// keeps its answer for a re-send (see `scripts`, "Safe to run twice").
    pub fn call(&self, call: &str) -> Vec<u8> {
        let mut key = Vec::with_capacity(self.lock.len() + 6 + call.len());
        key.extend_from_slice(&self.lock);
        key.extend_from_slice(b":call:");
        key.extend_from_slice(call.as_bytes());
        key
    }

    /// The list on which the waiter holding `token` blocks; a release that
    /// grants it the lock pushes the fencing token there. The scripts derive
    /// the same name from the lock key.
    pub fn wake(&self, token: &str) -> Vec<u8> {
        let mut key = Vec::with_capacity(self.lock.len() + 6 + token.len());
        key.extend_from_slice(&self.lock);
        key.extend_from_slice(b":wake:");
        key.extend_from_slice(token.as_bytes());
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_the_hash_tag() {
        let k = LockKeys::new(b"lock:", b"a}b\0c");
        assert_eq!(k.lock, b"lock:{a}b\0c}".to_vec());
        for other in [
            &k.fence(),
            &k.waiters(),
            &k.queue(),
            &k.readers(),
            &k.wake("t"),
            &k.call("c"),
            &k.gone("t"),
            &k.freed(),
        ] {
            assert!(other.starts_with(&k.lock));
        }
    }
}
