//! See `sigstack_fuzzing::tlog_tiles`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sigstack_fuzzing::tlog_tiles(data));
