//! The generator of control-fuzz inputs: every combination of a step's
//! `choices` over a command's fields, by length then lexicographically, or a
//! seeded sample of them, planned across the commands of one step.

use crate::checker::outcome::Failure;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::{Value, json};

/// A single `fuzzCommand` larger than this is surely a mistake in the scenario.
const MAX_INPUTS: u64 = 100_000;

/// How many inputs there are of every length in `min..=max` over `n`
/// choices; `None` when the count does not fit in a u64.
pub fn combination_count(n: usize, min: usize, max: usize) -> Option<u64> {
    let mut total = 0u64;
    for k in min..=max {
        let k = u32::try_from(k).ok()?;
        total = total.checked_add((n as u64).checked_pow(k)?)?;
    }
    Some(total)
}

/// The `i`-th input (0-based) in enumeration order: by length ascending,
/// then lexicographically by choice index. Each item is a choice index.
pub fn nth_combination(n: usize, min: usize, max: usize, mut i: u64) -> Option<Vec<usize>> {
    for k in min..=max {
        let count = (n as u64).checked_pow(u32::try_from(k).ok()?)?;
        if i < count {
            let mut digits = vec![0usize; k];
            for d in digits.iter_mut().rev() {
                *d = (i % n as u64) as usize;
                i /= n as u64;
            }
            return Some(digits);
        }
        i -= count;
    }
    None
}

/// Which of `total` inputs to send: all of them, or (when `limit` is
/// smaller) `limit` distinct ones drawn with `seed`, in enumeration order.
pub fn select(total: u64, limit: Option<u64>, seed: u64) -> Vec<u64> {
    match limit {
        Some(limit) if limit < total => {
            let mut rng = StdRng::seed_from_u64(seed);
            let len = usize::try_from(total).unwrap_or(usize::MAX);
            let amount = usize::try_from(limit).unwrap_or(usize::MAX);
            let mut picked: Vec<u64> = rand::seq::index::sample(&mut rng, len, amount)
                .into_iter()
                .map(|i| i as u64)
                .collect();
            picked.sort_unstable();
            picked
        }
        _ => (0..total).collect(),
    }
}

/// One command to fuzz: its name and the fields filled in order.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Target {
    pub(super) cmd: String,
    pub(super) fields: Vec<String>,
}

impl Target {
    /// Lengths past the field count cannot be built: cap them.
    pub(super) fn max_len(&self, max_len: usize) -> usize {
        max_len.min(self.fields.len())
    }
}

/// The JSON line of one input.
pub(super) fn input_line(id: &str, target: &Target, combo: &[usize], choices: &[Value]) -> String {
    let mut obj = serde_json::Map::new();
    obj.insert("id".into(), json!(id));
    obj.insert("cmd".into(), json!(target.cmd));
    for (field, choice) in target.fields.iter().zip(combo) {
        obj.insert(field.clone(), choices[*choice].clone());
    }
    Value::Object(obj).to_string()
}

/// The inputs of one fuzz step: (target, combination) in send order.
pub(super) struct Plan {
    pub(super) inputs: Vec<(usize, Vec<usize>)>,
    pub(super) targets: Vec<Target>,
    pub(super) total: u64,
    pub(super) seed: u64,
    pub(super) limited: bool,
}

impl Plan {
    pub(super) fn new(
        targets: Vec<Target>,
        choices: &[Value],
        min_len: usize,
        max_len: usize,
        limit: Option<u64>,
        seed: u64,
    ) -> Result<Self, Failure> {
        // `minLen` ≤ `maxLen` was checked when the file loaded.
        let n = choices.len();
        let mut counts = Vec::new();
        for t in &targets {
            let max = t.max_len(max_len);
            let count = if min_len > max {
                0
            } else {
                combination_count(n, min_len, max).ok_or_else(|| {
                    Failure::invalid(format!("{}: too many combinations to count", t.cmd))
                })?
            };
            counts.push(count);
        }
        let total = counts
            .iter()
            .try_fold(0u64, |a, c| a.checked_add(*c))
            .ok_or_else(|| Failure::invalid("too many combinations to count"))?;
        let picked = select(total, limit, seed);
        if picked.len() as u64 > MAX_INPUTS {
            return Err(Failure::invalid(format!(
                "{} inputs is too many; lower maxLen or the number of choices, or set `limit`",
                picked.len()
            )));
        }
        let mut inputs = Vec::with_capacity(picked.len());
        // Map each global index to (target, index within that target).
        let mut base = 0u64;
        let mut t = 0usize;
        for g in picked {
            while t < counts.len() && g >= base + counts[t] {
                base += counts[t];
                t += 1;
            }
            let max = targets[t].max_len(max_len);
            let combo = nth_combination(n, min_len, max, g - base)
                .ok_or_else(|| Failure::invalid("input index out of range"))?;
            inputs.push((t, combo));
        }
        Ok(Self {
            inputs,
            targets,
            total,
            seed,
            limited: limit.is_some_and(|l| l < total),
        })
    }

