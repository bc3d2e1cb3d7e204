//! Byte helpers of the scanner's word-at-a-time and table-driven reads, shared by the JSON
//! walk, the scanner, the field-name hints, the recent-scan cache and the validators, and by
//! redaction's and the JSON output's searches.

/// Up to 8 bytes as a little-endian word, zero-padded: how the scanner's word-at-a-time
/// searches and keys read text (of a longer slice, its first 8 bytes). A shorter tail is read
/// with two overlapping loads, each byte shifted to its own place (the overlap ORs equal
/// bytes), rather than byte by byte: most names and keys end in one, and copying a length
/// known only at run time into a buffer costs a call.
pub fn le_word(bytes: &[u8]) -> u64 {
    let len = bytes.len();
    if let Some(eight) = bytes.first_chunk::<8>() {
        return u64::from_le_bytes(*eight);
    }
    if let (Some(low), Some(high)) = (bytes.first_chunk::<4>(), bytes.last_chunk::<4>()) {
        let (low, high) = (u32::from_le_bytes(*low), u32::from_le_bytes(*high));
        return u64::from(low) | u64::from(high) << ((len - 4) * 8);
    }
    match (bytes.first(), bytes.get(len / 2), bytes.last()) {
        (Some(&first), Some(&middle), Some(&last)) => {
            u64::from(first)
                | u64::from(middle) << (len / 2 * 8)
                | u64::from(last) << ((len - 1) * 8)
        }
        _ => 0,
    }
}

/// The high bit of each byte of `word` below `limit` (an ASCII limit, at most 0x80), exact up to
/// the lowest one (a borrow can only flag bytes above a true match), which is all a search for
/// the first needs.
#[inline]
pub fn bytes_below(word: u64, limit: u8) -> u64 {
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    word.wrapping_sub(u64::from_le_bytes([limit; 8])) & !word & HIGHS
}

/// The high bit of each byte of `word` equal to `byte`, exact up to the lowest one, as
/// [`bytes_below`]: the bytes that XOR to zero.
#[inline]
pub fn bytes_equal_to(word: u64, byte: u8) -> u64 {
    bytes_below(word ^ u64::from_le_bytes([byte; 8]), 1)
}

/// A table of what each byte is, for scans that read every byte with one load: `value` for
/// each byte of a `members` set, 0 for the rest; later sets take precedence.
pub const fn byte_table<const N: usize>(sets: [(&[u8], u8); N]) -> [u8; 256] {
    let mut table = [0; 256];
    let mut set = 0;
    while set < N {
        let (members, value) = sets[set];
        let mut member = 0;
        while member < members.len() {
            table[members[member] as usize] = value;
            member += 1;
        }
        set += 1;
    }
    table
}

/// 1 for each decimal digit, for [`count_marked`].
pub const DECIMAL_DIGITS: [u8; 256] = byte_table([(b"0123456789", 1)]);

/// How many of `bytes` the table marks, for tables of 0s and 1s: one load and one add per
/// byte, without a branch.
pub fn count_marked(table: &[u8; 256], bytes: &[u8]) -> usize {
    bytes
        .iter()
        .map(|&b| usize::from(table[usize::from(b)]))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_little_endian_and_zero_padded() {
        assert_eq!(le_word(b""), 0);
        assert_eq!(le_word(b"ab"), 0x6261);
        assert_eq!(le_word(b"abcdefgh"), u64::from_le_bytes(*b"abcdefgh"));
        assert_eq!(le_word(b"abcdefghij"), le_word(b"abcdefgh"));
        // Every length, against a byte-by-byte reading, with high bytes that a sign or a
        // wrong shift would smear over their neighbours.
        let bytes: Vec<u8> = (0..12u8).map(|i| 0x81 + i * 7).collect();
        for len in 0..=bytes.len() {
            let slice = &bytes[..len];
            let by_byte = slice
                .iter()
                .take(8)
                .rev()
                .fold(0, |word, &byte| word << 8 | u64::from(byte));
            assert_eq!(le_word(slice), by_byte, "{len} bytes");
        }
    }

    #[test]
    fn the_first_equal_byte_of_a_word_is_flagged() {
        // The last two put a byte one above the match right after it, where the match's borrow
        // flags it too: only the first flag is exact.
        for text in [
            b"abc\"defg",
            b"\"aaaaaaa",
            b"aaaaaaa\"",
            b"ab\"#\"#ab",
            b"#\"#a\"#ab",
        ] {
            let word = u64::from_le_bytes(*text);
            let first = text.iter().position(|&b| b == b'"').unwrap();
            let flags = bytes_equal_to(word, b'"');
            assert_eq!((flags.trailing_zeros() / 8) as usize, first, "{text:?}");
        }
        assert_eq!(bytes_equal_to(u64::from_le_bytes(*b"abcdefgh"), b'"'), 0);
    }

    #[test]
    fn marked_bytes_are_counted() {
        let vowels = byte_table([(b"aeiou", 1)]);
        assert_eq!(count_marked(&vowels, b"observer"), 3);
        assert_eq!(count_marked(&vowels, b""), 0);
    }

    #[test]
    fn tables_give_later_sets_precedence() {
        let table = byte_table([(b"ab", 1), (b"b", 2)]);
        assert_eq!((table[usize::from(b'a')], table[usize::from(b'b')]), (1, 2));
        assert_eq!(table.iter().filter(|&&class| class != 0).count(), 2);
    }
}
