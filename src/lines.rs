//! Bounded line reading for JSON Lines input (imports and exports).
//!
//! Owns: splitting a byte stream into lines without ever holding more than
//! `line_bytes_max` of one line. Never: panics on any input.

use std::io::BufRead;

/// One line read from a stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A complete line (without its `\n` or `\r\n`).
    Complete(Vec<u8>),
    /// A line longer than the limit; the rest of it was skipped.
    TooLong(usize),
}

/// Reads the next line, or `None` at the end of the stream.
pub fn read_line_bounded(reader: &mut dyn BufRead, line_bytes_max: usize) -> std::io::Result<Option<Line>> {
    let mut line = Vec::new();
    let mut length = 0usize;
    let mut seen_any = false;
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            break;
        }
        seen_any = true;
        let (chunk, found_newline) = match available.iter().position(|b| *b == b'\n') {
            Some(i) => (&available[..i], true),
            None => (available, false),
        };
        length += chunk.len();
        if length <= line_bytes_max {
            line.extend_from_slice(chunk);
        }
        let consumed = chunk.len() + usize::from(found_newline);
        reader.consume(consumed);
        if found_newline {
            break;
        }
    }
    if !seen_any {
        return Ok(None);
    }
    if length > line_bytes_max {
        return Ok(Some(Line::TooLong(length)));
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(Some(Line::Complete(line)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_bounded() {
        // Goal: long lines are reported, not buffered; CRLF and a missing final newline work.
        let mut input: &[u8] = b"ab\r\n0123456789\nlast";
        assert_eq!(read_line_bounded(&mut input, 5).unwrap(), Some(Line::Complete(b"ab".to_vec())));
        assert_eq!(read_line_bounded(&mut input, 5).unwrap(), Some(Line::TooLong(10)));
        assert_eq!(read_line_bounded(&mut input, 5).unwrap(), Some(Line::Complete(b"last".to_vec())));
        assert_eq!(read_line_bounded(&mut input, 5).unwrap(), None);
    }
}
