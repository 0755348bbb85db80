//! The `serde` feature without `std` or an allocator: configurations read from a tiny
//! key/value source through serde's own no-alloc deserializers, checked as from a file (a
//! bad value refused), and a duration written in its text form on the stack.

use bulwark::duration::{self, Text};
use bulwark::{bulkhead, rate_limiter, retry};
use core::fmt::Write;
use core::time::Duration;
use serde::Deserialize;
use serde::de::value::{BorrowedStrDeserializer, Error, MapDeserializer};
use serde::de::{self, IntoDeserializer, Visitor};

/// A value of the source: an integer or a string (durations, enum variants).
#[derive(Copy, Clone)]
enum Value<'a> {
    Int(u64),
    Str(&'a str),
}

impl<'de> IntoDeserializer<'de, Error> for Value<'de> {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'de> de::Deserializer<'de> for Value<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match self {
            Value::Int(n) => v.visit_u64(n),
            Value::Str(s) => v.visit_borrowed_str(s),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        match self {
            Value::Str(s) => BorrowedStrDeserializer::new(s).deserialize_enum(name, variants, v),
            Value::Int(_) => self.deserialize_any(v),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_some(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct newtype_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

fn read<'a, T: Deserialize<'a>>(pairs: &'a [(&'a str, Value<'a>)]) -> Result<T, Error> {
    T::deserialize(MapDeserializer::new(pairs.iter().copied()))
}

struct Stack {
    buf: [u8; 40],
    len: usize,
}

impl Write for Stack {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len + s.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(core::fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// 0 when every check passes.
pub(crate) fn configs() -> i32 {
    use Value::{Int, Str};
    let ms = Duration::from_millis;
    let r: Result<retry::Config, _> = read(&[
        ("max_attempts", Int(4)),
        ("max_elapsed", Str("10s")),
        ("jitter", Str("equal")),
    ]);
    let want = retry::Config::new()
        .max_attempts(4)
        .max_elapsed(ms(10_000))
        .jitter(retry::Jitter::Equal);
    if r != Ok(want) {
        return 1;
    }
    let l: Result<rate_limiter::Config, _> = read(&[
        ("rate", Int(100)),
        ("burst", Int(20)),
        ("max_wait", Str("1.5s")),
    ]);
    if l != Ok(rate_limiter::Config::per_second(100)
        .burst(20)
        .max_wait(ms(1500)))
    {
        return 2;
    }
    let b: Result<bulkhead::Config, _> =
        read(&[("max_concurrent", Int(8)), ("overflow", Str("drop_oldest"))]);
    if b != Ok(bulkhead::Config::new(8).overflow(bulkhead::Overflow::DropOldest)) {
        return 3;
    }
    // Refused as from a file: a zero rate, an unknown key, a bad duration.
    if read::<rate_limiter::Config>(&[("rate", Int(0))]).is_ok()
        || read::<retry::Config>(&[("max_attemps", Int(2))]).is_ok()
        || read::<retry::Config>(&[("max_elapsed", Str("10 parsecs"))]).is_ok()
    {
        return 4;
    }
    let mut s = Stack {
        buf: [0; 40],
        len: 0,
    };
    if write!(s, "{}", Text(ms(1500))).is_err()
        || s.buf.get(..s.len) != Some(b"1.5s".as_slice())
        || duration::parse("2m") != Ok(Duration::from_secs(120))
    {
        return 5;
    }
    0
}
