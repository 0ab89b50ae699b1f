//! Which SIMD paths this CPU can take, decided once per process.
//!
//! Every fast kernel computes exactly what its portable twin does — AVX
//! lanes round as SSE2 ones (Rust never contracts `a * b + c`), and
//! `mul_add` is fused in hardware or, without FMA, exactly in software — so
//! output never depends on the machine. The choice is therefore only about
//! speed, and it is made in one place: [`isa`] detects the instruction set
//! on first use and keeps it.
//!
//! Calling a `#[target_feature]` function on a CPU without the feature is
//! undefined behaviour, so the choice is also a proof. As rubato's per-ISA
//! interpolators can only be built on a CPU with their features, an [`Isa`]
//! can only be made by checking the CPU, and every kernel takes one. Each
//! kernel dispatches through `dispatch!` (below):
//!
//! ```ignore
//! cpu::dispatch!(isa, avx: kernel_avx(..), portable: kernel_portable(..))
//! ```
//!
//! with `kernel_portable` `#[inline(always)]` and `kernel_avx` the same
//! code under `#[target_feature]`, so both paths are one source (`avx_fma:`
//! for a kernel compiled with FMA too). Tests pass each [`Level`] the CPU
//! has (through `Isa::new`) to hold every fast path to the portable one bit
//! for bit.

use std::sync::OnceLock;

/// An instruction-set level a kernel can be compiled for; each includes the
/// ones before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// The target's baseline (SSE2 on x86-64): every CPU runs it.
    Portable,
    /// AVX: eight f32 or four f64 lanes.
    Avx,
    /// AVX and FMA (every x86-64 since 2013): `mul_add` is one instruction.
    AvxFma,
}

impl Level {
    /// Every level, lowest first.
    #[cfg(test)]
    pub const ALL: [Level; 3] = [Level::Portable, Level::Avx, Level::AvxFma];
}

/// A [`Level`] this CPU is known to run: the licence the fast kernels'
/// `unsafe` calls rest on. Only [`isa`] and the tests' `Isa::new` make one, each
/// after checking the CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Isa(Level);

impl Isa {
    /// The baseline, valid on every CPU.
    #[cfg(test)]
    pub const PORTABLE: Isa = Isa(Level::Portable);

    /// `level`, if this CPU runs it: how tests force each path.
    #[cfg(test)]
    pub fn new(level: Level) -> Option<Isa> {
        (level <= isa().0).then_some(Isa(level))
    }

    /// The level kernels may use.
    pub fn level(self) -> Level {
        self.0
    }
}

/// Calls the AVX twin of a kernel when the [`Isa`] allows it, else the
/// portable one: `dispatch!(isa, avx: fast(..), portable: plain(..))`, or
/// `avx_fma:` for a twin compiled with FMA as well. The one `unsafe` that
/// every `#[target_feature]` call needs, with its proof, lives here.
macro_rules! dispatch {
    ($isa:expr, avx: $fast:expr, portable: $plain:expr $(,)?) => {
        match $isa.level() {
            #[cfg(target_arch = "x86_64")]
            $crate::cpu::Level::Avx | $crate::cpu::Level::AvxFma => {
                // SAFETY: an `Isa` at these levels exists only on a CPU
                // with AVX.
                unsafe { $fast }
            }
            _ => $plain,
        }
    };
    ($isa:expr, avx_fma: $fast:expr, portable: $plain:expr $(,)?) => {
        match $isa.level() {
            #[cfg(target_arch = "x86_64")]
            $crate::cpu::Level::AvxFma => {
                // SAFETY: an `Isa` at this level exists only on a CPU with
                // AVX and FMA.
                unsafe { $fast }
            }
            _ => $plain,
        }
    };
}
pub(crate) use dispatch;

/// The best level this CPU runs, detected on the first call and kept.
pub fn isa() -> Isa {
    static BEST: OnceLock<Isa> = OnceLock::new();
    *BEST.get_or_init(|| Isa(detect()))
}

fn detect() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx") && has!("fma") {
            return Level::AvxFma;
        }
        if has!("avx") {
            return Level::Avx;
        }
    }
    Level::Portable
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_up_to_the_detected_one_are_available() {
        let best = isa().level();
        assert_eq!(Isa::new(Level::Portable), Some(Isa::PORTABLE));
        for level in Level::ALL {
            assert_eq!(Isa::new(level).is_some(), level <= best, "{level:?}");
        }
        assert_eq!(isa(), isa());
    }
}
