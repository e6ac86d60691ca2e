//! See `sigstack_fuzzing::jwt`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sigstack_fuzzing::jwt(data));
