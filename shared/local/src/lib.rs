//! Embedded adapters for the ports, used by the local stack (`leadflow dev`): the whole pipeline
//! on one machine with no AWS.
//!
//! - [`SqliteStore`]: the lead store in one SQLite file.
//! - [`SqliteQueue`]: durable stage queues with visibility timeout, receive count and dead
//!   letters, in the same file and over the same connection as the store.
//! - [`OutboxMailer`]: every email as an RFC 5322 `.eml` file in an outbox folder.
//! - [`JsonlBus`]: domain events appended to a JSON-lines file.
//! - [`SystemClock`]: system time, optionally accelerated for demos.
//! - [`UnitOfWork`]: group commit for a stage worker's batch.

mod bus;
mod checkpoints;
mod clock;
mod db;
mod error;
mod outbox;
mod outgoing;
mod queue;
mod store;
mod unit_of_work;

pub use bus::JsonlBus;
pub use clock::SystemClock;
pub use error::LocalError;
pub use outbox::OutboxMailer;
pub use queue::{DEFAULT_MAX_RECEIVES, DeadLetter, Received, SqliteQueue};
pub use store::SqliteStore;
pub use unit_of_work::UnitOfWork;