    pub(super) fn replay_hint(&self) -> String {
        if self.limited {
            format!(
                "seed {} (a sample of {} of {} inputs)",
                self.seed,
                self.inputs.len(),
                self.total
            )
        } else {
            format!("seed {} (all {} inputs were due)", self.seed, self.total)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(n: usize, min: usize, max: usize) -> Vec<Vec<usize>> {
        let total = combination_count(n, min, max).unwrap_or(0);
        (0..total)
            .filter_map(|i| nth_combination(n, min, max, i))
            .collect()
    }

    #[test]
    fn enumeration_is_by_length_then_lexicographic() {
        // choices {"a","b"}, maxLen 3: the order of the reference's table.
        let names = |c: &Vec<usize>| {
            c.iter()
                .map(|i| ["a", "b"][*i])
                .collect::<Vec<_>>()
                .join(" ")
        };
        let got: Vec<String> = all(2, 0, 3).iter().map(names).collect();
        let want = [
            "", "a", "b", "a a", "a b", "b a", "b b", "a a a", "a a b", "a b a", "a b b", "b a a",
            "b a b", "b b a", "b b b",
        ];
        assert_eq!(got, want);
        assert_eq!(all(3, 2, 2).len(), 9);
        assert_eq!(all(3, 1, 2)[0], vec![0]);
        assert_eq!(nth_combination(2, 0, 3, 15), None);
    }

    #[test]
    fn counts_handle_edges_and_overflow() {
        assert_eq!(combination_count(2, 0, 3), Some(15));
        assert_eq!(combination_count(0, 0, 2), Some(1));
        assert_eq!(combination_count(0, 1, 2), Some(0));
        assert_eq!(combination_count(7, 0, 2), Some(57));
        assert_eq!(combination_count(1000, 0, 10), None);
        assert!(all(0, 1, 2).is_empty());
    }

    #[test]
    fn sampling_is_deterministic_sorted_and_distinct() {
        assert_eq!(select(5, None, 1), vec![0, 1, 2, 3, 4]);
        assert_eq!(select(5, Some(9), 1), vec![0, 1, 2, 3, 4]);
        let a = select(1_000_000, Some(50), 7);
        assert_eq!(a, select(1_000_000, Some(50), 7));
        assert_ne!(a, select(1_000_000, Some(50), 8));
        assert_eq!(a.len(), 50);
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert!(a.iter().all(|i| *i < 1_000_000));
    }

    #[test]
    fn plans_cap_lengths_at_the_field_count_and_map_a_limit_across_commands() -> Result<(), String>
    {
        let choices = vec![json!("a"), json!(1)];
        let targets = vec![
            Target {
                cmd: "a".into(),
                fields: vec![],
            },
            Target {
                cmd: "b".into(),
                fields: vec!["x".into(), "y".into()],
            },
        ];
        let plan =
            Plan::new(targets.clone(), &choices, 0, 3, None, 0).map_err(|e| format!("{e:?}"))?;
        // a: only the empty input; b: 1 + 2 + 4.
        assert_eq!(plan.total, 8);
        assert_eq!(plan.inputs[0], (0, vec![]));
        assert_eq!(plan.inputs[1], (1, vec![]));
        assert_eq!(plan.inputs[7], (1, vec![1, 1]));
        let line = input_line("i", &targets[1], &plan.inputs[6].1, &choices);
        assert_eq!(line, r#"{"cmd":"b","id":"i","x":1,"y":"a"}"#);
        let limited =
            Plan::new(targets, &choices, 0, 3, Some(3), 5).map_err(|e| format!("{e:?}"))?;
        assert_eq!(limited.inputs.len(), 3);
        assert!(limited.limited);
        Ok(())
    }
}
