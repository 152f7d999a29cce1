//! Small text helpers shared by the error types.

/// Cuts a value quoted in an error message to 80 characters: a 256 KiB field must not become a
/// 256 KiB error message (the caller logs the whole body once, beside the error).
pub(crate) fn shorten(text: &str) -> String {
    let mut out: String = text.chars().take(80).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}
