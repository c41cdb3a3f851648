#![doc = include_str!("../README.md")]

pub mod app;
pub mod check;
pub mod driver;
pub mod history;
pub mod proxy;
pub mod tx_app;
