//! The kinds of hold, each its keys, its attempt and how it reads a grant,
//! for the engine (`engine`) to wait on: the exclusive lock
//! ([`exclusive`]), the read lock ([`read`]), the semaphore permit
//! ([`permit`]), all on one node, the exclusive lock over a quorum of
//! masters ([`quorum`], Redlock's), and a multi-lock's names, all or none,
//! over either exclusive kind ([`multi`]; in one script where one node
//! holds every name: [`all`]).

pub(crate) mod all;
pub(crate) mod exclusive;
pub(crate) mod multi;
pub(crate) mod permit;
pub(crate) mod quorum;
pub(crate) mod read;
