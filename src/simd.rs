//! Code compiled for wider vector registers than the baseline target's, run where the
//! processor is found at run time to have them: x86_64's baseline is SSE2 (16-byte registers),
//! and nearly every x86_64 processor in use also has AVX2 (32-byte ones). ARM targets build
//! for their baseline only (NEON on aarch64); there this module runs nothing.
//!
//! The one `unsafe` of the loops the protocol core hands over: calling a function compiled for
//! a feature is sound only where the processor has it, which is checked first. The loops stay
//! safe code in their own module (`protocol::mask`).

/// Runs `work` compiled for AVX2 and returns its result, when the processor has AVX2; else
/// `None`, and `work` is not run. `work` is inlined into a function compiled for AVX2, and so is
/// what it calls inline: mark those `#[inline(always)]` for them to use the wider registers.
#[inline(always)]
pub fn with_avx2<R>(work: impl FnOnce() -> R) -> Option<R> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the processor has AVX2, checked just above.
        return Some(unsafe { avx2(work) });
    }
    #[cfg(not(target_arch = "x86_64"))]
    drop(work);
    None
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn avx2<R>(work: impl FnOnce() -> R) -> R {
    work()
}
