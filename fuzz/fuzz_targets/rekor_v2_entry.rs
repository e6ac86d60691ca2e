//! See `sigstack_fuzzing::rekor_v2_entry`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sigstack_fuzzing::rekor_v2_entry(data));
