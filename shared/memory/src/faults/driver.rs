//! What a fault run's driver does, on any adapters: delivers each stage's queue to its handler,
//! batch by batch, as the platform would, until nothing is left to deliver.

use std::future::Future;

use leadflow_core::ports::Stage;

/// A driver of the stage queues.
pub trait Driver {
    /// One invocation of `stage`'s handler on the next batch; `false` when the queue had nothing
    /// visible.
    fn invoke(&mut self, stage: Stage) -> impl Future<Output = bool>;

    /// Every stage until none has a visible message.
    fn pump(&mut self) -> impl Future<Output = ()> {
        async move {
            loop {
                let mut any = false;
                for stage in Stage::ALL {
                    while self.invoke(stage).await {
                        any = true;
                    }
                }
                if !any {
                    return;
                }
            }
        }
    }
}
