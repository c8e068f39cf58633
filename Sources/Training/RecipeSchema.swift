import AudioIO
import Engine
import Foundation
import Models
import TOMLKit

/// One key of a recipe: where it sits, how its TOML value is read (and checked) into a
/// `Recipe`, how it is written back, whether it may change when a run is resumed, and what it
/// means. `RecipeSchema.fields` lists every key once; parsing (`RecipeParser`), the resolved
/// TOML (`Recipe.tomlText`) and resume checks (`Recipe.changes`, `Recipe.resumableKeys`) all
/// read that list.
struct RecipeField: @unchecked Sendable {
    enum Section: String, CaseIterable, Sendable {
        case top = "", data, model, train
    }

    let section: Section
    let key: String
    /// May differ when a run is resumed: it does not alter the weights' shapes, the data or its
    /// order (the rest — [data], the model's shape, batch size, seed — would make "resume" a
    /// different run).
    let resumable: Bool
    let help: String
    /// Reads and validates the value into the recipe; errors name the key (`Reader`).
    let read: (Reader, TOMLValueConvertible, inout Recipe) throws -> Void
    /// The value as TOML, or nil to leave the key out.
    let write: (Recipe) -> String?

    /// "[train] lr", or "name" at the top level: how messages and `RecipeChange` name it.
    var qualifiedKey: String { section == .top ? key : "[\(section.rawValue)] \(key)" }
}

/// The recipe's keys, in the order the resolved TOML writes them.
enum RecipeSchema {
    typealias F = RecipeField
    static let big = Int(Int32.max)
    /// The Mamba paper's names for block kinds, as the fix when a recipe uses one.
    static let blockKindHints = [
        "mamba-s4": "the Mamba paper's Mamba-S4 (no selection: Δ, B, C are parameters, not functions of the input) is \"mamba-lti\"",
        "mamba-s6": "the Mamba paper's Mamba-S6 (selective) is \"mamba\", or \"mamba-complex\" with complex A, B, C",
    ]

