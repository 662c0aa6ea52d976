//! Carrying the changes between two texts into a third that moved on meanwhile, character by
//! character: what a replica moving to a new generation does with what it held of the old one.
//!
//! [`Document::replace_from`](crate::Document::replace_from) treats an edit as one region (from
//! the first difference to the last), which is right for an editor's single change but not for
//! what gathered on a replica over a while: edits at the start and the end of the text make one
//! region spanning it all, and anything the new generation changed inside would be overwritten.
//! Here both sides are aligned with the common ancestor (a longest common subsequence, Myers'
//! O(ND) algorithm): a character ours deleted is deleted where it still is, a run ours inserted
//! goes after the ancestor character it followed. Nothing the other side typed is touched: only
//! ancestor characters are ever deleted.

/// A change of `current`, by character index: delete `delete` characters at `at`, then insert
/// `insert` there — the characters of `ours` from index `from` on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Splice {
    pub(crate) at: usize,
    pub(crate) delete: usize,
    pub(crate) insert: String,
    pub(crate) from: usize,
}

/// The most differences aligned: beyond, the texts are too far apart to be worth the time and
/// memory (the search keeps about D² 4-byte positions: 16 MiB at this bound), and `None` is
/// returned.
const MAX_DIFFERENCES: usize = 2048;

/// The splices that bring the changes from `ancestor` to `ours` into `current`, last first (so
/// each leaves the positions of the next as they were). `None` if the texts are too far apart.
pub(crate) fn carry(ancestor: &str, ours: &str, current: &str) -> Option<Vec<Splice>> {
    let ancestor: Vec<char> = ancestor.chars().collect();
    let ours: Vec<char> = ours.chars().collect();
    let current: Vec<char> = current.chars().collect();
    let in_ours = matching(&ancestor, &ours)?;
    let in_current = matching(&ancestor, &current)?;
    let mut from_ancestor = vec![false; ours.len()];
    for &at in in_ours.iter().flatten() {
        from_ancestor[at] = true;
    }
    // Where each ancestor character's successor goes in `current`: after the nearest character
    // at or before it that `current` still has.
    let mut after = Vec::with_capacity(ancestor.len());
    let mut last = 0;
    for at in &in_current {
        if let Some(at) = at {
            last = at + 1;
        }
        after.push(last);
    }
    let mut splices = Vec::new();
    for (mine, theirs) in in_ours.iter().zip(&in_current) {
        if let (None, Some(at)) = (mine, theirs) {
            splices.push(Splice {
                at: *at,
                delete: 1,
                insert: String::new(),
                from: 0,
            });
        }
    }
    // Runs ours inserted, each after the last ancestor character before it.
    let mut previous: Option<usize> = None;
    let mut run = String::new();
    let mut ancestor_index = in_ours
        .iter()
        .enumerate()
        .filter_map(|(a, o)| o.map(|o| (o, a)));
    let mut next_kept = ancestor_index.next();
    let mut run_from = 0;
    for (at, c) in ours.iter().enumerate() {
        if from_ancestor[at] {
            if !run.is_empty() {
                splices.push(insertion(
                    previous,
                    &after,
                    std::mem::take(&mut run),
                    run_from,
                ));
            }
            while let Some((o, a)) = next_kept {
                if o > at {
                    break;
                }
                if o == at {
                    previous = Some(a);
                }
                next_kept = ancestor_index.next();
            }
        } else {
            if run.is_empty() {
                run_from = at;
            }
            run.push(*c);
        }
    }
    if !run.is_empty() {
        splices.push(insertion(previous, &after, run, run_from));
    }
    // Last first; at one place, the deletion of the character there before the insertion in
    // front of it.
    splices.sort_by(|a, b| b.at.cmp(&a.at).then(b.delete.cmp(&a.delete)));
    Some(splices)
}

fn insertion(previous: Option<usize>, after: &[usize], insert: String, from: usize) -> Splice {
    Splice {
        at: previous.map_or(0, |at| after[at]),
        delete: 0,
        insert,
        from,
    }
}

