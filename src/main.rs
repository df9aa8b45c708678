//! The `palisade` binary: everything happens in the library's CLI module.

/// mimalloc instead of the system allocator: a request allocates about a
/// hundred small objects across hyper, reqwest, axum and the detectors, and
/// malloc/free were a quarter of the proxy's user-space instructions
/// (`docs/performance.md`). musl's allocator, used by the static Docker
/// build, is slower still.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    disable_transparent_huge_pages();
    purge_freed_memory_at_once();
    palisade::server::memory::on_policy_compiled(return_freed_memory);
    palisade::cli::run()
}

/// Asks mimalloc to hand the pages freed so far back to the system now
/// (see `palisade::server::memory`): called once after each policy compile,
/// never on the request path.
#[allow(unsafe_code)]
fn return_freed_memory() {
    // SAFETY: mi_collect takes a plain bool and only walks mimalloc's own
    // heaps and arenas; it is safe to call from any thread at any time.
    unsafe {
        libmimalloc_sys::mi_collect(true);
    }
}

/// mimalloc's `purge_delay` option (index 15 of `mi_option_e` in the
/// mimalloc v2 that `libmimalloc-sys` 0.1 builds; the crate names no
/// constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Freed pages go back to the system at once, unless the operator sets
/// mimalloc's own variable (`MIMALLOC_PURGE_DELAY`, milliseconds).
///
/// mimalloc by default keeps freed pages for 10 ms and purges them on a
/// later allocation, which an idle proxy never makes: the memory the policy
/// compiler freed stayed resident, and idle RSS with the default policy
/// was 57-74 MB depending on timing instead of 56.5 MB
/// (`docs/performance.md`, sessions 22-23). Under load the immediate purge
/// cost nothing measurable (same run, both orders).
#[allow(unsafe_code)]
fn purge_freed_memory_at_once() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: mi_option_set stores an integer in mimalloc's option
        // table; 15 is purge_delay in the mimalloc this crate links.
        unsafe {
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
        }
    }
}

/// Small pages only, unless the operator asks otherwise with mimalloc's own
/// variable (`MIMALLOC_ALLOW_THP=1`, which then matters on hosts whose
/// transparent huge pages are `always`).
///
/// mimalloc asked the kernel for transparent huge pages on the regions it
/// maps (built with its `no_thp` feature it no longer does, which also
/// keeps the pages touched before `main` small), and hosts configured
/// `always` give them anyway. A 2 MB page is resident as soon as one byte
/// of it is touched, so the compiled policy, scattered over pages the
/// compiler's temporary data also used, kept about 27 MB more resident when
/// idle (97 vs 71 MB), and faulting the huge pages in cost more system time
/// than the fewer TLB misses saved (`docs/performance.md`, session 15).
#[allow(unsafe_code)]
fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // SAFETY: PR_SET_THP_DISABLE takes integer arguments only and
        // changes a flag of this process; no memory is read or written.
        // A kernel without it returns an error, which changes nothing.
        unsafe {
            libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
        }
    }
}
