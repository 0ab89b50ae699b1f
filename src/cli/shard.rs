//! `--shard auto`: K and N from the batch scheduler's environment, so a
//! job spec needs no shell arithmetic (SPEC §12).
//!
//! Kubernetes Indexed Jobs set `JOB_COMPLETION_INDEX` (0-based) but not the
//! number of completions, so `STEMFLOW_SHARDS` carries N. Slurm arrays set
//! `SLURM_ARRAY_TASK_ID` and `SLURM_ARRAY_TASK_COUNT`; ids start at the
//! array's first index (`--array=1-8` counts from 1, `SLURM_ARRAY_TASK_MIN`)
//! and may step (`--array=0-15:2`, `SLURM_ARRAY_TASK_STEP`), so K is the
//! task's position in the array, not its id. Anything missing, unparsable
//! or out of range is an error: a shard that silently rendered the wrong
//! songs would leave holes in a catalogue.

/// `(K, N)` from the environment `var` reads.
pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<(usize, usize), String> {
    let number = |name: &str| -> Result<Option<usize>, String> {
        match var(name) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| format!("--shard auto: {name}={v:?} is not a whole number")),
        }
    };
    let k8s = number("JOB_COMPLETION_INDEX")?;
    let slurm = number("SLURM_ARRAY_TASK_ID")?;
    let (k, n) = match (k8s, slurm) {
        (Some(_), Some(_)) => {
            return Err("--shard auto: both JOB_COMPLETION_INDEX (Kubernetes) and \
                        SLURM_ARRAY_TASK_ID (Slurm) are set; give --shard K/N"
                .into());
        }
        (Some(index), None) => {
            let n = number("STEMFLOW_SHARDS")?.ok_or(
                "--shard auto: JOB_COMPLETION_INDEX is set but STEMFLOW_SHARDS is not: \
                 set it to the Job's completions",
            )?;
            (index, n)
        }
        (None, Some(id)) => {
            let n = number("SLURM_ARRAY_TASK_COUNT")?.ok_or(
                "--shard auto: SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not",
            )?;
            let min = number("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let step = number("SLURM_ARRAY_TASK_STEP")?.unwrap_or(1).max(1);
            let offset = id
                .checked_sub(min)
                .filter(|o| o % step == 0)
                .ok_or_else(|| {
                    format!(
                        "--shard auto: SLURM_ARRAY_TASK_ID={id} is not in the array \
                     (first index {min}, step {step})"
                    )
                })?;
            (offset / step, n)
        }
        (None, None) => {
            return Err("--shard auto: no scheduler index in the environment: set \
                        JOB_COMPLETION_INDEX and STEMFLOW_SHARDS (Kubernetes Indexed Job), \
                        or run in a Slurm array (SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT)"
                .into());
        }
    };
    if n == 0 || k >= n {
        return Err(format!(
            "--shard auto: shard {k} of {n} from the environment: need 0 <= K < N"
        ));
    }
    Ok((k, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn kubernetes_and_slurm_give_k_and_n() {
        let k8s = env(&[("JOB_COMPLETION_INDEX", "2"), ("STEMFLOW_SHARDS", "3")]);
        assert_eq!(from_env(k8s), Ok((2, 3)));
        let slurm = env(&[
            ("SLURM_ARRAY_TASK_ID", "0"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]);
        assert_eq!(from_env(slurm), Ok((0, 4)));
        // --array=1-4: ids 1..4 are shards 0..3.
        let from_one = env(&[
            ("SLURM_ARRAY_TASK_ID", "4"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
        ]);
        assert_eq!(from_env(from_one), Ok((3, 4)));
        // --array=10-16:2: ids 10, 12, 14, 16.
        let stepped = env(&[
            ("SLURM_ARRAY_TASK_ID", "14"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
            ("SLURM_ARRAY_TASK_MIN", "10"),
            ("SLURM_ARRAY_TASK_STEP", "2"),
        ]);
        assert_eq!(from_env(stepped), Ok((2, 4)));
    }

    #[test]
    fn missing_or_inconsistent_environments_are_refused() {
        for (pairs, says) in [
            (vec![], "no scheduler index"),
            (
                vec![("JOB_COMPLETION_INDEX", "1")],
                "STEMFLOW_SHARDS is not",
            ),
            (
                vec![("JOB_COMPLETION_INDEX", "3"), ("STEMFLOW_SHARDS", "3")],
                "need 0 <= K < N",
            ),
            (
                vec![("JOB_COMPLETION_INDEX", "x"), ("STEMFLOW_SHARDS", "3")],
                "not a whole number",
            ),
            (
                vec![("SLURM_ARRAY_TASK_ID", "1")],
                "SLURM_ARRAY_TASK_COUNT is not",
            ),
            (
                vec![
                    ("SLURM_ARRAY_TASK_ID", "4"),
                    ("SLURM_ARRAY_TASK_COUNT", "4"),
                ],
                "need 0 <= K < N",
            ),
            (
                vec![
                    ("SLURM_ARRAY_TASK_ID", "0"),
                    ("SLURM_ARRAY_TASK_COUNT", "4"),
                    ("SLURM_ARRAY_TASK_MIN", "1"),
                ],
                "not in the array",
            ),
            (
                vec![
                    ("SLURM_ARRAY_TASK_ID", "0"),
                    ("SLURM_ARRAY_TASK_COUNT", "4"),
                    ("JOB_COMPLETION_INDEX", "0"),
                    ("STEMFLOW_SHARDS", "4"),
                ],
                "both",
            ),
        ] {
            let e = from_env(env(&pairs)).unwrap_err();
            assert!(e.contains(says), "{pairs:?}: {e}");
        }
    }
}
