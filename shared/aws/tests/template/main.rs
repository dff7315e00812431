//! The shape of `template.yaml` where cfn-lint and `sam validate` do not look: a misspelt
//! `FunctionResponseTypes` value, a `!GetAtt` attribute the resource type does not have, a
//! binary that is not built, an environment variable no function reads, a queue without a DLQ.
//! Deploying is the only other way to find these, and some (a missing partial-batch response
//! type) only show up as redelivered messages in production.
//!
//! One test binary, its tests grouped by what they check; `resources` and `yaml` read the
//! template for all of them.

mod console;
mod functions;
mod http_api;
mod parameters;
mod queues;
mod references;
mod resources;
mod table;
mod yaml;
