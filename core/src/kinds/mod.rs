//! The kinds of hold, each its keys, its attempt and how it reads a grant,
//! for the engine (`engine`) to wait on: the exclusive lock
//! ([`exclusive`]), the read lock ([`read`]), the semaphore permit
//! ([`permit`]), every name of a multi-lock at once ([`all`]), all on one
//! node, and the exclusive lock over a quorum of masters ([`quorum`],
//! Redlock's).

pub(crate) mod all;
pub(crate) mod exclusive;
pub(crate) mod permit;
pub(crate) mod quorum;
pub(crate) mod read;
