//! A bounded memo of what one policy found in one text.
//!
//! Why: chat clients send the whole conversation on every call, so the
//! system prompt and every earlier turn come back again and again; only the
//! newest message is new. What a policy finds in a text depends only on the
//! policy, the direction, the role and the text itself (the segment's place
//! in the request is attached afterwards), so a text seen before needs no
//! scan at all. The key holds the full text, not just its hash: a hit is
//! always the same text, so a cached result is exactly what a scan would
//! give.
//!
//! Memory is bounded by a byte budget split over two generations: new
//! entries go into the current one; when it holds half the budget it
//! becomes the previous one and the older previous one is dropped. A text
//! found in the previous generation is moved back into the current one, so
//! what is used stays and what is not ages out, with no per-entry
//! bookkeeping (an approximation of least-recently-used).

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::Fired;
use crate::policy::{Direction, Role};

/// What one text produced: the rules that fired, each with the decoding
/// chain of the payload it fired on (`None` for the text as sent).
pub(crate) type Found = Vec<(Fired, Option<String>)>;

/// Bytes counted for an entry besides its text and findings (map slot,
/// allocation headers).
const ENTRY_OVERHEAD: usize = 96;

/// Bytes counted per cached finding (its spans and strings, roughly).
const FINDING_COST: usize = 192;

/// The memo; one per compiled policy, shared by the requests that use it.
pub struct SegmentCache {
    budget: usize,
    hasher: RandomState,
    generations: Mutex<Generations>,
    hits: AtomicU64,
    misses: AtomicU64,
}

#[derive(Default)]
struct Generations {
    current: HashMap<u64, Entry>,
    current_bytes: usize,
    previous: HashMap<u64, Entry>,
}

struct Entry {
    direction: Direction,
    role: Role,
    text: Box<str>,
    found: Found,
}

impl Entry {
    fn cost(&self) -> usize {
        ENTRY_OVERHEAD + self.text.len() + self.found.len() * FINDING_COST
    }

    fn is(&self, direction: Direction, role: Role, text: &str) -> bool {
        self.direction == direction && self.role == role && &*self.text == text
    }
}

/// Hit and miss counts since the cache was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// Texts answered from the cache.
    pub hits: u64,
    /// Texts scanned (and then kept, if they fit).
    pub misses: u64,
}

