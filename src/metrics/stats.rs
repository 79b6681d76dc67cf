//! The one median every figure of the harness goes through: the report's tables, findings and
//! charts (over repeats, non-finite values left out) and `bench compare`'s statistics (over
//! samples that are finite by construction).

/// The median of `values`: the middle value, or the mean of the two middle ones for an even
/// count; `None` when there are none. Values are ordered by [`f64::total_cmp`], so a NaN sorts
/// after every number (callers that may meet one use [`median`], which leaves it out).
pub fn median_of(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 0 {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    })
}

/// The median of the finite values among `values`; `None` when there are none.
pub fn median(values: impl Iterator<Item = f64>) -> Option<f64> {
    median_of(values.filter(|x| x.is_finite()).collect())
}

/// The median of `f` over `items` (those that have it, and it finite).
pub fn med<T>(items: &[&T], f: impl Fn(&T) -> Option<f64>) -> Option<f64> {
    median(items.iter().filter_map(|r| f(r)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median([3.0, 1.0, 2.0].into_iter()), Some(2.0));
        assert_eq!(median([4.0, 1.0, 2.0, 3.0].into_iter()), Some(2.5));
        assert_eq!(median(std::iter::empty()), None);
    }

    #[test]
    fn non_finite_values() {
        // `median` leaves them out; `median_of` sorts a NaN last and an infinity in place.
        assert_eq!(median([f64::NAN, 1.0, 3.0].into_iter()), Some(2.0));
        assert_eq!(median([f64::INFINITY].into_iter()), None);
        assert_eq!(median_of(vec![1.0, f64::INFINITY, 2.0]), Some(2.0));
        assert!(median_of(vec![1.0, f64::NAN]).unwrap().is_nan());
        assert_eq!(median_of(vec![]), None);
    }
}
