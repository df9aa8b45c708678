//! Checksums that separate real identifiers from look-alike digit runs.

/// Luhn (mod 10) check used by payment card numbers; separators are ignored.
/// Requires 12–19 digits, the range of real card numbers.
pub fn luhn_valid(candidate: &str) -> bool {
    let digits: Vec<u32> = candidate.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(12..=19).contains(&digits.len())
        || candidate
            .chars()
            .any(|c| !(c.is_ascii_digit() || c == ' ' || c == '-'))
    {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                if d * 2 > 9 { d * 2 - 9 } else { d * 2 }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// IBAN mod-97 check (ISO 13616); spaces are ignored, letters case-insensitive.
pub fn iban_valid(candidate: &str) -> bool {
    let compact: Vec<char> = candidate
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if !(15..=34).contains(&compact.len()) || !compact.iter().all(|c| c.is_ascii_alphanumeric()) {
        return false;
    }
    if !(compact[0].is_ascii_alphabetic()
        && compact[1].is_ascii_alphabetic()
        && compact[2].is_ascii_digit()
        && compact[3].is_ascii_digit())
    {
        return false;
    }
    let rearranged = compact[4..].iter().chain(compact[..4].iter());
    let mut remainder: u32 = 0;
    for c in rearranged {
        let value = match c.to_digit(36) {
            Some(v) => v,
            None => return false,
        };
        remainder = if value >= 10 {
            (remainder * 100 + value) % 97
        } else {
            (remainder * 10 + value) % 97
        };
    }
    remainder == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_cases() {
        for (card, ok) in [
            ("4111 1111 1111 1111", true),
            ("4111-1111-1111-1111", true),
            ("5500005555555559", true),
            ("378282246310005", true),
            ("4111 1111 1111 1112", false),
            ("1234", false),
            ("4111x1111 1111 1111", false),
        ] {
            assert_eq!(luhn_valid(card), ok, "{card}");
        }
    }

    #[test]
    fn iban_cases() {
        for (iban, ok) in [
            ("GB82 WEST 1234 5698 7654 32", true),
            ("DE89370400440532013000", true),
            ("de89 3704 0044 0532 0130 00", true),
            ("GB82 WEST 1234 5698 7654 33", false),
            ("XX00", false),
            ("1234567890123456", false),
        ] {
            assert_eq!(iban_valid(iban), ok, "{iban}");
        }
    }
}
