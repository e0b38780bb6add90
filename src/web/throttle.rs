//! Bounded throttles for what faces the internet: sign-in attempts (by
//! client address, and by account and address) and "send me a fresh link"
//! requests (by address). Each counts attempts per key in a window and
//! answers with how long the key must wait. Memory is bounded: when full,
//! expired keys are dropped, and if none has expired a *new* key is refused
//! rather than an existing one forgotten (a flood of other keys never
//! clears a victim's count).

use std::collections::HashMap;
use std::sync::Mutex;

/// How long a key must wait after its `attempts`-th attempt in a window.
pub type Policy = fn(attempts: u32) -> i64;

#[derive(Debug, Clone, Copy)]
struct Entry {
    attempts: u32,
    first: i64,
    blocked_until: i64,
}

/// Attempts per key, bounded to `cap` keys.
#[derive(Debug)]
pub struct Throttle {
    map: Mutex<HashMap<String, Entry>>,
    cap: usize,
    window_ms: i64,
    policy: Policy,
}

impl Throttle {
    /// A throttle of at most `cap` keys, counting attempts over `window_ms`.
    pub fn new(cap: usize, window_ms: i64, policy: Policy) -> Self {
        Throttle {
            map: Mutex::new(HashMap::new()),
            cap,
            window_ms,
            policy,
        }
    }

    /// Whether `key` is waiting at `now`: `Some(ms)` left to wait. Counts nothing.
    pub fn waiting(&self, key: &str, now: i64) -> Option<i64> {
        let map = self.map.lock().expect("throttle");
        map.get(key)
            .filter(|e| e.blocked_until > now)
            .map(|e| e.blocked_until - now)
    }

    /// Counts an attempt under `key` at `now`, before its outcome is known
    /// (so parallel attempts cannot all pass): `Ok` when it may go ahead,
    /// `Err(ms)` when the key must wait that long first (it still counts).
    pub fn attempt(&self, key: &str, now: i64) -> Result<(), i64> {
        let mut map = self.map.lock().expect("throttle");
        if !map.contains_key(key) && map.len() >= self.cap {
            let window = self.window_ms;
            map.retain(|_, e| now - e.first < window || e.blocked_until > now);
            if map.len() >= self.cap {
                // Flooded with keys still counting: refuse the new one.
                return Err(self.window_ms);
            }
        }
        let e = map.entry(key.to_string()).or_insert(Entry {
            attempts: 0,
            first: now,
            blocked_until: 0,
        });
        if now - e.first >= self.window_ms && e.blocked_until <= now {
            *e = Entry {
                attempts: 0,
                first: now,
                blocked_until: 0,
            };
        }
        let was_blocked = e.blocked_until > now;
        e.attempts = e.attempts.saturating_add(1);
        let wait = (self.policy)(e.attempts);
        if wait > 0 {
            e.blocked_until = e.blocked_until.max(now + wait);
        }
        if was_blocked {
            Err(e.blocked_until - now)
        } else {
            Ok(())
        }
    }

    /// Takes back one attempt of `key` (it turned out well), never below
    /// zero; a wait already set stays.
    pub fn refund(&self, key: &str) {
        if let Some(e) = self.map.lock().expect("throttle").get_mut(key) {
            e.attempts = e.attempts.saturating_sub(1);
        }
    }

    /// Forgets `key` (a successful sign-in).
    pub fn clear(&self, key: &str) {
        self.map.lock().expect("throttle").remove(key);
    }

    /// How many keys are held.
    pub fn len(&self) -> usize {
        self.map.lock().expect("throttle").len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Doubling waits from `free` attempts on: 1 s, 2 s, 4 s … up to `max_ms`.
pub fn doubling(attempts: u32, free: u32, max_ms: i64) -> i64 {
    if attempts < free {
        return 0;
    }
    let steps = (attempts - free).min(30);
    (1000i64 << steps).min(max_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three_then_wait(n: u32) -> i64 {
        doubling(n, 3, 60_000)
    }

    #[test]
    fn waits_double_from_the_free_attempts_on_and_are_capped() {
        assert_eq!(doubling(1, 3, 10_000), 0);
        assert_eq!(doubling(2, 3, 10_000), 0);
        assert_eq!(doubling(3, 3, 10_000), 1000);
        assert_eq!(doubling(4, 3, 10_000), 2000);
        assert_eq!(doubling(7, 3, 10_000), 10_000);
        assert_eq!(doubling(u32::MAX, 3, 10_000), 10_000);
    }

    #[test]
    fn attempts_count_before_their_outcome_and_a_success_clears_them() {
        let t = Throttle::new(100, 60_000, three_then_wait);
        assert_eq!(t.attempt("k", 0), Ok(()));
        assert_eq!(t.attempt("k", 0), Ok(()));
        assert_eq!(
            t.attempt("k", 0),
            Ok(()),
            "the third goes ahead, then waits start"
        );
        assert_eq!(t.waiting("k", 0), Some(1000));
        // Forty more at once: all refused, and the wait grows.
        for _ in 0..40 {
            assert!(t.attempt("k", 10).is_err());
        }
        assert_eq!(t.waiting("k", 10), Some(60_000 - 10 + 10));
        assert_eq!(t.waiting("other", 10), None, "other keys are untouched");
        t.clear("k");
        assert_eq!(t.attempt("k", 20), Ok(()));
    }

    #[test]
    fn a_window_later_the_count_starts_again() {
        let t = Throttle::new(100, 60_000, three_then_wait);
        for _ in 0..3 {
            let _ = t.attempt("k", 0);
        }
        assert!(t.attempt("k", 500).is_err());
        assert_eq!(t.attempt("k", 200_000), Ok(()));
        assert_eq!(t.waiting("k", 200_000), None);
    }

    #[test]
    fn a_flood_of_other_keys_never_clears_a_counted_one() {
        let t = Throttle::new(1000, 60_000, three_then_wait);
        for _ in 0..5 {
            let _ = t.attempt("victim", 0);
        }
        for i in 0..10_000 {
            let _ = t.attempt(&format!("flood{i}"), 1);
        }
        assert!(t.len() <= 1000);
        assert!(t.waiting("victim", 2).is_some());
        assert!(t.attempt("victim", 2).is_err());
        // Once the window has passed, the flood's keys make room again.
        assert_eq!(t.attempt("late", 120_000), Ok(()));
    }
}
