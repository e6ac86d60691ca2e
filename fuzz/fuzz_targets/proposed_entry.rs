//! See `sigstack_fuzzing::proposed_entry`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sigstack_fuzzing::proposed_entry(data));
