//! The simulated CloudConnexa API over HTTP: authentication, validation, paging, windows, rate
//! limit, faults, the inventory and the control endpoints, with every body checked against the
//! vendor's OpenAPI spec.

#![allow(unreachable_pub, missing_docs, dead_code)]

mod helpers;
mod schema;

mod control;
mod inventory;
mod sessions;
