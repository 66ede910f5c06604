//! Stable hashes: the same on every build and machine, because journals keep them.

use crate::plan::Variable;

/// FNV-1a, for hashes that must stay the same across builds and machines
/// (journals name the plan by one).
pub fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in *part {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        hash ^= 0xff;
    }
    hash
}

/// FNV-1a over the text and the variable values in force.
pub(crate) fn plan_hash(text: &str, vars: &[&Variable]) -> u64 {
    let mut parts: Vec<&[u8]> = vec![text.as_bytes()];
    for v in vars {
        parts.push(v.name.as_bytes());
        parts.push(v.value.as_bytes());
    }
    fnv1a(&parts)
}
