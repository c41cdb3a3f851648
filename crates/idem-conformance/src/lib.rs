#![doc = include_str!("../README.md")]

pub mod cases;
pub mod doubles;
mod macros;
mod skip;
pub mod stall;
mod subject;

pub use skip::{is_required, skip};
pub use subject::{Subject, fresh_key};

#[doc(hidden)]
pub use tokio as __tokio;
