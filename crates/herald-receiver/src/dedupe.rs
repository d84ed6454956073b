//! Dropping duplicates: Herald delivers at least once, so the same `webhook-id` may arrive
//! twice (a retry after a lost answer, a replay). A receiver remembers the ids it handled.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Remembers which `webhook-id`s were handled. Implement it over your own store (a unique
/// key in your database) to share it between processes.
pub trait Deduplicate: Send + Sync {
    /// Whether `id` is new, remembering it if so.
    fn first_time(&self, id: &str) -> bool;
    /// Forgets `id`, so that a retry is handled again (after processing failed, say).
    fn forget(&self, id: &str);
}

/// In memory, up to `capacity` ids, each for `ttl`: enough to drop the retries and replays
/// of the last hours in one process.
pub struct MemoryDeduplicator {
    capacity: usize,
    ttl: Duration,
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    ids: HashMap<String, Instant>,
    order: VecDeque<(Instant, String)>,
}

impl MemoryDeduplicator {
    pub fn new(capacity: usize, ttl: Duration) -> MemoryDeduplicator {
        MemoryDeduplicator {
            capacity: capacity.max(1),
            ttl,
            seen: Mutex::default(),
        }
    }

    fn first_time_at(&self, id: &str, now: Instant) -> bool {
        let mut seen = self.seen.lock().expect("the deduplicator lock is never poisoned");
        let Seen { ids, order } = &mut *seen;
        let live = |at: &Instant| now.duration_since(*at) < self.ttl;
        if ids.get(id).is_some_and(live) {
            return false;
        }
        // Make room: drop expired ids, and the oldest ones past the capacity.
        while let Some((at, oldest)) = order.front() {
            if live(at) && ids.len() < self.capacity {
                break;
            }
            // The queue may hold ids forgotten or seen again since; drop only the live entry.
            if ids.get(oldest) == Some(at) {
                ids.remove(oldest);
            }
            order.pop_front();
        }
        ids.insert(id.to_owned(), now);
        order.push_back((now, id.to_owned()));
        true
    }
}

impl Default for MemoryDeduplicator {
    /// 100,000 ids for 24 hours.
    fn default() -> MemoryDeduplicator {
        MemoryDeduplicator::new(100_000, Duration::from_secs(24 * 3600))
    }
}

impl Deduplicate for MemoryDeduplicator {
    fn first_time(&self, id: &str) -> bool {
        self.first_time_at(id, Instant::now())
    }

    fn forget(&self, id: &str) {
        self.seen
            .lock()
            .expect("the deduplicator lock is never poisoned")
            .ids
            .remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_new_once_until_it_expires_or_is_forgotten() {
        let d = MemoryDeduplicator::new(10, Duration::from_secs(60));
        let t0 = Instant::now();
        assert!(d.first_time_at("evt_1", t0));
        assert!(!d.first_time_at("evt_1", t0 + Duration::from_secs(59)));
        assert!(d.first_time_at("evt_1", t0 + Duration::from_secs(61)), "expired");
        d.forget("evt_1");
        assert!(d.first_time("evt_1"), "forgotten");
    }

    #[test]
    fn the_oldest_ids_make_room_past_the_capacity() {
        let d = MemoryDeduplicator::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        assert!(d.first_time_at("a", t0));
        assert!(d.first_time_at("b", t0));
        assert!(d.first_time_at("c", t0));
        assert!(!d.first_time_at("c", t0) && !d.first_time_at("b", t0));
        assert!(d.first_time_at("a", t0), "a was dropped to keep two");
    }
}
