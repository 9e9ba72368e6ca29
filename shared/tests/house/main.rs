//! The house's own checks, one binary (it links the library once): the
//! layers and their imports, the sizes of files and functions, and the
//! documentation against the code.

mod common;
mod docs;
mod layers;
mod sizes;
