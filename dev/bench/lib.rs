//! `tansu-bench`'s rigs: how the benchmarks start what they measure, each service on the
//! allocator its own binary ships with and in a process of its own where its memory or CPU is
//! measured alone. `gateway_rig` and `identity_rig` are served by the executables
//! `tansu-bench-gateway` and `tansu-bench-identity`; `storage_rig` puts the storage service
//! behind the TLS gateway for `tansu-bench storage` and the 1 GiB memory test
//! (`tests/storage_memory.rs`). How to run the benchmarks: `dev/bench/README.md`.
#![forbid(unsafe_code)]

pub mod gateway_rig;
pub mod identity_rig;
pub mod storage_rig;
