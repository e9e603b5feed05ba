//! The `cardswitch` binary: see `cardswitch --help`.

/// mimalloc rather than the system allocator: a switch allocates and frees
/// a few buffers per message on one thread, the case glibc's allocator
/// serves worst (its free lists and consolidation were 10% of the
/// journaled switch's instructions).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    no_transparent_huge_pages();
    cardswitch::cli::main()
}

/// Opts this process out of transparent huge pages, as latency-bound
/// servers (Redis, MongoDB) advise: with THP the first touch of memory
/// zeroes a whole 2 MiB page, so the first frames of 10,000 fresh
/// connections stalled the switch for 0.3 s (p99 197-418 ms in the
/// connection storm bench, against 4 ms with THP off). Kernels before 3.15
/// refuse the option, and nothing else changes: the result is ignored.
#[cfg(target_os = "linux")]
fn no_transparent_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes one integer argument and touches no
    // memory of ours; the unused arguments must be zero.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

#[cfg(not(target_os = "linux"))]
fn no_transparent_huge_pages() {}
