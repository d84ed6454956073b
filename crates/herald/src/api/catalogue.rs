//! The event types, kept in memory for the hot paths (publishing, checking subscriptions).
//!
//! Types are only ever added, never changed or removed, so a cached list is never wrong,
//! only possibly short: a name it lacks (registered on another node, say) reloads it once.

use std::sync::{Arc, RwLock};

use crate::domain::event::EventType;
use crate::store::{Store, StoreResult};

/// The catalogue as last read.
#[derive(Default)]
pub struct Catalogue {
    types: RwLock<Option<Arc<Vec<EventType>>>>,
}

impl Catalogue {
    /// The types, read from the store on first use and whenever `wanted` names one that the
    /// cached list lacks.
    pub async fn types(&self, store: &dyn Store, wanted: &[&str]) -> StoreResult<Arc<Vec<EventType>>> {
        let cached = self.types.read().expect("the catalogue lock is never poisoned").clone();
        if let Some(types) = cached.filter(|types| wanted.iter().all(|w| types.iter().any(|t| t.name == *w))) {
            return Ok(types);
        }
        let types = Arc::new(store.event_types().await?);
        *self.types.write().expect("the catalogue lock is never poisoned") = Some(types.clone());
        Ok(types)
    }

    /// Forgets the list, after a type was registered here.
    pub fn forget(&self) {
        *self.types.write().expect("the catalogue lock is never poisoned") = None;
    }
}
