//! See `sigstack_fuzzing::tuf_metadata`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sigstack_fuzzing::tuf_metadata(data));
