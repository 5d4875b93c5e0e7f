//! Per-instance memory of what never changes about a key once made: the data space it
//! reaches (its org and mode). Never its scopes, limits, allowlist, revocation or expiry,
//! which authentication reads afresh on every request. Filled only after an authentication
//! that succeeded; bounded (the oldest entry goes first). A warm instance uses it to start
//! a read's data call beside authentication (`edge::speculation`).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::keys::token::KeyHash;
use crate::org::OrgId;

/// Keys remembered per instance (a hash and an org id each: well under a megabyte).
pub const KEY_FACTS_CAPACITY: usize = 4096;

#[derive(Debug, Default)]
struct Remembered {
    spaces: HashMap<KeyHash, OrgId>,
    order: VecDeque<KeyHash>,
}

#[derive(Debug)]
pub struct KeyFacts {
    capacity: usize,
    remembered: Mutex<Remembered>,
}

impl Default for KeyFacts {
    fn default() -> Self {
        Self::with_capacity(KEY_FACTS_CAPACITY)
    }
}

impl KeyFacts {
    /// At most `capacity` keys; zero remembers none, so every read is cold (the bench's
    /// side-by-side baseline).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            capacity,
            remembered: Mutex::default(),
        }
    }

    /// The data space of the key with this hash, if an authentication here succeeded for it.
    pub fn space_of(&self, hash: &KeyHash) -> Option<OrgId> {
        self.remembered
            .lock()
            .ok()
            .and_then(|r| r.spaces.get(hash).cloned())
    }

    /// After an authentication that succeeded: the key's data space.
    pub fn remember(&self, hash: &KeyHash, space: &OrgId) {
        if self.capacity == 0 {
            return;
        }
        let Ok(mut r) = self.remembered.lock() else {
            return;
        };
        if r.spaces.get(hash) == Some(space) {
            return;
        }
        if r.spaces.insert(hash.clone(), space.clone()).is_none() {
            r.order.push_back(hash.clone());
        }
        while r.order.len() > self.capacity {
            if let Some(oldest) = r.order.pop_front() {
                r.spaces.remove(&oldest);
            }
        }
    }

    /// After an authentication refused the key as unknown, revoked or expired: it is no
    /// longer worth a read beside authentication (a leaked key's flood costs one call each).
    pub fn forget(&self, hash: &KeyHash) {
        let Ok(mut r) = self.remembered.lock() else {
            return;
        };
        if r.spaces.remove(hash).is_some() {
            r.order.retain(|h| h != hash);
        }
    }

    pub fn len(&self) -> usize {
        self.remembered.lock().map(|r| r.spaces.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What the warm reads of this instance did: data calls started beside authentication, and
/// how many were used or thrown away (authentication refused, or named another space).
#[derive(Debug, Default)]
pub struct SpeculationStats {
    started: AtomicU64,
    used: AtomicU64,
    wasted: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SpeculationCounts {
    pub started: u64,
    pub used: u64,
    pub wasted: u64,
}

impl SpeculationStats {
    pub fn started(&self) {
        self.started.fetch_add(1, Ordering::Relaxed);
    }

    pub fn used(&self) {
        self.used.fetch_add(1, Ordering::Relaxed);
    }

    pub fn wasted(&self) {
        self.wasted.fetch_add(1, Ordering::Relaxed);
    }

    pub fn counts(&self) -> SpeculationCounts {
        SpeculationCounts {
            started: self.started.load(Ordering::Relaxed),
            used: self.used.load(Ordering::Relaxed),
            wasted: self.wasted.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::token::ApiKeyToken;
    use crate::org::Mode;

    fn hash() -> KeyHash {
        ApiKeyToken::generate(Mode::Live).unwrap().hash()
    }

    #[test]
    fn remembers_what_it_was_told_and_forgets_the_oldest_past_its_bound() {
        let facts = KeyFacts::with_capacity(2);
        let acme = OrgId::parse("acme").unwrap();
        let (a, b, c) = (hash(), hash(), hash());
        assert_eq!(facts.space_of(&a), None, "nothing before an authentication");
        facts.remember(&a, &acme);
        facts.remember(&a, &acme);
        facts.remember(&b, &acme.data_space(Mode::Test));
        assert_eq!(facts.space_of(&a), Some(acme.clone()));
        assert_eq!(facts.space_of(&b), Some(acme.data_space(Mode::Test)));
        facts.remember(&c, &acme);
        assert_eq!(facts.len(), 2);
        assert_eq!(facts.space_of(&a), None, "the oldest went first");
        assert_eq!(facts.space_of(&c), Some(acme.clone()));
        facts.forget(&c);
        assert_eq!(facts.space_of(&c), None);
        assert_eq!(facts.len(), 1);
        facts.remember(&a, &acme);
        assert_eq!(facts.len(), 2, "forgetting freed its place");
        let none = KeyFacts::with_capacity(0);
        none.remember(&a, &acme);
        assert!(none.is_empty());
    }
}