    static let fields: [RecipeField] = [
        F.string(.top, "name", \.name, nonEmpty: true, resumable: true, "the run's name (default: the file name without .toml)"),
        F.string(.top, "description", \.description, omitEmpty: true, resumable: true, "one line about the recipe"),

        F.choice(.data, "layout", \.data.layout, "how the folder is organised (DataLayout)"),
        F.optionalString(.data, "default_data", \.data.defaultData, resumable: true,
                         "data folder used when --data is not given (absolute, or relative to the current directory or the recipe's repository)"),
        F.int(.data, "sample_rate", \.data.sampleRate, 1000...384_000, "Hz"),
        F.int(.data, "clip_length", \.data.clipLength, 1...Int(Int32.max), "samples per training clip; a multiple of the pooling product"),
        F.choice(.data, "short_files", \.data.shortFiles, "files shorter than a clip: pad | drop"),
        F.choice(.data, "quantization", \.data.quantization, "mulaw | linear"),
        F.choice(.data, "normalization", \.data.normalization, "per-clip scaling before quantisation: minmax | peak | none"),
        F.number(.data, "valid_fraction", \.data.validFraction, "a number in [0, 1)", { $0 >= 0 && $0 < 1 }, "share of the files in the valid split"),
        F.number(.data, "test_fraction", \.data.testFraction, "a number in [0, 1)", { $0 >= 0 && $0 < 1 }, "share of the files in the test split"),
        F.int(.data, "memory_budget_mb", \.data.memoryBudgetMB, 1...(1 << 30), resumable: true,
              "decoded audio kept in memory; a larger corpus is streamed from disk"),

        F.choice(.model, "backbone", \.model.backbone, "sashimi | unet"),
        F.int(.model, "d_model", \.model.dModel, 1...65536, "width of the first stage"),
        F.int(.model, "n_layers", \.model.nLayers, 1...4096, "residual layers per stage"),
        F.intList(.model, "pool", \.model.pool, min: 2, what: "a list of integers ≥ 2 (e.g. [4, 4])", "pooling factors, outermost first"),
        F.int(.model, "expand", \.model.expand, 1...64, "channel expansion per pooling level"),
        F.int(.model, "ff", \.model.ff, 1...64, "feed-forward expansion of the S4D / MHA blocks"),
        F.choice(.model, "outer", \.model.outer, hints: blockKindHints, "block kind of the outer stages: mamba-complex | mamba | mamba-lti | s4d | mha"),
        F.choice(.model, "center", \.model.center, hints: blockKindHints, "block kind of the center stage: mamba-complex | mamba | mamba-lti | s4d | mha"),
        F.int(.model, "d_state", \.model.dState, 1...4096, "Mamba's state size"),
        F.int(.model, "d_conv", \.model.dConv, 1...64, "Mamba's convolution width"),
        F.int(.model, "mamba_expand", \.model.mambaExpand, 1...64, "Mamba's expansion"),
        F.int(.model, "s4d_state", \.model.s4dState, 1...4096, "S4D's state size"),
        F.int(.model, "mha_heads", \.model.mhaHeads, 1...1024, "attention heads of mha blocks; must divide every stage width"),
        F.float(.model, "dropout", \.model.dropout, "a number in [0, 1)", { $0 >= 0 && $0 < 1 }, resumable: true, "dropout probability"),
        F.int(.model, "scan_chunk", \.model.scanChunk, 1...(1 << 20), resumable: true,
              "time steps between stored scan states in training (memory vs recomputation)"),

        F.int(.train, "batch_size", \.train.batchSize, 1...65536, "clips per optimiser step"),
        F.int(.train, "steps", \.train.steps, 1...big, resumable: true, "total optimiser steps (the schedule ends here)"),
        F.number(.train, "lr", \.train.lr, "a positive number (e.g. 2e-3)", { $0 > 0 && $0 < 10 }, resumable: true, "peak learning rate"),
        F.number(.train, "ssm_lr", \.train.ssmLR, "0 (no cap) or a positive learning rate (e.g. 1e-3)", { $0 >= 0 && $0 < 10 }, resumable: true,
                 "learning-rate cap of the SSM parameters (A, Δ); 0: no cap"),
        F.bool(.train, "ssm_weight_decay", \.train.ssmWeightDecay, resumable: true, "whether Δ's projection weight gets weight decay"),
        F.int(.train, "warmup_steps", \.train.warmupSteps, 0...big, resumable: true, "linear warm-up steps (at most steps)"),
        F.choice(.train, "schedule", \.train.schedule, ["cosine": .cosine, "constant": .constant], resumable: true,
                 "learning-rate decay after the warm-up: cosine | constant"),
        F.number(.train, "final_lr_fraction", \.train.finalLRFraction, "a number in [0, 1]", { $0 >= 0 && $0 <= 1 }, resumable: true,
                 "the cosine schedule's last learning rate, as a fraction of lr"),
        F.number(.train, "weight_decay", \.train.weightDecay, "a number ≥ 0", { $0 >= 0 }, resumable: true, "AdamW's decoupled weight decay"),
        F.number(.train, "grad_clip", \.train.gradClip, "a number ≥ 0 (0 turns clipping off)", { $0 >= 0 }, resumable: true,
                 "global gradient-norm clip; 0: off"),
        F.numberList(.train, "betas", \.train.betas, count: 2, "two numbers in [0, 1), e.g. [0.9, 0.95]", { $0 >= 0 && $0 < 1 }, resumable: true,
                     "AdamW's [β1, β2]"),
        F.number(.train, "ema", \.train.ema, "0 (off) or a decay in (0, 1), e.g. 0.999", { $0 >= 0 && $0 < 1 }, resumable: true,
                 "EMA decay of the weights; 0: off"),
        F.int(.train, "validate_every", \.train.validateEvery, 0...big, resumable: true, "steps between validations; 0: only at the end"),
        F.int(.train, "validation_batches", \.train.validationBatches, 0...big, resumable: true, "batches per validation; 0: the whole split"),
        F.int(.train, "checkpoint_every", \.train.checkpointEvery, 0...big, resumable: true, "steps between checkpoints; 0: only at the end"),
        F.int(.train, "log_every", \.train.logEvery, 1...big, resumable: true, "steps between train lines in metrics.jsonl"),
        F.int(.train, "seed", \.train.seed, 0...Int.max, "seeds the initial weights, the data order and dropout"),
        F.duration(.train, "max_time", \.train.maxTime, resumable: true, "wall-clock limit of one session (\"90s\", \"9m\", \"1h30m\", \"2.5h\")"),
        F.int(.train, "sample_every", \.train.sampleEvery, 0...big, resumable: true, "steps between sampling rounds; 0: off"),
        F.int(.train, "sample_clips", \.train.sampleClips, 2...65536, resumable: true, "clips per sampling round"),
        F.optionalNumber(.train, "sample_seconds", \.train.sampleSeconds, "a positive number of seconds", { $0 > 0 && $0 <= 3600 }, resumable: true,
                         "seconds per sampled clip (default: the clip length)"),
        F.choice(.train, "recompute", \.train.recompute, resumable: true,
                 "activations kept for the backward: none | blocks (each residual block keeps its input and re-runs its forward in the backward)"),
    ]

