//! IPM clearing file reader: any bytes, blocked or not (the first input
//! byte's low bit), give a file or a typed error, never a panic; a file
//! that passes has the totals its trailer states.
#![no_main]

use std::sync::{Arc, OnceLock};

use cardswitch::clearing::ipm_reader::{ipm_spec, read};
use cardswitch::message::Spec;
use libfuzzer_sys::fuzz_target;

fn spec() -> &'static Arc<Spec> {
    static SPEC: OnceLock<Arc<Spec>> = OnceLock::new();
    SPEC.get_or_init(|| ipm_spec().expect("shipped IPM spec"))
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, file)) = data.split_first() else {
        return;
    };
    match read(file, mode & 1 == 1, spec()) {
        Ok(f) => {
            assert_eq!(f.message_count as usize, f.records.len());
            let sum: u64 = f.records.iter().filter_map(|r| r.message.get_u64(4)).sum();
            assert_eq!(sum, f.amount_sum);
            for (i, r) in f.records.iter().enumerate() {
                assert_eq!(r.message.get_u64(71), Some(i as u64 + 1));
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
