//! The `leadflow` binary's library: the local stack (`leadflow dev`) and configuration loading.

pub mod cli;
pub mod client;
pub mod dev;

pub use leadflow_app::config_files;

// Declared here rather than in `main.rs` so that every process that runs the local stack (the
// `leadflow` binary, the restart test's copy of it, the load and console benchmarks) allocates
// the same way. A lead is many small, short-lived allocations (its fields, score reasons, the
// trail's entries); glibc's malloc and free were a fifth of the core path's instructions
// (docs/performance.md, section 1). The Lambda functions keep the system allocator: there a
// lead's CPU costs cents a million ("Dollar cost"), and route and nurture have almost used up
// their 3 MB budgets, which mimalloc's code would take from.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
