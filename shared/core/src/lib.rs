//! Leadflow's domain, pure: no I/O, no async runtime, no AWS.
//!
//! Everything a stage decides is decided here, from values passed in; the stage handlers in
//! `functions/*` only fetch those values through the [`ports`] and write the results back.

pub mod campaign;
pub mod config;
pub mod confirmation;
pub mod dead_letters;
pub mod email;
pub mod erasure;
pub mod error;
pub mod funnel;
pub mod live_config;
pub mod local_time;
pub mod messages;
pub mod model;
pub mod normalize;
pub mod outgoing;
pub mod ports;
pub mod routing;
pub mod rules;
pub mod sales_link;
pub mod sales_status;
pub mod scoring;
pub mod settings;
pub mod signing;
pub mod submission;
pub mod unsubscribe;
pub mod validate;
pub mod wait;
pub mod what_if;
pub mod zone;

pub use error::{FieldProblem, StoreError};
pub use model::{Lead, LeadId};