    static func fields(in section: RecipeField.Section) -> [RecipeField] { fields.filter { $0.section == section } }
}

// MARK: - Field kinds

extension RecipeField {
    static func int(_ s: Section, _ key: String, _ kp: WritableKeyPath<Recipe, Int>, _ range: ClosedRange<Int>,
                    resumable: Bool = false, _ help: String) -> RecipeField {
        RecipeField(section: s, key: key, resumable: resumable, help: help,
                    read: { r, v, recipe in recipe[keyPath: kp] = try r.int(v, key, range) },
                    write: { String($0[keyPath: kp]) })
    }

    /// A float or an integer, checked by `valid` (`what` describes a valid value in messages).
    static func number(_ s: Section, _ key: String, _ kp: WritableKeyPath<Recipe, Double>, _ what: String,
                       _ valid: @escaping (Double) -> Bool, resumable: Bool = false, _ help: String) -> RecipeField {
        RecipeField(section: s, key: key, resumable: resumable, help: help,
                    read: { r, v, recipe in recipe[keyPath: kp] = try r.number(v, key, what, valid) },
                    write: { tomlNumber($0[keyPath: kp]) })
    }

    static func optionalNumber(_ s: Section, _ key: String, _ kp: WritableKeyPath<Recipe, Double?>, _ what: String,
                               _ valid: @escaping (Double) -> Bool, resumable: Bool = false, _ help: String) -> RecipeField {
        RecipeField(section: s, key: key, resumable: resumable, help: help,
                    read: { r, v, recipe in recipe[keyPath: kp] = try r.number(v, key, what, valid) },
                    write: { $0[keyPath: kp].map(tomlNumber) })
    }

    static func float(_ s: Section, _ key: String, _ kp: WritableKeyPath<Recipe, Float>, _ what: String,
                      _ valid: @escaping (Double) -> Bool, resumable: Bool = false, _ help: String) -> RecipeField {
        RecipeField(section: s, key: key, resumable: resumable, help: help,
                    read: { r, v, recipe in recipe[keyPath: kp] = Float(try r.number(v, key, what, valid)) },
                    write: { tomlNumber(Double($0[keyPath: kp])) })
    }

    static func bool(_ s: Section, _ key: String, _ kp: WritableKeyPath<Recipe, Bool>, resumable: Bool = false, _ help: String) -> RecipeField {
        RecipeField(section: s, key: key, resumable: resumable, help: help,
                    read: { r, v, recipe in recipe[keyPath: kp] = try r.bool(v, key) },
                    write: { $0[keyPath: kp] ? "true" : "false" })
    }