/// For each character of `a`, its index in `b` if a longest common subsequence keeps it.
pub(crate) fn matching(a: &[char], b: &[char]) -> Option<Vec<Option<usize>>> {
    let mut matched = vec![None; a.len()];
    let (prefix, suffix) = crate::changed_region(a, b);
    for (at, slot) in matched.iter_mut().enumerate().take(prefix) {
        *slot = Some(at);
    }
    for back in 1..=suffix {
        matched[a.len() - back] = Some(b.len() - back);
    }
    let (x0, y0) = (prefix, prefix);
    let middle_a = &a[prefix..a.len() - suffix];
    let middle_b = &b[prefix..b.len() - suffix];
    if middle_a.is_empty() || middle_b.is_empty() {
        // Only inserted, or only deleted: nothing more to match.
        return Some(matched);
    }
    for (x, y) in myers(middle_a, middle_b)? {
        matched[x0 + x] = Some(y0 + y);
    }
    Some(matched)
}

/// The matched pairs (index in `a`, index in `b`) of a shortest edit script.
fn myers(a: &[char], b: &[char]) -> Option<Vec<(usize, usize)>> {
    let (n, m) = (a.len() as isize, b.len() as isize);
    let max = (n + m) as usize;
    let bound = max.min(MAX_DIFFERENCES);
    let offset = bound as isize + 1;
    let mut v = vec![0isize; 2 * bound + 3];
    // After step d, v[k] for k in -d..=d (as i32: texts this long are far under 2³¹).
    let mut trace: Vec<Vec<i32>> = Vec::new();
    let mut found = None;
    'steps: for d in 0..=max as isize {
        if d as usize > MAX_DIFFERENCES {
            return None;
        }
        for k in (-d..=d).step_by(2) {
            let at = (offset + k) as usize;
            let mut x = if k == -d || (k != d && v[at - 1] < v[at + 1]) {
                v[at + 1]
            } else {
                v[at - 1] + 1
            };
            let mut y = x - k;
            while x < n && y < m && a[x as usize] == b[y as usize] {
                x += 1;
                y += 1;
            }
            v[at] = x;
            if x >= n && y >= m {
                trace.push(snapshot(&v, offset, d));
                found = Some(d);
                break 'steps;
            }
        }
        trace.push(snapshot(&v, offset, d));
    }
    let steps = found?;
    let mut pairs = Vec::new();
    let (mut x, mut y) = (n, m);
    for d in (0..=steps).rev() {
        let k = x - y;
        let (previous_x, previous_y) = if d == 0 {
            (0, 0)
        } else {
            // v after step d - 1, which covers -(d - 1)..=d - 1.
            let before = &trace[(d - 1) as usize];
            let get = |k: isize| before[(k + d - 1) as usize] as isize;
            let previous_k = if k == -d || (k != d && get(k - 1) < get(k + 1)) {
                k + 1
            } else {
                k - 1
            };
            let previous_x = get(previous_k);
            (previous_x, previous_x - previous_k)
        };
        while x > previous_x && y > previous_y {
            x -= 1;
            y -= 1;
            pairs.push((x as usize, y as usize));
        }
        x = previous_x;
        y = previous_y;
    }
    pairs.reverse();
    Some(pairs)
}

