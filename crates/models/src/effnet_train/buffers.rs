//! Activation buffers kept from one training step to the next.

use std::sync::Mutex;

/// Large f32 buffers kept from step to step. Activations of a training step take about 1 GB at 224x224
/// batch 16; allocating them fresh every step costs a page fault per 4 KB (15 % of a step), so buffers
/// are handed back here and reused (best fit by capacity). Their contents are stale: every user
/// overwrites the whole buffer. [`EfficientNetTrainer::release_buffers`](super::EfficientNetTrainer::release_buffers) frees them.
#[derive(Default)]
pub(super) struct BufferPool(Mutex<Vec<Vec<f32>>>);

impl BufferPool {
    /// A buffer of `len` values with unspecified contents.
    pub(super) fn take(&self, len: usize) -> Vec<f32> {
        let mut pool = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let best = pool
            .iter()
            .enumerate()
            .filter(|(_, v)| v.capacity() >= len)
            .min_by_key(|(_, v)| v.capacity())
            .map(|(i, _)| i);
        let mut v = best.map(|i| pool.swap_remove(i)).unwrap_or_default();
        drop(pool);
        if v.len() >= len {
            v.truncate(len);
        } else {
            v.resize(len, 0.0);
        }
        v
    }

    pub(super) fn give(&self, v: Vec<f32>) {
        if v.capacity() >= 1 << 14 {
            self.0.lock().unwrap_or_else(|e| e.into_inner()).push(v);
        }
    }

    pub(super) fn clear(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

impl Clone for BufferPool {
    fn clone(&self) -> Self {
        BufferPool::default()
    }
}

impl std::fmt::Debug for BufferPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pool = self.0.lock().unwrap_or_else(|e| e.into_inner());
        write!(
            f,
            "BufferPool({} buffers, {} values)",
            pool.len(),
            pool.iter().map(|v| v.capacity()).sum::<usize>()
        )
    }
}
