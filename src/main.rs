//! The `cloudconnexa_exporter` binary: parse configuration, set up logging, run.

fn main() {}
