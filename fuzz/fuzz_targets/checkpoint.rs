//! See `sigstack_fuzzing::checkpoint`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sigstack_fuzzing::checkpoint(data));
