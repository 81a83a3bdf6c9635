//! Integration tests: the real exporter on port 0 against the simulator or a targeted fake.

#![allow(unreachable_pub, missing_docs)]

mod fake;
mod helpers;

mod collectors;
mod convergence;
mod failures;
mod inventory;
mod process;
mod properties;
mod web;
