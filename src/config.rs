//! Command line and environment configuration.
