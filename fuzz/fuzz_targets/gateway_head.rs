#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tansu_gateway::proxy::fuzzing::head(data));
