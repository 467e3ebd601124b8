//! Same-game operations are single-flight: a game is claimed for one
//! operation at a time, and the claim is a value whose drop frees the game,
//! so a task that panics (or returns early) cannot leave it claimed.

use crate::protocol::control::CommandError;
use crate::protocol::control::ErrorCode;
use crate::sync::lock;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// What kind of operation holds a game.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Operation {
    Downloading,
    /// Extracting the root's archives into `local/`.
    Installing,
    /// Extracting archives into `local/` while they download (`stream-install`).
    StreamInstalling,
    /// Removing `local/`.
    Uninstalling,
    /// Applying first-play launch settings.
    Launching,
}

type Table = BTreeMap<String, (Operation, Arc<Notify>)>;

/// Each active operation of a peer and the signal that cancels it.
#[derive(Default)]
pub struct Operations(Arc<Mutex<Table>>);

impl Operations {
    /// Claims a game for `op`; `operation-in-progress` names the operation
    /// already running.
    pub fn begin(&self, game_id: &str, op: Operation) -> Result<OperationClaim, CommandError> {
        let mut ops = lock(&self.0);
        if let Some((existing, _)) = ops.get(game_id) {
            return Err(CommandError::new(
                ErrorCode::OperationInProgress,
                format!("{game_id} already has an active operation ({existing:?})"),
            ));
        }
        let cancel = Arc::new(Notify::new());
        ops.insert(game_id.to_string(), (op, cancel.clone()));
        Ok(OperationClaim {
            table: self.0.clone(),
            game_id: game_id.to_string(),
            cancel,
        })
    }

    /// Asks a running `op` on a game to stop; `false` when no such operation
    /// runs. The game stays claimed until its operation has stopped.
    pub fn cancel(&self, game_id: &str, op: Operation) -> bool {
        match lock(&self.0).get(game_id) {
            Some((running, cancel)) if *running == op => {
                // notify_one keeps a permit, so a cancel that arrives before
                // the operation first waits on the signal is not lost.
                cancel.notify_one();
                true
            }
            _ => false,
        }
    }

    pub fn get(&self, game_id: &str) -> Option<Operation> {
        lock(&self.0).get(game_id).map(|(op, _)| *op)
    }

    pub fn all(&self) -> BTreeMap<String, Operation> {
        lock(&self.0)
            .iter()
            .map(|(g, (op, _))| (g.clone(), *op))
            .collect()
    }
}

/// A game claimed for an operation; dropping it frees the game.
#[must_use = "dropping the claim frees the game at once"]
pub struct OperationClaim {
    table: Arc<Mutex<Table>>,
    game_id: String,
    cancel: Arc<Notify>,
}

impl OperationClaim {
    pub fn game_id(&self) -> &str {
        &self.game_id
    }

    /// Hands the game over to its next operation (download → install)
    /// without a gap in which another request could claim it.
    pub fn switch(&self, op: Operation) {
        if let Some(entry) = lock(&self.table).get_mut(&self.game_id)
            && Arc::ptr_eq(&entry.1, &self.cancel)
        {
            entry.0 = op;
        }
    }

    /// Completes once the operation is cancelled (`Operations::cancel`).
    pub fn cancelled(&self) -> tokio::sync::futures::Notified<'_> {
        self.cancel.notified()
    }
}

impl Drop for OperationClaim {
    fn drop(&mut self) {
        let mut ops = lock(&self.table);
        // Only this claim's own entry (its signal identifies it).
        if ops
            .get(&self.game_id)
            .is_some_and(|(_, c)| Arc::ptr_eq(c, &self.cancel))
        {
            ops.remove(&self.game_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::panic::{AssertUnwindSafe, catch_unwind};

    fn begin(ops: &Operations, game_id: &str, op: Operation) -> anyhow::Result<OperationClaim> {
        ops.begin(game_id, op)
            .map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.message))
    }

    #[test]
    fn a_game_is_claimed_once_and_freed_when_the_claim_drops() {
        let ops = Operations::default();
        let claim = ops.begin("g", Operation::Downloading);
        assert!(claim.is_ok());
        let again = ops.begin("g", Operation::Installing);
        assert!(again.is_err_and(
            |e| e.code == ErrorCode::OperationInProgress && e.message.contains("Downloading")
        ));
        // Other games are independent.
        assert!(ops.begin("h", Operation::Installing).is_ok());
        assert_eq!(ops.get("h"), None, "the temporary claim on h dropped");
        if let Ok(claim) = &claim {
            claim.switch(Operation::Installing);
        }
        assert_eq!(ops.get("g"), Some(Operation::Installing));
        assert!(!ops.cancel("g", Operation::Downloading));
        assert!(ops.cancel("g", Operation::Installing));
        drop(claim);
        assert!(ops.all().is_empty());
        assert!(ops.begin("g", Operation::Uninstalling).is_ok());
    }

    #[test]
    fn a_panic_while_holding_a_claim_frees_the_game() {
        let ops = Operations::default();
        let panicked = catch_unwind(AssertUnwindSafe(|| {
            let _claim = ops.begin("g", Operation::Launching);
            panic!("operation panicked");
        }));
        assert!(panicked.is_err());
        assert_eq!(ops.get("g"), None);
        assert!(ops.begin("g", Operation::Launching).is_ok());
    }

    #[test]
    fn a_panicking_task_frees_the_game() -> anyhow::Result<()> {
        let rt = tokio::runtime::Builder::new_current_thread().build()?;
        rt.block_on(async {
            let ops = Operations::default();
            let claim = begin(&ops, "g", Operation::Downloading)?;
            let task = tokio::spawn(async move {
                let _claim = claim;
                panic!("download task panicked");
            });
            assert!(task.await.is_err_and(|e| e.is_panic()));
            assert_eq!(ops.get("g"), None);
            let _again = begin(&ops, "g", Operation::Downloading)?;
            Ok(())
        })
    }

    #[test]
    fn a_cancel_before_the_operation_waits_is_kept() -> anyhow::Result<()> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()?;
        rt.block_on(async {
            let ops = Operations::default();
            let claim = begin(&ops, "g", Operation::StreamInstalling)?;
            assert!(ops.cancel("g", Operation::StreamInstalling));
            let waited =
                tokio::time::timeout(std::time::Duration::from_secs(5), claim.cancelled()).await;
            assert!(waited.is_ok());
            Ok(())
        })
    }
}
