//! The local event bus: domain events appended to a JSON-lines file, one event a line.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use leadflow_core::error::BusError;
use leadflow_core::ports::{DomainEvent, EventBus};

use crate::error::LocalError;
use crate::outgoing::Parcel;
use crate::store::SqliteStore;
use crate::unit_of_work::JoinsUnits;

#[derive(Debug)]
pub struct JsonlBus {
    path: PathBuf,
    file: Mutex<File>,
    units: JoinsUnits,
}

impl JsonlBus {
    /// Appends to the file at `path`, creating it and its folder if need be.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, LocalError> {
        let path = path.into();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| LocalError::Io {
                action: "create the folder of the events file",
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| LocalError::Io { action: "open the events file", path: path.clone(), source })?;
        Ok(Self { path, file: Mutex::new(file), units: JoinsUnits::default() })
    }

    /// Events published inside a [`UnitOfWork`](crate::UnitOfWork) of `store`'s leave with the
    /// unit's writes, once they are committed; first delivers what a crash left undelivered.
    pub fn joins_units_of(self, store: &SqliteStore) -> Result<Self, LocalError> {
        Ok(Self { units: JoinsUnits::of(store)?, ..self })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn publish_now(&self, events: &[DomainEvent]) -> Result<(), BusError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut lines = Vec::new();
        for event in events {
            serde_json::to_writer(&mut lines, event)
                .map_err(|e| BusError::Unavailable(format!("event {} cannot be encoded as JSON: {e}", event.id)))?;
            lines.push(b'\n');
        }
        if self.units.in_unit().map_err(BusError::Unavailable)? {
            let parcel = Parcel::Lines { file: self.path.clone(), lines };
            return self.units.hold(&parcel).map_err(BusError::Unavailable);
        }
        // One write of whole lines in append mode: batches from concurrent publishers never
        // interleave inside a line.
        let mut file = self.file.lock().map_err(|_| {
            BusError::Unavailable(format!("the events file {} is unusable after an earlier crash", self.path.display()))
        })?;
        file.write_all(&lines).map_err(|e| {
            BusError::Unavailable(format!("cannot append to the events file {}: {e}", self.path.display()))
        })
    }
}

impl EventBus for JsonlBus {
    async fn publish(&self, events: &[DomainEvent]) -> Result<(), BusError> {
        self.publish_now(events)
    }
}
