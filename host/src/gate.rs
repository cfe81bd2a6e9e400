//! Read-then-write gates: one instance at a time between reading a URL path and writing it
//! back. A check-and-set counter read by several instances at once lets only one of their
//! writes win; the rest cost Vault a refused write and another read each. Holding a
//! per-path gate from an instance's GET until its write to the same path is answered (or
//! until it sends anything else, or ends) queues the racers in this host instead, so on
//! one hot counter they take turns rather than losing races. Check-and-set still decides:
//! a gate only orders this host's own instances, never other hosts, and never changes an
//! answer. Each instance holds at most one gate and lets it go before asking for another,
//! so no two instances can wait on each other.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

/// Paths with a holder or waiters; an idle path's entry is removed when its holder leaves.
#[derive(Default)]
pub struct Gates {
    paths: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// The gate of one path, held; dropping it lets the next waiter in.
pub struct HeldGate {
    path: String,
    guard: Option<OwnedMutexGuard<()>>,
    gates: Arc<Gates>,
}

impl HeldGate {
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl Drop for HeldGate {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut paths = self.gates.paths.lock().expect("gates lock");
        // Only the map's own reference left: nobody holds or awaits this path.
        if paths
            .get(&self.path)
            .is_some_and(|m| Arc::strong_count(m) == 1)
        {
            paths.remove(&self.path);
        }
    }
}

/// Entries left behind by waiters that gave up (their futures dropped mid-wait) are swept
/// once the map grows past this.
const SWEEP_ABOVE: usize = 4096;

impl Gates {
    /// Waits until no other instance holds `path`'s gate, then holds it.
    pub async fn enter(self: &Arc<Self>, path: &str) -> HeldGate {
        let gate = {
            let mut paths = self.paths.lock().expect("gates lock");
            if paths.len() > SWEEP_ABOVE {
                paths.retain(|_, m| Arc::strong_count(m) > 1);
            }
            paths.entry(path.to_owned()).or_default().clone()
        };
        let guard = gate.lock_owned().await;
        HeldGate {
            path: path.to_owned(),
            guard: Some(guard),
            gates: self.clone(),
        }
    }

    /// Paths with a holder or waiters.
    pub fn busy(&self) -> usize {
        self.paths.lock().expect("gates lock").len()
    }
}

/// What one instance holds, shared between its outgoing requests' tasks.
#[derive(Default, Clone)]
pub struct Slot(Arc<Mutex<Option<HeldGate>>>);

impl Slot {
    /// Takes the held gate out, if any.
    pub fn take(&self) -> Option<HeldGate> {
        self.0.lock().expect("slot lock").take()
    }

    /// Keeps `held` until the instance's next outgoing request, or its end.
    pub fn keep(&self, held: HeldGate) {
        *self.0.lock().expect("slot lock") = Some(held);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Another instance asking for `path`'s gate, in a task of its own.
    fn enter_later(gates: &Arc<Gates>, path: &'static str) -> tokio::task::JoinHandle<HeldGate> {
        let gates = gates.clone();
        tokio::spawn(async move { gates.enter(path).await })
    }

    #[tokio::test]
    async fn a_second_instance_waits_until_the_holder_lets_the_path_go() {
        let gates = Arc::new(Gates::default());
        let first = gates.enter("/v1/kv/data/a/counter").await;
        let waiting = enter_later(&gates, "/v1/kv/data/a/counter");
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "entered while the gate was held");
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the waiter never got in")
            .unwrap();
        assert_eq!(second.path(), "/v1/kv/data/a/counter");
    }

    #[tokio::test]
    async fn different_paths_do_not_wait_for_each_other() {
        let gates = Arc::new(Gates::default());
        let _a = gates.enter("/v1/kv/data/a/counter").await;
        let b = tokio::time::timeout(Duration::from_secs(1), gates.enter("/v1/kv/data/b/counter"))
            .await
            .expect("a different path waited");
        assert_eq!(b.path(), "/v1/kv/data/b/counter");
    }

    #[tokio::test]
    async fn an_idle_path_leaves_nothing_behind() {
        let gates = Arc::new(Gates::default());
        let a = gates.enter("/a").await;
        let waiting = enter_later(&gates, "/a");
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(a);
        assert_eq!(gates.busy(), 1, "the waiter's entry went while it waited");
        drop(waiting.await.unwrap());
        assert_eq!(gates.busy(), 0);
    }
}
