// GradKit — text from files made safe to print. SPDX-License-Identifier: MIT

extension String {
    /// This text with every character that could steer a terminal written as
    /// an escape: `\n`, `\r`, `\t`, and `\u{1B}` for the other control
    /// characters (C0, DEL, C1) and the bidirectional overrides that can make
    /// text display in another order than it is stored.
    ///
    /// Names and metadata come from files anyone can write: printed raw, an
    /// ANSI escape sequence in a tensor name would recolor, retitle or clear
    /// the user's terminal.
    package var escapingControlCharacters: String {
        guard unicodeScalars.contains(where: DisplayText.needsEscape) else { return self }
        var out = ""
        for scalar in unicodeScalars { DisplayText.append(scalar, to: &out) }
        return out
    }

    /// This text escaped as ``escapingControlCharacters`` and cut to about
    /// `limit` characters, in single quotes, for an error message; a cut text
    /// ends in `…` and says how long it was. A tensor name in a file can be
    /// megabytes of junk, and a message must stay one readable line.
    package func quotedForMessage(limit: Int = 80) -> String { DisplayText.cut(self, limit: limit, quote: "'") }

    /// This text as ``quotedForMessage(limit:)`` shows it, without the
    /// quotes, cut at ``DisplayText/messageLimit`` characters: for a path or
    /// argument a message names, which may be a 4096-character path or a
    /// megabyte of command line.
    package var shownInMessage: String { DisplayText.cut(self, limit: DisplayText.messageLimit, quote: "") }
}

/// The escaping rule behind ``Swift/String/escapingControlCharacters``.
package enum DisplayText {
    /// The most characters of one user-supplied text a message shows.
    package static let messageLimit = 200

    /// `text` escaped and cut to about `limit` characters between `quote`s; a
    /// cut text ends in `…` and says how long it was.
    /// `totalBytes`: the length a cut text reports, when `text` is only the
    /// start of a longer one (default: `text`'s own UTF-8 length).
    static func cut(_ text: String, limit: Int, quote: String, totalBytes: Int? = nil) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            // Counted after escaping, so a name of escape characters is cut as short as any other.
            guard out.unicodeScalars.count < limit else {
                return quote + out + "…" + quote + " (\(totalBytes ?? text.utf8.count) bytes)"
            }
            DisplayText.append(scalar, to: &out)
        }
        return quote + out + quote
    }

    static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0..<0x20, 0x7F...0x9F: true  // C0, DEL, C1 (0x9B is a one-byte CSI to some terminals)
        case 0x061C, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: true  // bidirectional marks and overrides
        case 0x2028, 0x2029: true  // line and paragraph separators
        case 0..<0x80: false
        default: scalar.properties.generalCategory == .format  // invisible: a byte-order mark, a zero-width space
        }
    }

    static func append(_ scalar: Unicode.Scalar, to out: inout String) {
        guard needsEscape(scalar) else {
            out.unicodeScalars.append(scalar)
            return
        }
        switch scalar {
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default: out += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
        }
    }
}
