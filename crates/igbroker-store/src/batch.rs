//! Multi-row statements in a few fixed sizes, so that each size is prepared once
//! and then found in the connection's statement cache: a statement built for
//! every batch length would be parsed anew each time (thousands of parameters).

/// The row counts multi-row statements are built for, largest first.
const SIZES: [usize; 5] = [128, 32, 8, 2, 1];

/// Splits `items` into consecutive chunks whose lengths are all in `SIZES`.
pub(crate) fn fixed_chunks<T>(mut items: &[T]) -> Vec<&[T]> {
    let mut out = Vec::new();
    while !items.is_empty() {
        let size = SIZES
            .iter()
            .copied()
            .find(|&s| s <= items.len())
            .unwrap_or(1);
        let (head, rest) = items.split_at(size);
        out.push(head);
        items = rest;
    }
    out
}

/// `($first, …), ($first+width, …), …` for `rows` rows of `width` parameters.
pub(crate) fn placeholders(rows: usize, width: usize, first: usize) -> String {
    let mut s = String::with_capacity(rows * width * 5);
    for r in 0..rows {
        if r > 0 {
            s.push_str(", ");
        }
        s.push('(');
        for c in 0..width {
            if c > 0 {
                s.push_str(", ");
            }
            s.push('$');
            s.push_str(&(first + r * width + c).to_string());
        }
        s.push(')');
    }
    s
}

/// `$first, $first+1, …` for an `IN (…)` list of `count` parameters.
pub(crate) fn param_list(count: usize, first: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_everything_in_fixed_sizes() {
        for n in 0..300 {
            let items: Vec<usize> = (0..n).collect();
            let chunks = fixed_chunks(&items);
            assert!(chunks.iter().all(|c| SIZES.contains(&c.len())), "{n}");
            let joined: Vec<usize> = chunks.concat();
            assert_eq!(joined, items);
        }
    }

    #[test]
    fn placeholders_number_rows_after_the_first() {
        assert_eq!(placeholders(2, 3, 2), "($2, $3, $4), ($5, $6, $7)");
        assert_eq!(placeholders(1, 1, 1), "($1)");
        assert_eq!(param_list(3, 3), "$3, $4, $5");
    }
}
