//! One module per resource of the admin plane. A handler checks the caller's role, calls a
//! service, and shapes the answer; it imports `civia_api`'s shared plumbing (`extract`,
//! `body`, `views`, `state`), never another handler.

pub(crate) mod admin;
pub(crate) mod audit;
pub(crate) mod backup;
pub(crate) mod charter;
pub(crate) mod compliance;
pub(crate) mod dsr;
pub(crate) mod knowledge;
pub(crate) mod system;
pub(crate) mod updates;
