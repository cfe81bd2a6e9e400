//! How many requests run in an instance at once. The limit adapts between a floor and a
//! ceiling on the races the component reports (`Hostnaming-Conflicts`): an answer that lost
//! a check-and-set halves it, because on one hot counter every extra racer only adds a lost
//! write; a run of clean answers as long as the limit raises it by one, because distinct
//! tuples, and a slow (durable) Vault, want many requests in flight. A hot counter mixes
//! clean answers with lost races, so it never gets the run. Answers without the header
//! leave the limit alone.

use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The response header the component reports lost races in.
pub const CONFLICTS_HEADER: &str = "hostnaming-conflicts";

pub struct Admission {
    semaphore: Arc<Semaphore>,
    state: Mutex<Limits>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Limits {
    limit: usize,
    floor: usize,
    ceiling: usize,
    /// Permits to retire as they come back, after the limit was lowered below what is in
    /// flight (a running request keeps its permit).
    debt: usize,
    /// Clean answers since the last change or lost race.
    clean: usize,
}

/// A turn to run; returning it gives the turn to the next waiter, unless the limit fell.
pub struct Permit {
    permit: Option<OwnedSemaphorePermit>,
    admission: Arc<Admission>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut state = self.admission.state.lock().expect("admission lock");
        if let Some(permit) = self.permit.take() {
            if state.debt > 0 {
                state.debt -= 1;
                permit.forget();
            }
        }
    }
}

impl Admission {
    /// Exactly `n` (at least 1) at once, whatever the answers say.
    pub fn fixed(n: usize) -> Arc<Self> {
        let n = n.max(1);
        Self::adaptive(n, n, n)
    }

    /// Starts at `start` and moves between `floor` and `ceiling` (each at least 1).
    pub fn adaptive(start: usize, floor: usize, ceiling: usize) -> Arc<Self> {
        let floor = floor.max(1);
        let ceiling = ceiling.max(floor);
        let limit = start.clamp(floor, ceiling);
        Arc::new(Self {
            semaphore: Arc::new(Semaphore::new(limit)),
            state: Mutex::new(Limits {
                limit,
                floor,
                ceiling,
                debt: 0,
                clean: 0,
            }),
        })
    }

    /// Waits for a turn.
    pub async fn acquire(self: &Arc<Self>) -> Permit {
        let permit = self.semaphore.clone().acquire_owned().await;
        Permit {
            permit: Some(permit.expect("the admission semaphore is never closed")),
            admission: self.clone(),
        }
    }

    /// Learns from one answer that reported `conflicts` lost races.
    pub fn observe(&self, conflicts: u32) {
        let mut state = self.state.lock().expect("admission lock");
        if conflicts > 0 {
            let lower = (state.limit / 2).max(state.floor);
            let cut = state.limit - lower;
            // Free turns go at once; turns held by running requests as those finish.
            let retired = self.semaphore.forget_permits(cut);
            state.debt += cut - retired;
            state.limit = lower;
            state.clean = 0;
            return;
        }
        state.clean += 1;
        if state.clean >= state.limit && state.limit < state.ceiling {
            state.clean = 0;
            state.limit += 1;
            if state.debt > 0 {
                state.debt -= 1;
            } else {
                self.semaphore.add_permits(1);
            }
        }
    }

    /// The current limit.
    pub fn limit(&self) -> usize {
        self.state.lock().expect("admission lock").limit
    }

    /// The most the limit may rise to.
    pub fn ceiling(&self) -> usize {
        self.state.lock().expect("admission lock").ceiling
    }

    /// Requests holding a turn now.
    pub fn running(&self) -> usize {
        let state = self.state.lock().expect("admission lock");
        (state.limit + state.debt).saturating_sub(self.semaphore.available_permits())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now<F: std::future::Future>(f: F) -> Option<F::Output> {
        use std::pin::pin;
        use std::task::{Context, Poll, Waker};
        match pin!(f).poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(v) => Some(v),
            Poll::Pending => None,
        }
    }

