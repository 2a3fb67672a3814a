//! Named failure points (feature `failpoints`). A test arms a point on its own thread with
//! [`arm`]`(name, n)`: the n-th time the install passes that point (1 = the first), the
//! operation stops there with [`crate::UpdateError::Injected`], exactly as if the process had
//! been killed at that instant: nothing after the point runs, nothing is cleaned up. Without
//! the feature, [`hit`] compiles to nothing.
//!
//! Points: `after_verify`, `after_mark`, `write:<payload>` (once per chunk written),
//! `after_write:<payload>`, `readback:<payload>`, `partuuid` (before the partition UUIDs are
//! set), `before_uki_rename`, `after_uki_rename`, `bless:after_rename`, `bad:after_rename`,
//! `model:after_stage`, `model:after_dir_rename`.

#[cfg(feature = "failpoints")]
mod imp {
    use std::cell::RefCell;
    use std::collections::HashMap;

    thread_local! {
        static ARMED: RefCell<HashMap<String, u64>> = RefCell::new(HashMap::new());
        static SEEN: RefCell<HashMap<String, u64>> = RefCell::new(HashMap::new());
    }

    pub fn arm(name: &str, nth: u64) {
        ARMED.with(|a| a.borrow_mut().insert(name.to_string(), nth.max(1)));
    }

    pub fn clear() {
        ARMED.with(|a| a.borrow_mut().clear());
        SEEN.with(|s| s.borrow_mut().clear());
    }

    /// How many times each point was passed since the last [`clear`] (to pick random points).
    pub fn seen() -> HashMap<String, u64> {
        SEEN.with(|s| s.borrow().clone())
    }

    pub fn hit(name: &str) -> Result<(), crate::UpdateError> {
        SEEN.with(|s| *s.borrow_mut().entry(name.to_string()).or_insert(0) += 1);
        ARMED.with(|a| {
            let mut a = a.borrow_mut();
            if let Some(n) = a.get_mut(name) {
                *n -= 1;
                if *n == 0 {
                    a.remove(name);
                    return Err(crate::UpdateError::Injected(name.to_string()));
                }
            }
            Ok(())
        })
    }
}

#[cfg(feature = "failpoints")]
pub use imp::{arm, clear, hit, seen};

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str) -> Result<(), crate::UpdateError> {
    Ok(())
}
