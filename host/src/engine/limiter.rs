//! The run's memory budget: `--memory` caps the whole run, not each linear
//! memory. Every linear memory and every table of every core instance of the
//! component draws from one budget (wasmtime's own `StoreLimits` checks each
//! memory on its own, so 16 core instances each got the full cap), and the
//! number of instances, memories and tables is capped too: each costs host
//! memory and address space that no growth call reports.
//!
//! wasmtime calls the limiter at instantiation (growth from 0 to the initial
//! size) and at every `memory.grow` / `table.grow`; a refusal is a trap
//! ([`MemoryLimit`]), so the script stops with exit status 3 instead of
//! seeing a -1 it might ignore.

use wasmtime::ResourceLimiter;

/// Most core instances one run may create. A Rust script has a handful,
/// componentize-py's Python runtime a few dozen; each costs host memory the
/// budget does not see (its context, its imports).
pub const MAX_INSTANCES: usize = 1000;
/// Most linear memories one run may create: each reserves gigabytes of
/// address space and guard pages beyond what it uses.
pub const MAX_MEMORIES: usize = 100;
/// Most tables one run may create.
pub const MAX_TABLES: usize = 1000;

/// What a table element costs the host: wasmtime stores one pointer each.
const TABLE_ELEMENT_BYTES: usize = std::mem::size_of::<usize>();

/// The trap raised when a growth would take the run past its budget.
#[derive(Debug, thiserror::Error)]
#[error(
    "memory limit: the script tried to use more than {} MiB (--memory) in all its memories and tables \
     together ({what} of {requested} bytes refused with {used} bytes in use)",
    .limit >> 20
)]
pub struct MemoryLimit {
    pub limit: usize,
    pub used: usize,
    pub requested: usize,
    pub what: &'static str,
}

/// One run's budget, shared by every memory and table of its store.
pub struct RunLimiter {
    limit: usize,
    used: usize,
    /// The growth allowed last, given back if wasmtime then fails it (a
    /// declared maximum, the OS): a failed growth must not use up the budget.
    pending: usize,
}

impl RunLimiter {
    pub fn new(limit: usize) -> Self {
        Self { limit, used: 0, pending: 0 }
    }

    /// Bytes of memories and tables in use, as counted so far.
    #[cfg(test)]
    pub fn used(&self) -> usize {
        self.used
    }

    fn grow(&mut self, what: &'static str, current: usize, desired: usize) -> wasmtime::Result<bool> {
        let delta = desired.saturating_sub(current);
        match self.used.checked_add(delta) {
            Some(total) if total <= self.limit => {
                self.used = total;
                self.pending = delta;
                Ok(true)
            }
            _ => Err(MemoryLimit { limit: self.limit, used: self.used, requested: delta, what }.into()),
        }
    }

    fn grow_failed(&mut self) {
        self.used -= self.pending;
        self.pending = 0;
    }
}

impl ResourceLimiter for RunLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.grow("a memory growth", current, desired)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.grow_failed();
        Ok(())
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let bytes = |n: usize| n.saturating_mul(TABLE_ELEMENT_BYTES);
        self.grow("a table growth", bytes(current), bytes(desired))
    }

    fn table_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.grow_failed();
        Ok(())
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_memory_and_table_draws_from_one_budget() {
        let mut l = RunLimiter::new(4 << 20);
        // Two memories of 2 MiB each fit; a third byte-page does not.
        assert!(l.memory_growing(0, 2 << 20, None).unwrap());
        assert!(l.memory_growing(0, 2 << 20, None).unwrap());
        let e = l.memory_growing(0, 64 << 10, None).unwrap_err();
        assert!(e.downcast_ref::<MemoryLimit>().is_some(), "{e}");
        assert!(e.to_string().contains("4 MiB"), "{e}");
        // Tables count too, at a pointer per element.
        let mut l = RunLimiter::new(1 << 20);
        assert!(l.table_growing(0, (1 << 20) / TABLE_ELEMENT_BYTES, None).unwrap());
        assert!(l.table_growing(10, 11, None).is_err());
    }

    #[test]
    fn a_failed_growth_gives_its_bytes_back() {
        let mut l = RunLimiter::new(1 << 20);
        assert!(l.memory_growing(0, 1 << 20, None).unwrap());
        l.memory_grow_failed(wasmtime::Error::msg("declared maximum")).unwrap();
        assert_eq!(l.used(), 0);
        assert!(l.memory_growing(0, 1 << 20, None).unwrap());
    }
}
