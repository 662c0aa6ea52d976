//! x
pub mod dir;
pub mod membership;
pub mod registry;
