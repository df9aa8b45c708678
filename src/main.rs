//! The `palisade` binary: everything happens in the library's CLI module.

/// mimalloc instead of the system allocator: a request allocates about a
/// hundred small objects across hyper, reqwest, axum and the detectors, and
/// malloc/free were a quarter of the proxy's user-space instructions
/// (`docs/performance.md`). musl's allocator, used by the static Docker
/// build, is slower still.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    palisade::cli::run()
}
