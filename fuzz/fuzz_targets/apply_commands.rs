#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vtask_fuzz::apply_commands(data));
