//! The bare runtime both probe binaries share: the panic handler, the entry point, `exit`,
//! and (with `portable-atomic`) a single-threaded critical section. Each binary defines
//! `fn entry() -> i32`; its return value is the process exit code.

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    exit(101)
}

// The prebuilt x86_64 libcore is built with panic=unwind and its .eh_frame names this
// symbol; with panic=abort it is never called.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[unsafe(no_mangle)]
extern "C" fn rust_eh_personality() {}

#[cfg(feature = "portable-atomic")]
mod cs {
    // A single-threaded program: a critical section needs no locking at all.
    struct SingleThread;
    critical_section::set_impl!(SingleThread);
    // SAFETY: this binary runs on one thread with no interrupts, so "acquiring" a critical
    // section needs no exclusion; restore state is a plain bool as the feature asks.
    unsafe impl critical_section::Impl for SingleThread {
        unsafe fn acquire() -> bool {
            false
        }
        unsafe fn release(_: bool) {}
    }
}

pub(crate) fn exit(code: i32) -> ! {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    // SAFETY: the `exit` syscall (60) takes one integer argument and never returns.
    unsafe {
        core::arch::asm!("syscall", in("rax") 60, in("rdi") code as usize, options(noreturn))
    }
    #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
    {
        core::hint::black_box(code);
        loop {}
    }
}

extern "C" fn rust_main() -> ! {
    exit(crate::entry())
}

// The kernel enters _start with a 16-byte aligned stack and no return address; realign as a
// call would, or SSE stores on the stack fault.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub extern "C" fn _start() -> ! {
    core::arch::naked_asm!("xor ebp, ebp", "and rsp, -16", "call {m}", "ud2", m = sym rust_main)
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
#[unsafe(no_mangle)]
pub extern "C" fn _start() -> ! {
    rust_main()
}
