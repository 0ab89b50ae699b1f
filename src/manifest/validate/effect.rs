//! One entry of a stem's effect chain. Filter frequencies are bounded by the
//! song's Nyquist frequency (a filter above it is unstable), and echo memory
//! by [`MAX_ECHO_S`] so a typo cannot ask for gigabytes of delay line.

use super::{At, Validator};
use crate::manifest::MAX_ECHO_S;
use crate::manifest::error::ManifestError;
use crate::manifest::raw::RawEffect;
use crate::plan::{EffectSpec, FilterKind};

/// The checks of one stem's effect parameters, with where to report a
/// failure.
struct Checks<'v, 's> {
    v: &'v Validator<'v>,
    at: At<'s>,
    nyquist: f64,
}

impl Validator<'_> {
    /// A stem's effect chain, in order.
    pub(super) fn effects(
        &self,
        at: At<'_>,
        raw: Vec<RawEffect>,
        nyquist: f64,
    ) -> Result<Vec<EffectSpec>, ManifestError> {
        let c = Checks {
            v: self,
            at,
            nyquist,
        };
        let mut effects = Vec::new();
        for e in raw {
            effects.push(c.effect(e)?);
        }
        Ok(effects)
    }
}

impl Checks<'_, '_> {
    /// One effect, its parameters checked in the order they are declared.
    fn effect(&self, e: RawEffect) -> Result<EffectSpec, ManifestError> {
        Ok(match e {
            RawEffect::Lowpass { cutoff, order } => EffectSpec::Filter(FilterKind::Lowpass {
                cutoff: self.freq("effects.cutoff", cutoff)?,
                order: self.order(order)?,
            }),
            RawEffect::Highpass { cutoff, order } => EffectSpec::Filter(FilterKind::Highpass {
                cutoff: self.freq("effects.cutoff", cutoff)?,
                order: self.order(order)?,
            }),
            RawEffect::Bandpass { freq, q } => EffectSpec::Filter(FilterKind::Bandpass {
                freq: self.freq("effects.freq", freq)?,
                q: self.q(q)?,
            }),
            RawEffect::Notch { freq, q } => EffectSpec::Filter(FilterKind::Notch {
                freq: self.freq("effects.freq", freq)?,
                q: self.q(q)?,
            }),
            RawEffect::Peak { freq, q, gain_db } => EffectSpec::Filter(FilterKind::Peak {
                freq: self.freq("effects.freq", freq)?,
                q: self.q(q)?,
                gain_db: self.db("effects.gain_db", gain_db)?,
            }),
            RawEffect::Lowshelf { freq, gain_db } => EffectSpec::Filter(FilterKind::Lowshelf {
                freq: self.freq("effects.freq", freq)?,
                gain_db: self.db("effects.gain_db", gain_db)?,
            }),
            RawEffect::Highshelf { freq, gain_db } => EffectSpec::Filter(FilterKind::Highshelf {
                freq: self.freq("effects.freq", freq)?,
                gain_db: self.db("effects.gain_db", gain_db)?,
            }),
            RawEffect::Gain { db } => self.gain(db)?,
            RawEffect::Echo {
                delay_ms,
                decay,
                taps,
            } => self.echo(delay_ms, decay, taps)?,
        })
    }

    /// A filter frequency: above 0 and below Nyquist.
    fn freq(&self, key: &str, f: f64) -> Result<f64, ManifestError> {
        self.v.below_nyquist(self.at, key, f, self.nyquist)
    }

    /// A filter order (default 2): the even orders the cascade builds.
    fn order(&self, o: Option<u8>) -> Result<u8, ManifestError> {
        match o.unwrap_or(2) {
            o @ (2 | 4 | 6 | 8) => Ok(o),
            o => Err(self.v.err(
                self.at,
                Some("effects.order"),
                format!("must be 2, 4, 6 or 8, got {o}"),
            )),
        }
    }

    /// A filter's Q: above 0, at most 100.
    fn q(&self, q: f64) -> Result<f64, ManifestError> {
        let ok = q > 0.0 && q <= 100.0;
        self.v
            .number(self.at, "effects.q", q, ok, "must be > 0 and <= 100")
    }

    /// A gain in dB: -48 to 48.
    fn db(&self, key: &str, g: f64) -> Result<f64, ManifestError> {
        let ok = g.abs() <= 48.0;
        self.v
            .number(self.at, key, g, ok, "must be between -48 and 48 dB")
    }

    /// A plain gain stage of `db` dB.
    fn gain(&self, db: f64) -> Result<EffectSpec, ManifestError> {
        let db = self.db("effects.db", db)?;
        Ok(EffectSpec::Gain { db })
    }

    /// An echo: 1 to 32 taps, delay × taps within [`MAX_ECHO_S`], |decay| <= 1.
    fn echo(
        &self,
        delay_ms: f64,
        decay: f64,
        taps: Option<u32>,
    ) -> Result<EffectSpec, ManifestError> {
        let taps = taps.unwrap_or(1);
        if !(1..=32).contains(&taps) {
            let what = format!("must be 1 to 32, got {taps}");
            return Err(self.v.err(self.at, Some("effects.taps"), what));
        }
        let max_ms = MAX_ECHO_S * 1000.0;
        let ok = delay_ms > 0.0 && delay_ms * taps as f64 <= max_ms;
        let what = format!("must be > 0 with delay_ms × taps at most {max_ms} ms");
        self.v
            .number(self.at, "effects.delay_ms", delay_ms, ok, &what)?;
        let ok = decay.abs() <= 1.0;
        self.v.number(
            self.at,
            "effects.decay",
            decay,
            ok,
            "must be between -1 and 1",
        )?;
        Ok(EffectSpec::Echo {
            delay_ms,
            decay,
            taps,
        })
    }
}
