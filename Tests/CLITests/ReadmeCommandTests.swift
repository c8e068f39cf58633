import Fixtures
import Foundation
import XCTest

/// The README is the front door: every `wavemamba …` command it shows must exist, with the
/// options it shows, and its test command must be the one CI runs. (The commands' behaviour is
/// tested by the other CLI tests on tiny inputs; this test keeps the README from drifting.)
final class ReadmeCommandTests: XCTestCase {
    static let readme = Fixtures.repository.appendingPathComponent("README.md")

    /// The README's inline code spans and the lines of its fenced code blocks.
    static func codeSnippets(_ text: String) -> [String] {
        var snippets: [String] = [], inFence = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if line.hasPrefix("```") { inFence.toggle(); continue }
            if inFence { snippets.append(line); continue }
            let parts = line.components(separatedBy: "`")
            snippets += stride(from: 1, to: parts.count, by: 2).map { parts[$0] }
        }
        return snippets
    }

    /// One README command: the words after `wavemamba` up to the first argument (each word's
    /// alternatives, as `bench engine\|scan`), and the `--options` it names.
    struct Command: Hashable { var words: [[String]]; var options: [String] }

    static func commands(_ text: String) -> [Command] {
        var result: [Command] = []
        for snippet in codeSnippets(text) {
            var rest = snippet[...]
            while let r = rest.range(of: "wavemamba ") {
                let tokens = rest[r.upperBound...].split(separator: " ").map(String.init)
                let invocation = tokens.prefix { $0 != "&&" && $0 != "|" && $0 != "#" }
                var words: [[String]] = []
                for t in invocation {
                    let alternatives = t.replacingOccurrences(of: "\\|", with: "|").split(separator: "|").map(String.init)
                    guard !alternatives.isEmpty, alternatives.allSatisfy({ $0.range(of: "^[a-z][a-z0-9-]*$", options: .regularExpression) != nil })
                    else { break }
                    words.append(alternatives)
                }
                let options = invocation.map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "[]")) }
                    .filter { $0.hasPrefix("--") }.map { String($0.split(separator: "=")[0]) }
                if !words.isEmpty { result.append(Command(words: words, options: options)) }
                rest = rest[r.upperBound...]
            }
        }
        return result
    }

    /// The subcommands a `--help` text lists (ArgumentParser's "SUBCOMMANDS:" section).
    static func subcommands(inHelp help: String) -> Set<String> {
        guard let start = help.range(of: "SUBCOMMANDS:") else { return [] }
        var names: Set<String> = []
        for line in help[start.upperBound...].split(separator: "\n") {
            guard line.hasPrefix("  ") else { break }
            if let name = line.split(separator: " ").first, !line.hasPrefix("    ") { names.insert(String(name)) }
        }
        return names
    }

    func testEveryReadmeCommandExistsWithItsOptions() throws {
        let text = try String(contentsOf: Self.readme, encoding: .utf8)
        let commands = Self.commands(text)
        XCTAssertGreaterThanOrEqual(commands.count, 10, "the README's commands were not found")
        var helps: [[String]: CLI.Result] = [:]
        func help(_ path: [String]) throws -> CLI.Result {
            if let h = helps[path] { return h }
            let r = try CLI.run(path + ["--help"])
            helps[path] = r
            return r
        }
        var checked: Set<[String]> = []
        for command in commands {
            // Expand the alternatives (`bench engine|scan`) into command paths.
            var paths: [[String]] = [[]]
            for alternatives in command.words { paths = paths.flatMap { p in alternatives.map { p + [$0] } } }
            for words in paths {
                if words.first == "help" {
                    XCTAssertEqual(try CLI.run(["help"]).status, 0)
                    continue
                }
                // Walk down the subcommands; the first word that is not one is an argument.
                var path: [String] = []
                for word in words {
                    let subs = Self.subcommands(inHelp: try help(path).stdout)
                    if subs.contains(word) { path.append(word); continue }
                    // A hidden subcommand (selftest, cuda-kernels) is not listed but has its own usage.
                    let usage = "USAGE: wavemamba " + (path + [word]).joined(separator: " ")
                    let own = try help(path + [word])
                    if own.status == 0, own.stdout.contains(usage + " ") || own.stdout.contains(usage + "\n") {
                        path.append(word)
                        continue
                    }
                    XCTAssertTrue(!path.isEmpty && subs.isEmpty, "README: `wavemamba \(words.joined(separator: " "))`: " +
                                  "`\(word)` is not a subcommand of `wavemamba \(path.joined(separator: " "))` (\(subs.sorted()))")
                    break // an argument, as a recipe name
                }
                let h = try help(path)
                XCTAssertEqual(h.status, 0, "`wavemamba \(path.joined(separator: " ")) --help`: \(h.stderr)")
                for option in command.options {
                    XCTAssertTrue(h.stdout.contains(option + " ") || h.stdout.contains(option + "\n") || h.stdout.contains(option + ","),
                                  "README: `wavemamba \(path.joined(separator: " "))` has no option \(option)")
                }
                checked.insert(path)
            }
        }
        for expected in [["demo"], ["train"], ["generate"], ["evaluate"]] {
            XCTAssertTrue(checked.contains(expected), "the README shows no `wavemamba \(expected[0])` command")
        }
    }

    /// `.ci/run` runs "the README's test command": the two must stay identical.
    func testReadmeTestCommandIsTheOneCIRuns() throws {
        let text = try String(contentsOf: Self.readme, encoding: .utf8)
        let blocks = text.components(separatedBy: "```sh\n").dropFirst().map { $0.components(separatedBy: "```")[0] }
        let testBlocks = blocks.filter { $0.hasPrefix("swift test") }
        XCTAssertEqual(testBlocks.count, 1, "the README should show one test command block")
        let readmeCommand = testBlocks.first?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""

        let ci = try String(contentsOf: Fixtures.repository.appendingPathComponent(".ci/run"), encoding: .utf8)
        let ciLines = ci.split(separator: "\n").map(String.init).filter { $0.hasPrefix("swift ") }
        XCTAssertEqual(ciLines.count, 1, "`.ci/run` should run one swift command")
        // CI only adds the redirection that keeps the log in one stream.
        let ciCommand = (ciLines.first ?? "").replacingOccurrences(of: " 2>&1", with: "").trimmingCharacters(in: .whitespaces)
        XCTAssertEqual(readmeCommand, ciCommand)
    }
}
