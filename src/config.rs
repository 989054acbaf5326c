//! Configuration (TOML + CLI overrides). (in progress)
