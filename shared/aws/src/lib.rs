//! The AWS adapters for the ports, and what every Lambda `main` shares.
//!
//! Configuration comes from the environment the SAM template sets (see [`env`]); clients are
//! built once per cold start. `AWS_ENDPOINT_URL` points every client at an emulator (moto) for
//! tests.

pub mod bus;
pub mod cognito;
pub mod dead_letters;
pub mod env;
pub mod https;
pub mod lambda;
pub mod mailer;
pub mod metrics;
pub mod queue;
pub mod store;
pub mod unwired;

#[cfg(feature = "provision")]
pub mod provision;
