#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tansu_database::fuzzing::query(data));