    /// `omitEmpty`: an empty string is not written (the key is left out).
    static func string(_ s: Section, _ key: String, _ kp: WritableKeyPath<Recipe, String>, nonEmpty: Bool = false, omitEmpty: Bool = false,
                       resumable: Bool = false, _ help: String) -> RecipeField {
        RecipeField(section: s, key: key, resumable: resumable, help: help,
                    read: { r, v, recipe in recipe[keyPath: kp] = try r.string(v, key, nonEmpty: nonEmpty) },
                    write: { omitEmpty && $0[keyPath: kp].isEmpty ? nil : tomlQuoted($0[keyPath: kp]) })
    }

    /// A non-empty string, or unset.
    static func optionalString(_ s: Section, _ key: String, _ kp: WritableKeyPath<Recipe, String?>, resumable: Bool = false,
                               _ help: String) -> RecipeField {
        RecipeField(section: s, key: key, resumable: resumable, help: help,
                    read: { r, v, recipe in recipe[keyPath: kp] = try r.string(v, key, nonEmpty: true) },
                    write: { $0[keyPath: kp].map(tomlQuoted) })
    }

    /// One of an enum's raw values; `hints` maps other names of a value (the paper's) to a fix.
    static func choice<E: RawRepresentable & CaseIterable>(_ s: Section, _ key: String, _ kp: WritableKeyPath<Recipe, E>,
                                                           hints: [String: String] = [:], resumable: Bool = false,
                                                           _ help: String) -> RecipeField where E.RawValue == String {
        RecipeField(section: s, key: key, resumable: resumable, help: help,
                    read: { r, v, recipe in recipe[keyPath: kp] = try r.choice(v, key, hints: hints) },
                    write: { tomlQuoted($0[keyPath: kp].rawValue) })
    }

    /// One of `options`, written as its raw value.
    static func choice<E: RawRepresentable>(_ s: Section, _ key: String, _ kp: WritableKeyPath<Recipe, E>, _ options: KeyValuePairs<String, E>,
                                            resumable: Bool = false, _ help: String) -> RecipeField where E.RawValue == String {
        RecipeField(section: s, key: key, resumable: resumable, help: help,
                    read: { r, v, recipe in recipe[keyPath: kp] = try r.choice(v, key, options) },
                    write: { tomlQuoted($0[keyPath: kp].rawValue) })
    }

    static func intList(_ s: Section, _ key: String, _ kp: WritableKeyPath<Recipe, [Int]>, min: Int, what: String,
                        resumable: Bool = false, _ help: String) -> RecipeField {
        RecipeField(section: s, key: key, resumable: resumable, help: help,
                    read: { r, v, recipe in recipe[keyPath: kp] = try r.intList(v, key, min: min, what: what) },
                    write: { "[" + $0[keyPath: kp].map(String.init).joined(separator: ", ") + "]" })
    }

    static func numberList(_ s: Section, _ key: String, _ kp: WritableKeyPath<Recipe, [Double]>, count: Int, _ what: String,
                           _ valid: @escaping (Double) -> Bool, resumable: Bool = false, _ help: String) -> RecipeField {
        RecipeField(section: s, key: key, resumable: resumable, help: help,
                    read: { r, v, recipe in recipe[keyPath: kp] = try r.numberList(v, key, count: count, what, valid) },
                    write: { "[" + $0[keyPath: kp].map(tomlNumber).joined(separator: ", ") + "]" })
    }

    /// A duration string (`DurationText`), in seconds; unset: no limit.
    static func duration(_ s: Section, _ key: String, _ kp: WritableKeyPath<Recipe, Double?>, resumable: Bool = false,
                         _ help: String) -> RecipeField {
        RecipeField(section: s, key: key, resumable: resumable, help: help,
                    read: { r, v, recipe in recipe[keyPath: kp] = try r.duration(v, key) },
                    write: { $0[keyPath: kp].map { tomlQuoted(DurationText.format($0)) } })
    }
}
