// GradKit — documentation coverage of a module's symbol graph. SPDX-License-Identifier: MIT
//
// Usage: swift Scripts/DocumentationCoverage.swift GRAPH.symbols.json
// Counts the public declarations in the graph and lists those without a doc comment of their own
// that opens with a summary (a comment holding only "- Precondition:" has no summary).
// Members the compiler synthesized into a type from a protocol's default implementation (their
// identifier contains "::SYNTHESIZED::") are skipped: they are documented where they are declared
// (GradKit's own extensions are checked there; the standard library's are not ours). Everything
// written in GradKit's source counts, protocol witnesses included: the symbol graph does not link
// a witness to its requirement, so DocC would show it without a summary. Implicit declarations
// (no source location, such as a raw-value enum's init(rawValue:)) are skipped too.
// Exit status: 0 all documented, 1 some undocumented, 2 the graph could not be read.

import Foundation

let arguments = CommandLine.arguments
guard arguments.count == 2 else {
    FileHandle.standardError.write(Data("usage: DocumentationCoverage.swift GRAPH.symbols.json\n".utf8))
    exit(2)
}
let path = arguments[1]
guard let data = FileManager.default.contents(atPath: path),
      let graph = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
      let symbols = graph["symbols"] as? [[String: Any]]
else {
    FileHandle.standardError.write(Data("cannot read a symbol graph from \(path)\n".utf8))
    exit(2)
}

var counted = 0
var undocumented: [String] = []
for symbol in symbols {
    let identifier = (symbol["identifier"] as? [String: Any])?["precise"] as? String ?? ""
    if identifier.contains("::SYNTHESIZED::") { continue }
    // Without a location the compiler declared it implicitly (a raw-value enum's init(rawValue:)).
    guard symbol["location"] != nil else { continue }
    let access = symbol["accessLevel"] as? String ?? ""
    guard access == "public" || access == "open" else { continue }
    counted += 1
    let lines = ((symbol["docComment"] as? [String: Any])?["lines"] as? [[String: Any]]) ?? []
    // The first non-blank line is the summary; a comment that opens with a callout
    // ("- Precondition:", "- Parameters:") has none, and DocC shows no abstract for it.
    let first = lines.compactMap { ($0["text"] as? String)?.trimmingCharacters(in: .whitespaces) }.first { !$0.isEmpty }
    if first == nil || first!.hasPrefix("- ") {
        let kind = (symbol["kind"] as? [String: Any])?["identifier"] as? String ?? "?"
        let name = (symbol["pathComponents"] as? [String])?.joined(separator: ".") ?? identifier
        let location = symbol["location"] as? [String: Any]
        let file = (location?["uri"] as? String).map { URL(string: $0)?.lastPathComponent ?? $0 } ?? "?"
        let line = ((location?["position"] as? [String: Any])?["line"] as? Int).map { "\($0 + 1)" } ?? "?"
        undocumented.append("  \(file):\(line)  \(kind.replacingOccurrences(of: "swift.", with: ""))  \(name)")
    }
}

let documented = counted - undocumented.count
print("documentation coverage: \(documented) of \(counted) public symbols documented")
if !undocumented.isEmpty {
    print("undocumented public symbols (\(undocumented.count)):")
    for entry in undocumented.sorted() { print(entry) }
    exit(1)
}
