//! Coverage-guided fuzz targets (AFL++ through `cargo afl`), one binary per target in
//! `src/bin/`. The checks are the mutation-fuzz targets' own (`stack/tests/fuzz.rs`, included
//! here as a module), so a crash AFL finds is a broken invariant there too, and its input,
//! added to `fuzz/corpus/<target>/`, becomes a regression case of `cargo test`. `engine`
//! (`stack/tests/fuzz_engine.rs`) drives the whole data plane on in-memory ports; its
//! regression test replays `fuzz/corpus/engine/`. See
//! `fuzz/README.md`.

/// The stack's mutation-fuzz targets and their checks.
#[allow(dead_code, unused_imports, missing_docs, clippy::all)]
#[path = "../../../stack/tests/fuzz.rs"]
pub mod stack_targets;

/// The `engine` target (its file is also the test that replays its corpus).
#[allow(dead_code, unused_imports)] // its test is compiled out here
#[path = "../../../stack/tests/fuzz_engine.rs"]
pub mod engine;
