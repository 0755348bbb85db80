//! The Lua script and the exact encoding of its numbers.
//!
//! Lua numbers are doubles (exact integers only up to 2⁵³), and the core's instants are
//! `u64` nanoseconds. The script therefore never holds one number of nanoseconds: every
//! instant and duration crosses the boundary, and is computed on, as two exact parts —
//! whole seconds (below 2³⁵ for any `u64`) and the nanoseconds below them (below 10⁹).
//! `n·T` and `b·T` are multiplied here, in `u64` (the config guarantees `b·T` fits), so the
//! script only adds, subtracts and compares.

/// The script's source (see `gcra.lua` beside this file for the arithmetic and its
/// arguments).
pub(crate) const SOURCE: &str = include_str!("gcra.lua");

const GIGA: u64 = 1_000_000_000;

/// The script's seven arguments (`now` absent: Redis `TIME`, sent as two empty strings).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Args {
    pub(crate) now: Option<(u64, u64)>,
    pub(crate) inc: (u64, u64),
    pub(crate) len: (u64, u64),
    pub(crate) slack_ms: u64,
}

impl Args {
    /// Appends them to `cmd` (numbers in decimal, written without allocating).
    pub(crate) fn write_to(&self, cmd: &mut redis::Cmd) {
        match self.now {
            Some((s, ns)) => cmd.arg(s).arg(ns),
            None => cmd.arg("").arg(""),
        };
        cmd.arg(self.inc.0)
            .arg(self.inc.1)
            .arg(self.len.0)
            .arg(self.len.1)
            .arg(self.slack_ms);
    }
}

/// `{pass, at_s, at_ns, now_s, now_ns}`.
pub(crate) type Reply = (i64, i64, i64, i64, i64);

/// A reply read back into nanoseconds.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Decoded {
    pub(crate) pass: bool,
    /// The new TAT when it passed, the earliest pass instant otherwise (`u64::MAX`: never).
    pub(crate) at: u64,
    /// The instant the script used as now.
    pub(crate) now: u64,
}

/// `ns` as (whole seconds, nanoseconds below them).
pub(crate) fn split(ns: u64) -> (u64, u64) {
    (ns / GIGA, ns % GIGA)
}

/// The inverse of [`split`]; `None` for parts no `u64` splits into.
pub(crate) fn join(s: i64, ns: i64) -> Option<u64> {
    let s = u64::try_from(s).ok()?;
    let ns = u64::try_from(ns).ok().filter(|&n| n < GIGA)?;
    s.checked_mul(GIGA)?.checked_add(ns)
}

/// The arguments for a check at `now` (`None`: Redis `TIME`) taking `inc = n·T` from a
/// bucket of length `len = b·T`, keys outliving their refill by `slack_ms`.
pub(crate) fn args(now: Option<u64>, inc: u64, len: u64, slack_ms: u64) -> Args {
    Args {
        now: now.map(split),
        inc: split(inc),
        len: split(len),
        slack_ms,
    }
}

/// Reads a reply; `None` when it is out of range (not this script's).
pub(crate) fn decode((pass, at_s, at_ns, now_s, now_ns): Reply) -> Option<Decoded> {
    let pass = match pass {
        0 => false,
        1 => true,
        _ => return None,
    };
    Some(Decoded {
        pass,
        at: join(at_s, at_ns)?,
        now: join(now_s, now_ns)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_and_join_are_exact_over_the_whole_range() {
        for ns in [
            0,
            1,
            GIGA - 1,
            GIGA,
            GIGA + 1,
            1 << 53,
            (1 << 53) + 1,
            u64::MAX,
        ] {
            let (s, n) = split(ns);
            assert!(s < (1 << 35) && n < GIGA);
            assert_eq!(join(s as i64, n as i64), Some(ns));
        }
        assert_eq!(split(u64::MAX), (18_446_744_073, 709_551_615));
        assert_eq!(join(-1, 0), None);
        assert_eq!(join(0, GIGA as i64), None);
        assert_eq!(join(18_446_744_073, 709_551_616), None, "past u64::MAX");
    }

    #[test]
    fn args_carry_server_time_as_empty_strings() {
        let packed = |a: Args| {
            let mut cmd = redis::cmd("EVALSHA");
            a.write_to(&mut cmd);
            String::from_utf8(cmd.get_packed_command()).unwrap()
        };
        let a = packed(args(None, 1_500_000_000, 3 * GIGA, 7));
        assert!(
            a.ends_with("$0\r\n\r\n$0\r\n\r\n$1\r\n1\r\n$9\r\n500000000\r\n$1\r\n3\r\n$1\r\n0\r\n$1\r\n7\r\n"),
            "{a:?}"
        );
        let a = packed(args(Some(u64::MAX), 1, 2, 0));
        assert!(
            a.contains("$11\r\n18446744073\r\n$9\r\n709551615\r\n"),
            "{a:?}"
        );
    }

    #[test]
    fn replies_out_of_range_are_refused() {
        assert_eq!(
            decode((1, 2, 3, 4, 5)),
            Some(Decoded {
                pass: true,
                at: 2 * GIGA + 3,
                now: 4 * GIGA + 5
            })
        );
        assert_eq!(decode((2, 0, 0, 0, 0)), None);
        assert_eq!(decode((0, 0, -1, 0, 0)), None);
    }
}
