//! Properties of the header formats over arbitrary input: no panic, a typed answer for any
//! bytes, and formatting that never tells the callee it has less time than it does.

use std::time::Duration;

use bulwark_http::{
    GRPC_TIMEOUT_MAX_DIGITS, HeaderError, format_grpc_timeout, format_millis, parse_grpc_timeout,
    parse_millis,
};
use proptest::prelude::*;

proptest! {
    #[test]
    fn any_bytes_get_an_answer(bytes in proptest::collection::vec(any::<u8>(), 0..24)) {
        match parse_grpc_timeout(&bytes) {
            Ok(_) => {
                let (unit, digits) = bytes.split_last().unwrap();
                prop_assert!(b"HMSmun".contains(unit));
                prop_assert!((1..=GRPC_TIMEOUT_MAX_DIGITS).contains(&digits.len()));
                prop_assert!(digits.iter().all(u8::is_ascii_digit));
            }
            Err(HeaderError::TooManyDigits { digits }) => {
                prop_assert!(digits > GRPC_TIMEOUT_MAX_DIGITS);
            }
            Err(_) => {}
        }
        match parse_millis(&bytes) {
            Ok(d) => {
                prop_assert!(!bytes.is_empty() && bytes.iter().all(u8::is_ascii_digit));
                prop_assert!(d <= Duration::from_millis(u64::MAX));
            }
            Err(HeaderError::NotADigit { at }) => prop_assert!(!bytes[at].is_ascii_digit()),
            Err(e) => prop_assert_eq!(e, HeaderError::Empty),
        }
    }

    #[test]
    fn formatted_values_parse_back_no_shorter(secs in 0..u64::MAX, nanos in 0..1_000_000_000_u32) {
        let d = Duration::new(secs, nanos);
        let grpc = format_grpc_timeout(d);
        prop_assert!(grpc.len() <= GRPC_TIMEOUT_MAX_DIGITS + 1);
        let back = parse_grpc_timeout(grpc.as_bytes()).unwrap();
        let most = Duration::from_secs(99_999_999 * 3600);
        prop_assert!(back >= d.min(most), "{:?} -> {:?} -> {:?}", d, grpc, back);
        let ms = parse_millis(format_millis(d).as_bytes()).unwrap();
        prop_assert!(ms >= d.min(Duration::from_millis(u64::MAX)));
        prop_assert!(ms - d.min(ms) < Duration::from_millis(1));
    }
}
