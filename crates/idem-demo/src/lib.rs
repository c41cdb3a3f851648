#![doc = include_str!("../README.md")]

pub mod app;
pub mod chaos;
pub mod config;
pub mod db;
pub mod page;
pub mod payment;
pub mod problem;
pub mod prometheus;
pub mod routes;
pub mod serve;
pub mod store;

pub use app::{Demo, Stopped};
pub use config::Config;
