#![allow(dead_code)] // each test binary uses its own part of these helpers

pub use leadflow_memory::fixtures::*;
