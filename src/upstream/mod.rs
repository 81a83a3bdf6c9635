//! The CloudConnexa API client: authentication, pacing, retries, pagination, decoding.

pub mod model;
