//! Reading a Common Name out of a DER-encoded distinguished name, for
//! `tls-certificate-request-authority-names`. The input comes from certificates the operator
//! configured; it is still parsed defensively (every length checked).

/// One DER element: (tag, contents, rest).
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let count = (first & 0x7f) as usize;
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let length = rest[..count]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (length, &rest[count..])
    };
    if rest.len() < length {
        return None;
    }
    Some((tag, &rest[..length], &rest[length..]))
}

const SET: u8 = 0x31;
const SEQUENCE: u8 = 0x30;
const OID: u8 = 0x06;
/// 2.5.4.3, commonName.
const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];

/// The first Common Name in a Name's contents (the RDN sequence without its outer tag), as
/// webpki hands out issuers and subjects.
pub fn common_name(name: &[u8]) -> Option<String> {
    let mut rdns = name;
    while !rdns.is_empty() {
        let (tag, set, rest) = element(rdns)?;
        rdns = rest;
        if tag != SET {
            return None;
        }
        let mut attributes = set;
        while !attributes.is_empty() {
            let (tag, attribute, rest) = element(attributes)?;
            attributes = rest;
            if tag != SEQUENCE {
                return None;
            }
            let (tag, oid, value) = element(attribute)?;
            if tag == OID && oid == COMMON_NAME {
                let (tag, text, _) = element(value)?;
                return match tag {
                    // UTF8String, PrintableString, IA5String, TeletexString (treated as Latin-1).
                    0x0c | 0x13 | 0x16 => std::str::from_utf8(text).ok().map(String::from),
                    0x14 => Some(text.iter().map(|b| char::from(*b)).collect()),
                    // BMPString: UTF-16BE.
                    0x1e => {
                        let units: Vec<u16> = text
                            .chunks_exact(2)
                            .map(|c| u16::from_be_bytes([c[0], c[1]]))
                            .collect();
                        String::from_utf16(&units).ok()
                    }
                    _ => None,
                };
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rdn(oid: &[u8], tag: u8, value: &[u8]) -> Vec<u8> {
        let mut attribute = vec![OID, oid.len() as u8];
        attribute.extend_from_slice(oid);
        attribute.extend_from_slice(&[tag, value.len() as u8]);
        attribute.extend_from_slice(value);
        let mut sequence = vec![SEQUENCE, attribute.len() as u8];
        sequence.extend(attribute);
        let mut set = vec![SET, sequence.len() as u8];
        set.extend(sequence);
        set
    }

    #[test]
    fn finds_the_common_name_after_other_attributes() {
        let mut name = rdn(&[0x55, 0x04, 0x06], 0x13, b"DE");
        name.extend(rdn(COMMON_NAME, 0x0c, b"Oasis Test Root CA"));
        assert_eq!(common_name(&name).as_deref(), Some("Oasis Test Root CA"));
    }

    #[test]
    fn truncated_or_odd_input_gives_none() {
        let name = rdn(COMMON_NAME, 0x0c, b"abc");
        for cut in 0..name.len() {
            assert_eq!(common_name(&name[..cut]), None);
        }
        assert_eq!(common_name(&[0x31, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
    }
}
