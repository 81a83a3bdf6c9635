//! The CloudConnexa API client: authentication, pacing, retries, pagination, decoding.

pub mod client;
pub mod error;
pub mod model;
pub mod rate;