fn snapshot(v: &[isize], offset: isize, d: isize) -> Vec<i32> {
    v[(offset - d) as usize..=(offset + d) as usize]
        .iter()
        .map(|&x| x as i32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(ancestor: &str, ours: &str, current: &str) -> String {
        let mut text: Vec<char> = current.chars().collect();
        for splice in carry(ancestor, ours, current).expect("close enough") {
            text.splice(splice.at..splice.at + splice.delete, splice.insert.chars());
        }
        text.into_iter().collect()
    }

    #[test]
    fn edits_at_both_ends_keep_what_changed_between_them() {
        assert_eq!(
            applied("one two three", "ONE: one two three!", "one 2 three"),
            "ONE: one 2 three!"
        );
    }

    #[test]
    fn a_deletion_takes_only_ancestor_characters() {
        // Ours deleted "beta"; theirs typed inside it: what they typed stays.
        let merged = applied("alpha beta gamma", "alpha gamma", "alpha be-ta gamma");
        assert!(merged.contains('-'), "{merged}");
        assert_eq!(merged.replace('-', ""), "alpha gamma");
    }

    #[test]
    fn nothing_changed_on_our_side_changes_nothing() {
        assert_eq!(carry("abc", "abc", "xabcx"), Some(Vec::new()));
    }

    #[test]
    fn non_ascii_and_repeats() {
        assert_eq!(applied("ééé", "éxééé", "éééy"), "éxéééy");
        assert_eq!(applied("", "new", "theirs"), "newtheirs");
        assert_eq!(applied("abc", "", "abc"), "");
    }

    /// A text of distinct characters, and an edit of it: some deleted, new ones (from `fresh`)
    /// put in.
    fn edited(ancestor: &[char], keep: &[bool], inserts: &[(usize, char)]) -> Vec<char> {
        let mut text: Vec<char> = ancestor
            .iter()
            .zip(keep.iter().cycle())
            .filter(|(_, keep)| **keep)
            .map(|(c, _)| *c)
            .collect();
        for &(at, c) in inserts {
            text.insert(at % (text.len() + 1), c);
        }
        text
    }

    proptest::proptest! {
        /// With every character distinct: what either side inserted is there once, what either
        /// deleted is gone, what both kept stays, and `current`'s order is kept.
        #[test]
        fn both_sides_changes_survive_and_nothing_else_changes(
            length in 0usize..40,
            keep_ours in proptest::collection::vec(proptest::bool::weighted(0.8), 1..40),
            keep_theirs in proptest::collection::vec(proptest::bool::weighted(0.8), 1..40),
            ours_at in proptest::collection::vec(0usize..64, 0..8),
            theirs_at in proptest::collection::vec(0usize..64, 0..8),
        ) {
            let ancestor: Vec<char> = (0..length as u32).map(|n| char::from_u32(0x4e00 + n).expect("CJK")).collect();
            let fresh = |base: u32, at: &[usize]| -> Vec<(usize, char)> {
                at.iter().enumerate().map(|(n, at)| (*at, char::from_u32(base + n as u32).expect("CJK"))).collect()
            };
            let ours_new = fresh(0x5e00, &ours_at);
            let theirs_new = fresh(0x6e00, &theirs_at);
            let ours = edited(&ancestor, &keep_ours, &ours_new);
            let current = edited(&ancestor, &keep_theirs, &theirs_new);
            let to_string = |text: &[char]| text.iter().collect::<String>();
            let merged: Vec<char> = applied(&to_string(&ancestor), &to_string(&ours), &to_string(&current)).chars().collect();
            for (_, c) in ours_new.iter().chain(&theirs_new) {
                proptest::prop_assert_eq!(merged.iter().filter(|x| *x == c).count(), 1, "{} once", c);
            }
            for c in &ancestor {
                let kept = ours.contains(c) && current.contains(c);
                proptest::prop_assert_eq!(merged.contains(c), kept, "{}", c);
            }
            let order: Vec<char> = merged.iter().copied().filter(|c| current.contains(c)).collect();
            let expected: Vec<char> = current.iter().copied().filter(|c| merged.contains(c)).collect();
            proptest::prop_assert_eq!(order, expected);
        }
    }

    #[test]
    fn long_texts_with_few_changes_align_and_texts_too_far_apart_do_not() {
        let long: String = "abcdefghij".repeat(20_000);
        let ours = format!("X{}Y", &long[..100_000]) + &long[100_000..];
        let current = long.replacen("abc", "", 1);
        let merged = applied(&long, &ours, &current);
        assert_eq!(
            merged,
            format!("X{}Y", &current[..99_997]) + &current[99_997..]
        );
        let unrelated: String = "0123456789".repeat(500);
        assert_eq!(carry(&long, &unrelated, &long), None);
    }

    #[test]
    fn matching_is_a_common_subsequence_of_the_longest_length() {
        let a: Vec<char> = "ABCABBA".chars().collect();
        let b: Vec<char> = "CBABAC".chars().collect();
        let matched = matching(&a, &b).expect("small");
        let pairs: Vec<(usize, usize)> = matched
            .iter()
            .enumerate()
            .filter_map(|(x, y)| y.map(|y| (x, y)))
            .collect();
        assert_eq!(pairs.len(), 4);
        assert!(pairs.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1));
        assert!(pairs.iter().all(|&(x, y)| a[x] == b[y]));
    }
}
