//! The one convention for event hooks, written once: [`hooks!`] declares a hook trait whose
//! methods all have empty defaults, and implements it for `()` (no hooks: free), `&H` (a
//! hook shared by reference, for example a `static`) and `(A, B)` (both, `.0` first). Every
//! pattern's hook trait (the breaker's `Events`, retry's `Hooks`) is declared with it, so
//! they compose the same way and observability is written once against them.

/// Declares a hook trait (see the [module](self) docs). Method arguments must be `Copy`: a
/// pair passes them to both hooks.
macro_rules! hooks {
    (
        $(#[$attr:meta])*
        pub trait $name:ident $(<$($gen:ident),+>)? {
            $(
                $(#[$mattr:meta])*
                fn $method:ident(&self $(, $arg:ident: $ty:ty)* $(,)?);
            )*
        }
    ) => {
        $(#[$attr])*
        ///
        /// Every method has an empty default. `()` implements the trait (no hooks, nothing
        /// paid), a reference `&H` forwards to `H`, and a pair `(A, B)` calls both, `.0` first.
        pub trait $name $(<$($gen),+>)? {
            $(
                $(#[$mattr])*
                #[inline]
                fn $method(&self $(, $arg: $ty)*) {
                    let _ = ($($arg,)*);
                }
            )*
        }

        impl $(<$($gen),+>)? $name $(<$($gen),+>)? for () {}

        impl<$($($gen,)+)? Hk: $name $(<$($gen),+>)? + ?Sized> $name $(<$($gen),+>)? for &Hk {
            $(
                #[inline]
                fn $method(&self $(, $arg: $ty)*) {
                    (**self).$method($($arg),*)
                }
            )*
        }

        impl<$($($gen,)+)? Ha: $name $(<$($gen),+>)?, Hb: $name $(<$($gen),+>)?> $name $(<$($gen),+>)?
            for (Ha, Hb)
        {
            $(
                #[inline]
                fn $method(&self $(, $arg: $ty)*) {
                    self.0.$method($($arg),*);
                    self.1.$method($($arg),*);
                }
            )*
        }
    };
}
