//! [`Table`]: a large table in `.bss`, handed out once as a `&'static
//! mut`, what the programs have instead of an allocator for big buffers.
//!
//! It does not allocate, grow or take the table back: one taker, for the
//! whole run.

use core::sync::atomic::{AtomicBool, Ordering};

/// A large table that lives in `.bss` and is handed out once, as a
/// `&'static mut`. Without an allocator, big fixed-capacity tables would
/// otherwise live on the stack, where stack probes touch (and so make
/// resident) every page of them; in `.bss` only the pages used count.
pub struct Table<T> {
    taken: AtomicBool,
    value: core::cell::UnsafeCell<T>,
}

// SAFETY: the value is reachable only through the one `&mut` that `take`
// hands out, guarded by an atomic flag, to whichever thread asks first:
// that moves the value to that thread, which is sound for `T: Send`.
unsafe impl<T: Send> Sync for Table<T> {}

impl<T> Table<T> {
    /// A table holding `value`. For the table to go to `.bss` (and cost
    /// nothing until used), `value` should be all zero bytes, e.g. an empty
    /// `ArrayVec`; any value is correct.
    pub const fn new(value: T) -> Table<T> {
        Table { taken: AtomicBool::new(false), value: core::cell::UnsafeCell::new(value) }
    }

    /// The table, the first time; `None` afterwards.
    // A `&mut` from `&self` is the point: the flag makes it unique.
    #[allow(clippy::mut_from_ref)]
    pub fn take(&'static self) -> Option<&'static mut T> {
        if self.taken.swap(true, Ordering::AcqRel) {
            return None;
        }
        // SAFETY: the flag was false, so no other reference exists, and
        // none will be made: this is the only `&mut` ever handed out.
        Some(unsafe { &mut *self.value.get() })
    }
}
