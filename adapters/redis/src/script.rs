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

/// The script's arguments: five, then `now` as two more for caller time (absent: Redis
/// `TIME`).
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
        cmd.arg(self.inc.0)
            .arg(self.inc.1)
            .arg(self.len.0)
            .arg(self.len.1)
            .arg(self.slack_ms);
        if let Some((s, ns)) = self.now {
            cmd.arg(s).arg(ns);
        }
    }
}

/// The script's answer, read.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    /// The tokens were taken.
    Pass,
    /// Refused: it would pass this many nanoseconds after the script's now.
    Wait(u64),
    /// Refused for good: the new TAT would pass `u64::MAX` ns.
    Never,
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

/// Reads a reply (`1`, `{s, ns}` or `0`); `None` when it is none of those (not this
/// script's).
pub(crate) fn decode(reply: &redis::Value) -> Option<Reply> {
    use redis::Value;
    match reply {
        Value::Int(1) => Some(Reply::Pass),
        Value::Int(0) => Some(Reply::Never),
        Value::Array(parts) => match parts.as_slice() {
            [Value::Int(s), Value::Int(ns)] => join(*s, *ns).map(Reply::Wait),
            _ => None,
        },
        _ => None,
    }
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
    fn args_carry_caller_time_last_and_server_time_as_nothing() {
        let packed = |a: Args| {
            let mut cmd = redis::cmd("EVALSHA");
            a.write_to(&mut cmd);
            String::from_utf8(cmd.get_packed_command()).unwrap()
        };
        let a = packed(args(None, 1_500_000_000, 3 * GIGA, 7));
        assert_eq!(
            a,
            "*6\r\n$7\r\nEVALSHA\r\n$1\r\n1\r\n$9\r\n500000000\r\n$1\r\n3\r\n$1\r\n0\r\n$1\r\n7\r\n"
        );
        let a = packed(args(Some(u64::MAX), 1, 2, 0));
        assert!(
            a.starts_with("*8\r\n") && a.ends_with("$11\r\n18446744073\r\n$9\r\n709551615\r\n"),
            "{a:?}"
        );
    }

    #[test]
    fn replies_out_of_range_are_refused() {
        use redis::Value::{Array, Int, Nil};
        assert_eq!(decode(&Int(1)), Some(Reply::Pass));
        assert_eq!(decode(&Int(0)), Some(Reply::Never));
        assert_eq!(
            decode(&Array(vec![Int(2), Int(3)])),
            Some(Reply::Wait(2 * GIGA + 3))
        );
        assert_eq!(decode(&Int(2)), None);
        assert_eq!(decode(&Nil), None);
        assert_eq!(decode(&Array(vec![Int(0), Int(-1)])), None);
        assert_eq!(decode(&Array(vec![Int(0), Int(1), Int(2)])), None);
    }
}