    #[test]
    fn a_fixed_admission_never_moves() {
        let a = Admission::fixed(3);
        a.observe(5);
        a.observe(0);
        assert_eq!(a.limit(), 3);
    }

    #[test]
    fn a_lost_race_halves_the_limit_down_to_the_floor() {
        let a = Admission::adaptive(16, 2, 32);
        a.observe(1);
        assert_eq!(a.limit(), 8);
        a.observe(3);
        a.observe(1);
        a.observe(1);
        assert_eq!(a.limit(), 2);
    }

    #[test]
    fn a_run_of_clean_answers_as_long_as_the_limit_raises_it_by_one() {
        let a = Admission::adaptive(4, 2, 6);
        for _ in 0..3 {
            a.observe(0);
        }
        assert_eq!(a.limit(), 4);
        a.observe(0);
        assert_eq!(a.limit(), 5);
        for _ in 0..20 {
            a.observe(0);
        }
        assert_eq!(a.limit(), 6, "no higher than the ceiling");
    }

    #[test]
    fn clean_answers_mixed_with_lost_races_never_raise_the_limit() {
        let a = Admission::adaptive(4, 4, 16);
        for _ in 0..50 {
            a.observe(0);
            a.observe(0);
            a.observe(0);
            a.observe(2);
        }
        assert_eq!(a.limit(), 4);
    }

    #[test]
    fn a_raised_limit_admits_one_more_request_at_once() {
        let a = Admission::adaptive(1, 1, 2);
        let _first = now(a.acquire()).unwrap();
        assert!(now(a.acquire()).is_none(), "one at a time");
        a.observe(0);
        let _second = now(a.acquire()).expect("a turn");
        assert_eq!(a.running(), 2);
    }

    #[test]
    fn a_lowered_limit_retires_turns_as_running_requests_finish() {
        let a = Admission::adaptive(4, 1, 4);
        let held: Vec<_> = (0..4).map(|_| now(a.acquire()).unwrap()).collect();
        a.observe(1); // down to 2 while 4 run
        assert_eq!(a.limit(), 2);
        assert_eq!(a.running(), 4);
        let mut held = held.into_iter();
        drop(held.next());
        drop(held.next());
        assert!(now(a.acquire()).is_none(), "two still run, the new limit");
        drop(held.next());
        let third = now(a.acquire()).expect("one turn free");
        assert!(now(a.acquire()).is_none(), "and only one");
        assert_eq!(a.running(), 2);
        drop(third);
        drop(held);
        assert_eq!(a.running(), 0);
    }

    #[test]
    fn a_lowered_limit_takes_effect_at_once_when_turns_are_free() {
        let a = Admission::adaptive(8, 1, 8);
        let running: Vec<_> = (0..2).map(|_| now(a.acquire()).unwrap()).collect();
        a.observe(1); // 4 while 2 run: two more may start, not six
        let more: Vec<_> = (0..2).map(|_| now(a.acquire()).unwrap()).collect();
        assert!(now(a.acquire()).is_none());
        assert_eq!(a.running(), 4);
        drop((running, more));
        assert_eq!(a.running(), 0);
    }

    #[test]
    fn raising_the_limit_first_cancels_turns_still_owed() {
        let a = Admission::adaptive(4, 1, 4);
        let held: Vec<_> = (0..4).map(|_| now(a.acquire()).unwrap()).collect();
        a.observe(1); // 2, owing 2
        a.observe(0);
        a.observe(0); // a run of 2 clean: 3, owing 1
        drop(held);
        // Three turns, not four: one of the four returned was retired.
        let three: Vec<_> = (0..3).map(|_| now(a.acquire()).unwrap()).collect();
        assert!(now(a.acquire()).is_none());
        assert_eq!(a.running(), 3);
        drop(three);
    }
}