impl SegmentCache {
    /// A cache that keeps at most about `budget_bytes` of texts and
    /// findings; 0 keeps nothing.
    pub fn new(budget_bytes: usize) -> Self {
        Self {
            budget: budget_bytes,
            hasher: RandomState::new(),
            generations: Mutex::new(Generations::default()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Whether it keeps anything at all.
    pub fn enabled(&self) -> bool {
        self.budget > 0
    }

    /// Hits and misses so far.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    /// Bytes held now (as counted against the budget).
    pub fn held_bytes(&self) -> usize {
        let generations = self.lock();
        generations.current_bytes
            + generations
                .previous
                .values()
                .map(Entry::cost)
                .sum::<usize>()
    }

    fn key(&self, direction: Direction, role: Role, text: &str) -> u64 {
        let mut hasher = self.hasher.build_hasher();
        direction.hash(&mut hasher);
        role.hash(&mut hasher);
        text.hash(&mut hasher);
        hasher.finish()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Generations> {
        match self.generations.lock() {
            Ok(guard) => guard,
            // A panic elsewhere while holding the lock leaves plain data
            // behind; at worst an entry is missing.
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// What `scan` finds in `text`, from the cache when this text was seen
    /// in this direction and role before. `scan` runs outside the lock.
    pub(crate) fn get_or_scan(
        &self,
        direction: Direction,
        role: Role,
        text: &str,
        scan: impl FnOnce() -> Found,
    ) -> Found {
        if !self.enabled() {
            return scan();
        }
        let key = self.key(direction, role, text);
        if let Some(found) = self.lookup(key, direction, role, text) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return found;
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let found = scan();
        self.insert(
            key,
            Entry {
                direction,
                role,
                text: text.into(),
                found: found.clone(),
            },
        );
        found
    }

    fn lookup(&self, key: u64, direction: Direction, role: Role, text: &str) -> Option<Found> {
        let mut generations = self.lock();
        if let Some(entry) = generations.current.get(&key) {
            return entry.is(direction, role, text).then(|| entry.found.clone());
        }
        let entry = generations.previous.remove(&key)?;
        if !entry.is(direction, role, text) {
            return None;
        }
        let found = entry.found.clone();
        self.insert_locked(&mut generations, key, entry);
        Some(found)
    }

    fn insert(&self, key: u64, entry: Entry) {
        let mut generations = self.lock();
        self.insert_locked(&mut generations, key, entry);
    }

    fn insert_locked(&self, generations: &mut Generations, key: u64, entry: Entry) {
        let half = self.budget / 2;
        let cost = entry.cost();
        if cost > half {
            return;
        }
        if generations.current_bytes + cost > half {
            generations.previous = std::mem::take(&mut generations.current);
            generations.current_bytes = 0;
        }
        if let Some(old) = generations.current.insert(key, entry) {
            generations.current_bytes -= old.cost().min(generations.current_bytes);
        }
        generations.current_bytes += cost;
    }
}

impl std::fmt::Debug for SegmentCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentCache")
            .field("budget", &self.budget)
            .field("stats", &self.stats())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Action, Severity};
    use std::cell::Cell;

    fn fired(rule: &str, start: usize) -> Fired {
        Fired {
            score: 1.0,
            span: start..start + 3,
            redact_spans: std::iter::once(start..start + 3).collect(),
            action: Action::Block,
            direction: Direction::Input,
            policy_rule_id: rule.into(),
            category: None,
            severity: Severity::High,
            monitor: false,
        }
    }

    /// Runs `get_or_scan` and says whether the scan ran.
    fn scanned(cache: &SegmentCache, role: Role, text: &str) -> bool {
        let ran = Cell::new(false);
        let found = cache.get_or_scan(Direction::Input, role, text, || {
            ran.set(true);
            vec![(fired(text, 1), Some("base64".into()))]
        });
        assert_eq!(found.len(), 1);
        assert_eq!(&*found[0].0.policy_rule_id, text, "the entry of this text");
        assert_eq!(found[0].1.as_deref(), Some("base64"));
        ran.get()
    }

    #[test]
    fn a_text_seen_before_is_not_scanned_again() {
        let cache = SegmentCache::new(1 << 20);
        assert!(scanned(&cache, Role::User, "first"));
        assert!(!scanned(&cache, Role::User, "first"));
        assert!(scanned(&cache, Role::User, "second"));
        assert_eq!(cache.stats(), CacheStats { hits: 1, misses: 2 });
    }

    #[test]
    fn role_and_direction_are_part_of_the_key() {
        let cache = SegmentCache::new(1 << 20);
        assert!(scanned(&cache, Role::User, "same text"));
        assert!(scanned(&cache, Role::Tool, "same text"));
        let ran = Cell::new(false);
        cache.get_or_scan(Direction::Output, Role::User, "same text", || {
            ran.set(true);
            Vec::new()
        });
        assert!(ran.get(), "an answer is not a request");
    }

    #[test]
    fn a_zero_budget_keeps_nothing() {
        let cache = SegmentCache::new(0);
        assert!(scanned(&cache, Role::User, "text"));
        assert!(scanned(&cache, Role::User, "text"));
        assert_eq!(cache.held_bytes(), 0);
    }

    #[test]
    fn memory_stays_within_the_budget_and_used_entries_survive() {
        let budget = 64 * 1024;
        let cache = SegmentCache::new(budget);
        let hot = "a text asked about again and again";
        for i in 0..2000 {
            scanned(&cache, Role::User, &format!("{i} {}", "x".repeat(i % 300)));
            assert!(cache.held_bytes() <= budget, "{} bytes", cache.held_bytes());
            if i % 50 == 0 {
                scanned(&cache, Role::User, hot);
            }
        }
        assert!(!scanned(&cache, Role::User, hot), "kept while in use");
        assert!(scanned(&cache, Role::User, "0 "), "old entries age out");
        let huge = "y".repeat(budget);
        assert!(scanned(&cache, Role::User, &huge));
        assert!(scanned(&cache, Role::User, &huge), "too big to keep");
    }
}
