//! Shared helpers of the fuzz targets: the shipped specs, loaded once, and
//! the convention that an input's first byte selects the spec.
#![forbid(unsafe_code)]

use std::sync::{Arc, OnceLock};

use cardswitch::message::Spec;
use cardswitch::message::spec_file::builtin_names;

/// The shipped specs in the order of `builtin_names()`: the selector byte
/// `i` picks `specs()[i % specs().len()]` (see seed-corpus.sh).
pub fn specs() -> &'static [Arc<Spec>] {
    static SPECS: OnceLock<Vec<Arc<Spec>>> = OnceLock::new();
    SPECS.get_or_init(|| {
        builtin_names()
            .map(|name| Spec::resolve(name).unwrap_or_else(|e| panic!("shipped spec {name}: {e}")))
            .collect()
    })
}

/// Splits an input into the spec its first byte selects and the message
/// bytes after it; `None` for the empty input.
pub fn select(data: &[u8]) -> Option<(&'static Spec, &[u8])> {
    let (&selector, rest) = data.split_first()?;
    let all = specs();
    let spec = &all[usize::from(selector) % all.len()];
    Some((spec, rest))
}
