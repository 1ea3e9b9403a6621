//! Commands written straight into the bytes Redis reads (RESP), for the
//! commands of every lock cycle.
//!
//! redis-rs's `Cmd` keeps each argument in a buffer of its own that grows as
//! it is built, and packs them into a third buffer when sent: about a dozen
//! allocations for an acquire or a release, a third of the client's
//! instructions per cycle in a many-keys loop (valgrind, `bench/callgrind.py`).
//! A [`Packed`] command is one buffer, written once, handed to redis-rs's
//! `req_packed_command` (on a cluster, redis-rs reads the keys back from
//! those bytes to route it). Replies are still read and parsed by redis-rs.
//!
//! Arguments are anything redis-rs can send ([`ToRedisArgs`]): [`Packed`]
//! is a [`RedisWrite`]. The head of the command (the array length, and a
//! caller's leading arguments such as `EVALSHA <sha> <number of keys>`, known
//! only once the rest is written) goes into room left before the
//! arguments, so it costs no second buffer either.

use std::borrow::Cow;
use std::io;

use redis::{ConnectionLike, FromRedisValue, RedisResult, RedisWrite, ToRedisArgs};

/// Room kept ahead of the arguments for the head: the array length, and
/// `EVALSHA`, a 40-character SHA and a key count with their lengths.
const ROOM: usize = 96;

/// One command in RESP bytes; see the module doc.
pub struct Packed {
    /// `ROOM` bytes for the head, then each argument as a bulk string.
    buf: Vec<u8>,
    /// Arguments written after the room.
    args: usize,
}

impl Packed {
    /// A command with no argument yet. `hint`: bytes its arguments take
    /// (keys and values), so that the buffer is allocated once.
    pub fn with_capacity(hint: usize) -> Self {
        let mut buf = Vec::with_capacity(ROOM + hint + 64);
        buf.resize(ROOM, 0);
        Packed { buf, args: 0 }
    }

    /// The command `name` (`SET`, `DELIFEQ`, …).
    pub fn cmd(name: &str, hint: usize) -> Self {
        Self::with_capacity(name.len() + hint).arg(name)
    }

    /// Adds an argument, as redis-rs would send it.
    pub fn arg<T: ToRedisArgs>(mut self, arg: T) -> Self {
        arg.write_redis_args(&mut self);
        self
    }

    /// How many arguments were written (not counting a head).
    pub fn len(&self) -> usize {
        self.args
    }

    /// Whether no argument was written.
    pub fn is_empty(&self) -> bool {
        self.args == 0
    }

    /// The command's bytes: `head` (each a bulk string) then the arguments.
    /// The head is written into the room ahead of the arguments when it
    /// fits (it always does for an EVALSHA); else the bytes are copied out.
    pub fn bytes(&mut self, head: &[&[u8]]) -> Cow<'_, [u8]> {
        let count = head.len() + self.args;
        let len = count_len(count) + head.iter().map(|h| bulk_len(h.len())).sum::<usize>();
        if len <= ROOM {
            let mut front = Front {
                buf: &mut self.buf[ROOM - len..ROOM],
                at: 0,
            };
            front.count(b'*', count);
            for part in head {
                front.bulk(part);
            }
            Cow::Borrowed(&self.buf[ROOM - len..])
        } else {
            let mut bytes = Vec::with_capacity(len + self.buf.len() - ROOM);
            write_count(&mut bytes, b'*', count);
            for part in head {
                write_bulk(&mut bytes, part);
            }
            bytes.extend_from_slice(&self.buf[ROOM..]);
            Cow::Owned(bytes)
        }
    }

    /// Sends it (after `head`) and reads the reply as `T`; an error reply
    /// is an `Err`, as with `Cmd::query`.
    pub fn query_with<T: FromRedisValue>(
        &mut self,
        head: &[&[u8]],
        con: &mut dyn ConnectionLike,
    ) -> RedisResult<T> {
        let value = con.req_packed_command(&self.bytes(head))?;
        Ok(T::from_redis_value(value.extract_error()?)?)
    }

    /// Sends it and reads the reply as `T` (see [`Packed::query_with`]).
    pub fn query<T: FromRedisValue>(&mut self, con: &mut dyn ConnectionLike) -> RedisResult<T> {
        self.query_with(&[], con)
    }
}

