//! The `cardswitch` binary: see `cardswitch --help`.

/// mimalloc rather than the system allocator: a switch allocates and frees
/// a few buffers per message on one thread, the case glibc's allocator
/// serves worst (its free lists and consolidation were 10% of the
/// journaled switch's instructions).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cardswitch::cli::main()
}
