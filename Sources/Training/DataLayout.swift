import Foundation

/// How a data folder is organised (`[data] layout`). Every layout is read the same way
/// (`AudioDataset`: any audio format, any rate, mixed to mono and resampled); the layout
/// says which split rule the recipe expects, so that a wrong folder fails up front instead of
/// silently training on a hash split.
///
/// - `folder`: any tree of audio files. A published split wins (a `splits.tsv` manifest as
///   `recipes/data` writes it, top-level `train/`, `valid/` (or `validation/`, `val/`, `dev/`),
///   `test/` folders, or Speech Commands' `validation_list.txt` / `testing_list.txt`);
///   otherwise each file's split is drawn from a hash of its relative path with
///   `valid_fraction` / `test_fraction`.
/// - `sc09`: SC09 as WaveGAN and SaShiMi distribute it: `train/`, `valid/`, `test/` folders of
///   1-s 16 kHz clips (`train/zero/…wav`, …), the Speech Commands tree with its two list
///   files, or a `splits.tsv` manifest. A folder without a published split is an error.
/// - `youtubemix`: a folder of long recordings (YouTubeMix: 1-minute piano WAVs) cut into
///   `clip_length` segments; split by position in file order, as SaShiMi does (the first
///   88 % of the files train, then 6 % valid, 6 % test, with the recipe's fractions).
public enum DataLayout: String, Sendable, CaseIterable {
    case folder
    case sc09
    case youtubemix

    /// Checks that `root` looks like this layout; the error names the folder and the fix.
    func check(_ root: URL) throws {
        guard self == .sc09 else { return }
        let fm = FileManager.default
        let names = Set(((try? fm.contentsOfDirectory(atPath: root.path)) ?? []).map { $0.lowercased() })
        let hasFolders = names.contains("train") && !names.isDisjoint(with: ["valid", "validation", "val", "dev"])
        let hasLists = names.contains("validation_list.txt") && names.contains("testing_list.txt")
        if !hasFolders && !hasLists && !names.contains("splits.tsv") {
            throw TrainingError(path: root.path,
                                "the recipe expects the SC09 layout (train/, valid/ and test/ folders, Speech Commands' validation_list.txt and testing_list.txt, or a splits.tsv manifest), and this folder has none of them",
                                fix: "point --data at the SC09 folder, or use a recipe with [data] layout = \"folder\" for a plain folder of clips")
        }
    }
}