impl RedisWrite for Packed {
    fn write_arg(&mut self, arg: &[u8]) {
        write_bulk(&mut self.buf, arg);
        self.args += 1;
    }

    fn writer_for_next_arg(&mut self) -> impl io::Write + '_ {
        ArgWriter {
            packed: self,
            bytes: Vec::new(),
        }
    }
}

/// What `writer_for_next_arg` hands out: a bulk string needs its length
/// first, so the argument is collected and written when the writer is dropped.
struct ArgWriter<'a> {
    packed: &'a mut Packed,
    bytes: Vec<u8>,
}

impl io::Write for ArgWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for ArgWriter<'_> {
    fn drop(&mut self) {
        self.packed.write_arg(&self.bytes);
    }
}

/// `<marker><n>\r\n`.
fn write_count(out: &mut Vec<u8>, marker: u8, n: usize) {
    out.push(marker);
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// `$<len>\r\n<bytes>\r\n`.
fn write_bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    write_count(out, b'$', bytes.len());
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

/// Bytes of `<marker><n>\r\n`.
fn count_len(n: usize) -> usize {
    1 + itoa::Buffer::new().format(n).len() + 2
}

/// Bytes of a bulk string of `len` bytes.
fn bulk_len(len: usize) -> usize {
    count_len(len) + len + 2
}

/// The room ahead of the arguments, written from its start; sized by
/// `count_len` and `bulk_len` to what is written into it.
struct Front<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Front<'_> {
    fn put(&mut self, bytes: &[u8]) {
        self.buf[self.at..self.at + bytes.len()].copy_from_slice(bytes);
        self.at += bytes.len();
    }

    fn count(&mut self, marker: u8, n: usize) {
        self.put(&[marker]);
        self.put(itoa::Buffer::new().format(n).as_bytes());
        self.put(b"\r\n");
    }

    fn bulk(&mut self, bytes: &[u8]) {
        self.count(b'$', bytes.len());
        self.put(bytes);
        self.put(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_as_redis_rs_does() {
        let mut packed = Packed::cmd("SET", 8)
            .arg(b"k".as_slice())
            .arg("v")
            .arg(30_000u64);
        let expected = redis::cmd("SET")
            .arg(b"k".as_slice())
            .arg("v")
            .arg(30_000u64)
            .get_packed_command();
        assert_eq!(packed.bytes(&[]).as_ref(), expected.as_slice());
        assert_eq!(packed.len(), 4);
    }

    #[test]
    fn a_head_goes_before_the_arguments_whether_or_not_it_fits_the_room() {
        let mut packed = Packed::with_capacity(8).arg("key").arg(7i64);
        let sha = [b'a'; 40];
        let expected = redis::cmd("EVALSHA")
            .arg(&sha[..])
            .arg(1)
            .arg("key")
            .arg(7i64)
            .get_packed_command();
        let head: [&[u8]; 3] = [b"EVALSHA", &sha, b"1"];
        assert!(matches!(packed.bytes(&head), Cow::Borrowed(_)));
        assert_eq!(packed.bytes(&head).as_ref(), expected.as_slice());
        let source = "return 1 ".repeat(20);
        let expected = redis::cmd("EVAL")
            .arg(&source)
            .arg(1)
            .arg("key")
            .arg(7i64)
            .get_packed_command();
        let head: [&[u8]; 3] = [b"EVAL", source.as_bytes(), b"1"];
        assert_eq!(packed.bytes(&head).as_ref(), expected.as_slice());
        // The room was written over by the EVALSHA head; a shorter head
        // after it is still right.
        let expected = redis::cmd("X").arg("key").arg(7i64).get_packed_command();
        assert_eq!(packed.bytes(&[b"X"]).as_ref(), expected.as_slice());
    }

    #[test]
    fn writer_arguments_are_one_bulk_string_each() {
        let mut packed = Packed::cmd("SET", 0).arg(1.5f64).arg(&["a", "b"][..]);
        let expected = redis::cmd("SET")
            .arg(1.5f64)
            .arg(&["a", "b"][..])
            .get_packed_command();
        assert_eq!(packed.bytes(&[]).as_ref(), expected.as_slice());
    }
}
