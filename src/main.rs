//! The `portcullis` binary: everything lives in the library; see `cli`.

/// mimalloc instead of glibc's malloc: a request makes ~150 allocations, and glibc spent ~33 k
/// instructions a request on them (callgrind, `benches/load/instructions`; benches/RESULTS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    portcullis::cli::main()
}
