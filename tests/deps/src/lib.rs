//! Nothing: this crate only carries dependency features (see its Cargo.toml).
