import Foundation

extension Recipe {
    /// The resolved recipe as TOML, every key written out (defaults included), so that a run
    /// folder's `recipe.toml` says exactly what was trained even if defaults change later.
    /// `RecipeParser.parse(tomlText)` gives back an equal recipe.
    public var tomlText: String {
        var lines = ["# Resolved recipe: every key, defaults included (written by `wavemamba train`).",
                     "name = \(quoted(name))"]
        if !description.isEmpty { lines.append("description = \(quoted(description))") }
        func section(_ title: String, _ pairs: [(String, String?)]) {
            lines.append("")
            lines.append("[\(title)]")
            for (k, v) in pairs { if let v { lines.append("\(k) = \(v)") } }
        }
        let d = data, m = model, t = train
        section("data", [
            ("layout", quoted(d.layout.rawValue)),
            ("default_data", d.defaultData.map(quoted)),
            ("sample_rate", String(d.sampleRate)),
            ("clip_length", String(d.clipLength)),
            ("short_files", quoted(d.shortFiles.rawValue)),
            ("quantization", quoted(d.quantization.rawValue)),
            ("normalization", quoted(d.normalization.rawValue)),
            ("valid_fraction", number(d.validFraction)),
            ("test_fraction", number(d.testFraction)),
            ("memory_budget_mb", String(d.memoryBudgetMB)),
        ])
        section("model", [
            ("backbone", quoted(m.backbone.rawValue)),
            ("d_model", String(m.dModel)),
            ("n_layers", String(m.nLayers)),
            ("pool", "[" + m.pool.map(String.init).joined(separator: ", ") + "]"),
            ("expand", String(m.expand)),
            ("ff", String(m.ff)),
            ("outer", quoted(m.outer.rawValue)),
            ("center", quoted(m.center.rawValue)),
            ("d_state", String(m.dState)),
            ("d_conv", String(m.dConv)),
            ("mamba_expand", String(m.mambaExpand)),
            ("s4d_state", String(m.s4dState)),
            ("mha_heads", String(m.mhaHeads)),
            ("dropout", number(Double(m.dropout))),
            ("scan_chunk", String(m.scanChunk)),
        ])
        section("train", [
            ("batch_size", String(t.batchSize)),
            ("steps", String(t.steps)),
            ("lr", number(t.lr)),
            ("ssm_lr", number(t.ssmLR)),
            ("ssm_weight_decay", t.ssmWeightDecay ? "true" : "false"),
            ("warmup_steps", String(t.warmupSteps)),
            ("schedule", quoted(t.schedule.rawValue)),
            ("final_lr_fraction", number(t.finalLRFraction)),
            ("weight_decay", number(t.weightDecay)),
            ("grad_clip", number(t.gradClip)),
            ("betas", "[" + t.betas.map(number).joined(separator: ", ") + "]"),
            ("ema", number(t.ema)),
            ("validate_every", String(t.validateEvery)),
            ("validation_batches", String(t.validationBatches)),
            ("checkpoint_every", String(t.checkpointEvery)),
            ("log_every", String(t.logEvery)),
            ("seed", String(t.seed)),
            ("max_time", t.maxTime.map { quoted(DurationText.format($0)) }),
            ("sample_every", String(t.sampleEvery)),
            ("sample_clips", String(t.sampleClips)),
            ("sample_seconds", t.sampleSeconds.map(number)),
        ])
        return lines.joined(separator: "\n") + "\n"
    }
}

/// A TOML basic string.
private func quoted(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        case "\r": out += "\\r"
        default:
            if u.value < 0x20 || u.value == 0x7F { out += String(format: "\\u%04X", u.value) } else { out.unicodeScalars.append(u) }
        }
    }
    return out + "\""
}

/// Swift's shortest round-trip form ("0.002", "1e-05") is valid TOML for finite values.
private func number(_ x: Double) -> String { x.description }
