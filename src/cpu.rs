//! Which SIMD paths this CPU can take. Every fast path computes exactly
//! what its portable twin does — AVX lanes round as SSE2 ones (Rust never
//! contracts `a * b + c`), and `mul_add` is fused in hardware or, without
//! FMA, exactly in software — so output never depends on the machine.

/// AVX: eight f32 or four f64 lanes.
pub fn has_avx() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("avx");
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// AVX and FMA (every x86-64 since 2013): `mul_add` is one instruction.
pub fn has_avx_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    return has_avx() && std::arch::is_x86_feature_detected!("fma");
    #[cfg(not(target_arch = "x86_64"))]
    false
}
